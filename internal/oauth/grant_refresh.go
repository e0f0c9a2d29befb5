package oauth

import (
	"context"

	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// refreshGrant is the refresh token grant (RFC 6749 §6): the refresh token
// is rotated by platform.Refreshes (a spent one presented again revokes the
// grant), and a new access token of the grant is issued, with the grant's
// scopes or, when scope is given, a subset of them.
type refreshGrant struct{ p *Provider }

// public: a standalone app refreshes without a secret; the token is bound
// to it.
func (g *refreshGrant) public() bool { return true }

func (g *refreshGrant) exchange(ctx context.Context, r *tokenRequest) (any, *Error) {
	raw := r.form.Get("refresh_token")
	if raw == "" {
		return nil, newError(protocol.InvalidRequest, 400, "refresh_token is missing")
	}
	narrow := scope.Mask(-1)
	if s := r.form.Get("scope"); s != "" {
		m, err := scope.Parse(scope.User, s)
		if err != nil {
			return nil, newError(protocol.InvalidScope, 400, err.Error())
		}
		narrow = m
	}
	grant, next, err := g.p.refreshes.Rotate(ctx, raw, r.client.ID, storage.Holder{JKT: r.jkt, DeviceID: r.form.Get("device_id")})
	if err != nil {
		return nil, grantError(err)
	}
	if narrow != -1 {
		if !grant.Scope.Has(narrow) {
			return nil, newError(protocol.InvalidScope, 400, "scope asks for more than the grant has")
		}
		grant.Scope = narrow
	}
	// Only expiring grants have refresh tokens: a refreshed token expires.
	ttl := g.p.Cfg.CodeTokenTTL
	access, _, err := g.p.p.IssueToken(ctx, storage.Token{Kind: token.User, AppID: r.client.ID, UserID: grant.UserID,
		Scope: grant.Scope, IP: r.ip, Flow: storage.FlowRefresh, CodeHash: &grant.Family, JKT: r.jkt}, ttl)
	if err != nil {
		return nil, grantError(err)
	}
	out := map[string]any{
		"access_token": access, "refresh_token": next, "expires_in": int64(ttl.Seconds()), "user_id": grant.UserID,
		"token_type": tokenType(r.jkt), "scope": grant.Scope.Text(scope.User),
	}
	// A refreshed id_token carries no nonce (OpenID Connect Core §12.2).
	if e := g.p.addIDToken(ctx, out, grant, ""); e != nil {
		return nil, e
	}
	return out, nil
}
