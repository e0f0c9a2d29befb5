package oauth

import (
	"context"
	"errors"
	"fmt"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
)

// clientCredentialsGrant is the obsolete client credentials flow (RFC 6749
// §4.4): a service token for the app itself, off per app until turned on
// (platform.Issuer.ClientCredentials).
type clientCredentialsGrant struct{ p *Provider }

// public: a client that proves nothing gets no token of its own.
func (g *clientCredentialsGrant) public() bool { return false }

func (g *clientCredentialsGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
	raw, err := g.p.issuer.ClientCredentials(ctx, r.client, r.secret, r.ip)
	switch {
	case errors.Is(err, platform.ErrClientCredentialsOff):
		return nil, newError(protocol.UnauthorizedClient, 400, fmt.Sprintf("%s (or: latchkey app set --app %d --client-credentials on)",
			platform.ErrClientCredentialsOff.Message, r.client.ID))
	case err != nil:
		return nil, internal(err)
	}
	return body{"access_token": raw, "token_type": "bearer", "expires_in": 0}, nil
}
