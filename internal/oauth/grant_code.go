package oauth

import (
	"context"
	"errors"
	"strconv"

	"latchkey/internal/pkce"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// codeGrant is the authorization code grant (RFC 6749 §4.1.3): VK style (no
// grant_type), OAuth style, and VK ID's (vkid-wire.md §2: PKCE always, the
// code's own device_id, no community codes). The code is redeemed by
// platform.Codes, and its tokens issued by platform.Issuer.
type codeGrant struct{ p *Provider }

// public: a standalone app redeems its code with the PKCE verifier alone.
func (g *codeGrant) public() bool { return true }

var errNoCode = newError(protocol.InvalidRequest, 400, "code is missing")

func (g *codeGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
	raw, verifier, device := r.form.Get("code"), r.form.Get("code_verifier"), r.form.Get("device_id")
	redeem := platform.Redemption{AppID: r.client.ID, RedirectURI: r.form.Get("redirect_uri"), Verifier: verifier}
	if r.d.device {
		switch {
		case !pkce.ValidVerifier(verifier):
			return nil, errVKIDVerifier
		case !ValidDeviceID(device):
			return nil, errVKIDDevice
		}
		// The code's own device, and a user's: checked before the code is
		// spent, so that a wrong device_id cannot spend another's code.
		redeem.Fits = func(code storage.Code) error {
			switch {
			case len(code.CommunityIDs) > 0:
				return errVKIDCommunity
			case code.DeviceID != device:
				return errVKIDDevice
			}
			return nil
		}
	}
	if raw == "" {
		return nil, errNoCode
	}
	code, spend, err := g.p.codes.Redeem(ctx, raw, redeem)
	if err != nil {
		return nil, err
	}
	if r.public && code.CodeChallenge == "" {
		// Unreachable while /authorize requires PKCE of public clients;
		// without it, a public client's code would be a bearer code.
		return nil, newError(protocol.InvalidGrant, 400, "a public client's code needs PKCE")
	}
	if e := g.p.sameResource(ctx, r.form, code.APIID); e != nil {
		return nil, e
	}
	if len(code.CommunityIDs) > 0 {
		if spend != nil {
			if err := g.p.codes.Spend(ctx, *spend); err != nil {
				return nil, err
			}
		}
		return g.communityTokens(ctx, r, code)
	}
	in := r.issuance(grantFor(code), storage.FlowCode)
	in.Spends = spend
	if r.d.device {
		in.DeviceID = device
	}
	t, err := g.p.issuer.Issue(ctx, in)
	return issued(t), err
}

// communityTokens answers a community code: VK's keyed and list shapes.
func (g *codeGrant) communityTokens(ctx context.Context, r *tokenRequest, code storage.Code) (answer, error) {
	tokens, err := g.p.issuer.Communities(ctx, platform.CommunityIssuance{AppID: r.client.ID, UserID: code.UserID,
		CommunityIDs: code.CommunityIDs, Scope: code.Scope, Flow: storage.FlowCode, Family: code.Hash, IP: r.ip})
	if err != nil {
		return nil, err
	}
	out := body{"expires_in": 0, "token_type": "bearer", "scope": code.Scope.Text(scope.Community)}
	groups := make([]map[string]any, 0, len(tokens))
	for _, t := range tokens {
		out["access_token_"+strconv.FormatInt(t.CommunityID, 10)] = t.Access
		groups = append(groups, map[string]any{"group_id": t.CommunityID, "access_token": t.Access})
	}
	// Strict OAuth clients (golang.org/x/oauth2 among them) refuse a body
	// without access_token, and may then retry the code, which revokes
	// what it issued. VK clients read the keyed and list shapes and ignore
	// this one.
	out["access_token"] = tokens[0].Access
	out["groups"] = groups
	return out, nil
}

// grantFor is the grant a code stands for.
func grantFor(code storage.Code) platform.Grant {
	authn := code.Authn
	if authn.AuthTime.IsZero() {
		authn.AuthTime = code.IssuedAt // a code from before sign-ins were recorded
	}
	return platform.Grant{Family: code.Hash, AppID: code.AppID, UserID: code.UserID, Scope: code.Scope, Authn: authn, Nonce: code.Nonce,
		APIID: code.APIID, Claims: code.Claims}
}

// grantError turns a refused grant into invalid_grant with the platform's
// words (VK's exact texts for the code and the redirect URI; a disabled
// user's grant), a request for wider scopes into invalid_scope, and
// anything else into a failure of ours.
func grantError(err error) *Error {
	var pe *platform.Error
	switch {
	case errors.Is(err, platform.ErrWiderScope):
		return newError(protocol.InvalidScope, 400, platform.ErrWiderScope.Message)
	case errors.As(err, &pe) && pe.Kind == platform.Invalid:
		return newError(protocol.InvalidGrant, 400, pe.Message)
	}
	return internal(err)
}
