package oauth

import (
	"context"
	"errors"
	"strconv"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// codeGrant is the authorization code grant (RFC 6749 §4.1.3), VK style
// (no grant_type) or OAuth style: the code is redeemed by platform.Codes,
// and the tokens it stands for are issued here, in VK's answer shapes.
type codeGrant struct{ p *Provider }

// public: a standalone app redeems its code with the PKCE verifier alone.
func (g *codeGrant) public() bool { return true }

func (g *codeGrant) exchange(ctx context.Context, r *tokenRequest) (any, *Error) {
	raw := r.form.Get("code")
	if raw == "" {
		return nil, newError(protocol.InvalidRequest, 400, "code is missing")
	}
	code, err := g.p.codes.Redeem(ctx, raw, platform.Redemption{AppID: r.client.ID, RedirectURI: r.form.Get("redirect_uri"), Verifier: r.form.Get("code_verifier")})
	if err != nil {
		return nil, grantError(err)
	}
	if r.public && code.CodeChallenge == "" {
		// Unreachable while /authorize requires PKCE of standalone apps;
		// without it, a public client's code would be a bearer code.
		return nil, newError(protocol.InvalidGrant, 400, "a public client's code needs PKCE")
	}
	if len(code.CommunityIDs) > 0 {
		return g.communityTokens(ctx, r, code)
	}
	grant := grantFor(code)
	grant.JKT = r.jkt
	return g.p.issueGrant(ctx, r, grant, storage.FlowCode)
}

// issueGrant issues the first user token of a grant (a code's, a device's),
// bound to the request's DPoP key if it proved one, and answers it: with a
// refresh token when the token expires, the email with the email scope,
// and an id_token (echoing the grant's nonce) with openid.
func (p *Provider) issueGrant(ctx context.Context, r *tokenRequest, g platform.Grant, flow storage.Flow) (map[string]any, *Error) {
	ttl := userTTL(g.Scope, p.Cfg.CodeTokenTTL)
	access, _, err := p.p.IssueToken(ctx, storage.Token{Kind: token.User, AppID: g.AppID, UserID: g.UserID,
		Scope: g.Scope, IP: r.ip, Flow: flow, CodeHash: &g.Family, JKT: g.JKT}, ttl)
	if err != nil {
		return nil, grantError(err)
	}
	out, e := p.userTokenAnswer(ctx, access, ttl, g)
	if e != nil {
		return nil, e
	}
	if e := p.addIDToken(ctx, out, g, g.Nonce); e != nil {
		return nil, e
	}
	return out, nil
}

// userTokenAnswer is the answer that carries a user token of grant: with a
// new refresh token when the access token expires (an offline token never
// does, and needs none), and the email with the email scope.
func (p *Provider) userTokenAnswer(ctx context.Context, access string, ttl time.Duration, g platform.Grant) (map[string]any, *Error) {
	out := map[string]any{
		"access_token": access, "expires_in": int64(ttl / time.Second), "user_id": g.UserID,
		"token_type": tokenType(g.JKT), "scope": g.Scope.Text(scope.User),
	}
	if ttl > 0 {
		refresh, err := p.refreshes.Issue(ctx, g)
		if err != nil {
			return nil, grantError(err)
		}
		out["refresh_token"] = refresh
	}
	if g.Scope.Has(scope.Email) {
		if u, err := p.p.User(ctx, g.UserID); err == nil && u.Email != "" {
			out["email"] = u.Email
		}
	}
	return out, nil
}

// communityTokens answers a community code: VK's keyed and list shapes.
func (g *codeGrant) communityTokens(ctx context.Context, r *tokenRequest, code storage.Code) (any, *Error) {
	out := map[string]any{"expires_in": 0, "token_type": "bearer", "scope": code.Scope.Text(scope.Community)}
	groups := make([]map[string]any, 0, len(code.CommunityIDs))
	for _, id := range code.CommunityIDs {
		raw, _, err := g.p.p.IssueToken(ctx, storage.Token{Kind: token.Community, AppID: r.client.ID, UserID: code.UserID,
			CommunityID: id, Scope: code.Scope, IP: r.ip, Flow: storage.FlowCode, CodeHash: &code.Hash}, 0)
		if err != nil {
			return nil, grantError(err)
		}
		out["access_token_"+strconv.FormatInt(id, 10)] = raw
		groups = append(groups, map[string]any{"group_id": id, "access_token": raw})
		if _, ok := out["access_token"]; !ok {
			// Strict OAuth clients (golang.org/x/oauth2 among them)
			// refuse a body without access_token, and may then retry the
			// code, which revokes what it issued. VK clients read the
			// keyed and list shapes and ignore this one.
			out["access_token"] = raw
		}
	}
	out["groups"] = groups
	return out, nil
}

// tokenType is the token_type of an answer: DPoP for a bound token (RFC
// 9449 §5), bearer otherwise.
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "bearer"
}

// grantError turns a refused grant into invalid_grant with the platform's
// words (VK's exact texts for the code and the redirect URI; a disabled
// user's grant), and anything else into a failure of ours.
func grantError(err error) *Error {
	var pe *platform.Error
	if errors.As(err, &pe) && pe.Kind == platform.Invalid {
		return newError(protocol.InvalidGrant, 400, pe.Message)
	}
	return internal(err)
}
