package oauth

import (
	"context"
	"strconv"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/token"
)

// exchangeGrant is token exchange (RFC 8693): an app's server trades a user
// token of its own for a narrower one — the same or fewer scopes, a
// lifetime no longer than the original's — never broader. The new token
// belongs to the original's grant and is revoked with it.
type exchangeGrant struct{ p *Provider }

// public: only an app's server, authenticated, exchanges tokens.
func (g *exchangeGrant) public() bool { return false }

func (g *exchangeGrant) exchange(ctx context.Context, r *tokenRequest) (any, *Error) {
	f := r.form
	raw := f.Get("subject_token")
	switch {
	case raw == "":
		return nil, newError(protocol.InvalidRequest, 400, "subject_token is missing")
	case f.Get("subject_token_type") != protocol.TokenTypeAccessToken:
		return nil, newError(protocol.InvalidRequest, 400, "subject_token_type must be "+protocol.TokenTypeAccessToken)
	case f.Has("requested_token_type") && f.Get("requested_token_type") != protocol.TokenTypeAccessToken:
		return nil, newError(protocol.InvalidRequest, 400, "requested_token_type must be "+protocol.TokenTypeAccessToken)
	case f.Has("actor_token"):
		return nil, newError(protocol.InvalidRequest, 400, "actor_token is not supported: only impersonation by the app itself")
	case f.Has("resource"):
		return nil, newError(protocol.InvalidTarget, 400, "resource is not supported: tokens are for this server's API")
	case f.Has("audience") && f.Get("audience") != strconv.FormatInt(r.client.ID, 10):
		return nil, newError(protocol.InvalidTarget, 400, "audience must be the app's own client_id")
	}
	subject, err := g.p.p.CheckToken(ctx, raw)
	if platform.Refused(err) || err == nil && (subject.Kind != token.User || subject.AppID != r.client.ID) {
		return nil, newError(protocol.InvalidGrant, 400, "subject_token is not a live user token of this app")
	}
	if err != nil {
		return nil, internal(err)
	}
	m := subject.Scope
	if s := f.Get("scope"); s != "" {
		if m, err = scope.Parse(scope.User, s); err != nil {
			return nil, newError(protocol.InvalidScope, 400, err.Error())
		}
		if !subject.Scope.Has(m) {
			return nil, newError(protocol.InvalidScope, 400, "scope asks for more than the subject token has: a token can only be narrowed")
		}
	}
	// Never longer than the original, and never forever.
	now := g.p.now()
	ttl := g.p.Cfg.CodeTokenTTL
	if !subject.ExpiresAt.IsZero() {
		ttl = min(ttl, subject.ExpiresAt.Sub(now))
	}
	ttl = ttl.Truncate(time.Second)
	if ttl < time.Second {
		return nil, newError(protocol.InvalidGrant, 400, "subject_token is about to expire")
	}
	access, _, err := g.p.p.Exchange(ctx, platform.Actor{IP: r.ip}, subject, m, ttl)
	if err != nil {
		return nil, grantError(err)
	}
	return map[string]any{
		"access_token": access, "issued_token_type": protocol.TokenTypeAccessToken, "token_type": "bearer",
		"expires_in": int64(ttl / time.Second), "scope": m.Text(scope.User),
	}, nil
}
