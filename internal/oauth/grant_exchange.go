package oauth

import (
	"context"
	"errors"
	"strconv"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
)

// exchangeGrant is token exchange (RFC 8693): an app's server trades a user
// token of its own for a narrower one (platform.Issuer.Exchange): the same
// or fewer scopes, a lifetime no longer than the original's, never broader.
type exchangeGrant struct{ p *Provider }

// public: only an app's server, authenticated, exchanges tokens.
func (g *exchangeGrant) public() bool { return false }

func (g *exchangeGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
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
	case f.Has("audience") && f.Get("audience") != strconv.FormatInt(r.client.ID, 10):
		return nil, newError(protocol.InvalidTarget, 400, "audience must be the app's own client_id")
	}
	api, e := g.p.resourceOf(ctx, f)
	if e != nil {
		return nil, e
	}
	t, err := g.p.issuer.Exchange(ctx, platform.ExchangeRequest{Actor: platform.Actor{IP: r.ip}, AppID: r.client.ID, Subject: raw,
		Scope: f.Get("scope"), Resource: api, Named: len(f["resource"]) > 0})
	switch {
	case errors.Is(err, platform.ErrWiderScope):
		return nil, newError(protocol.InvalidScope, 400, "scope asks for more than the subject token has: a token can only be narrowed")
	case errors.Is(err, platform.ErrUndefinedScope):
		return nil, newError(protocol.InvalidScope, 400, err.Error())
	case errors.Is(err, platform.ErrOtherResource):
		return nil, newError(protocol.InvalidTarget, 400, platform.ErrOtherResource.Message)
	case err != nil:
		return nil, err
	}
	return body{
		"access_token": t.Access, "issued_token_type": protocol.TokenTypeAccessToken, "token_type": "bearer",
		"expires_in": int64(t.TTL / time.Second), "scope": t.ScopeText,
	}, nil
}
