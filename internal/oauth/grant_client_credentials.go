package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
)

// clientCredentialsGrant is the client credentials flow (RFC 6749 §4.4),
// off per app until turned on (platform.Issuer.ClientCredentials): with no
// resource, the obsolete service token of the built-in API; with a
// resource (RFC 8707), a token for that API, with its scopes by name.
type clientCredentialsGrant struct{ p *Provider }

// public: a client that proves nothing gets no token of its own.
func (g *clientCredentialsGrant) public() bool { return false }

func (g *clientCredentialsGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
	api, e := g.p.resourceOf(ctx, r.form)
	if e != nil {
		return nil, e
	}
	var m scope.Mask
	if api != nil {
		if m, e = apiScopes(api, r.form.Get("scope")); e != nil {
			return nil, e
		}
	} else if s := r.form.Get("scope"); s != "" {
		// The built-in service token has no scopes: VK's names are let
		// through as before; anything else (an API's, without its
		// resource) is said to be wrong.
		if _, err := scope.Parse(scope.User, s); err != nil {
			return nil, newError(protocol.InvalidScope, http.StatusBadRequest, err.Error()+": an API's scopes come with its resource")
		}
	}
	jkt := ""
	if api != nil {
		jkt = r.jkt
	}
	t, err := g.p.issuer.ClientCredentials(ctx, r.client, r.secret, r.ip, api, m, jkt)
	switch {
	case errors.Is(err, platform.ErrClientCredentialsOff):
		return nil, newError(protocol.UnauthorizedClient, 400, fmt.Sprintf("%s (or: latchkey app set --app %d --client-credentials on)",
			platform.ErrClientCredentialsOff.Message, r.client.ID))
	case err != nil:
		return nil, internal(err)
	}
	if api == nil {
		return body{"access_token": t.Access, "token_type": "bearer", "expires_in": 0}, nil
	}
	typ := "bearer"
	if jkt != "" {
		typ = "DPoP"
	}
	return body{"access_token": t.Access, "token_type": typ, "expires_in": int64(t.TTL / time.Second),
		"scope": strings.Join(platform.ScopeNames(api, m), " ")}, nil
}
