package oauth

import (
	"context"
	"fmt"

	"latchkey/internal/protocol"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// clientCredentialsGrant is the obsolete client credentials flow (RFC 6749
// §4.4): a service token for the app itself, off per app until turned on.
// The token is bound to the secret it was obtained with: retiring that
// secret revokes it.
type clientCredentialsGrant struct{ p *Provider }

// public: a client that proves nothing gets no token of its own.
func (g *clientCredentialsGrant) public() bool { return false }

func (g *clientCredentialsGrant) exchange(ctx context.Context, r *tokenRequest) (any, *Error) {
	if !r.client.ClientCredentials {
		return nil, newError(protocol.UnauthorizedClient, 400, fmt.Sprintf(
			"the client credentials flow is obsolete and off for this app: use the service token from the app's settings, "+
				"or turn the flow on in the app's settings (or: latchkey app set --app %d --client-credentials on)", r.client.ID))
	}
	raw, _, err := g.p.p.IssueToken(ctx, storage.Token{Kind: token.Service, AppID: r.client.ID, IP: r.ip,
		Flow: storage.FlowClientCredentials, SecretHash: &r.secret}, 0)
	if err != nil {
		return nil, internal(err)
	}
	return map[string]any{"access_token": raw, "token_type": "bearer", "expires_in": 0}, nil
}
