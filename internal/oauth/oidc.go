package oauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// OpenID Connect: id_tokens for the openid scope on the code flow,
// discovery, the JWKS and UserInfo.

// Signer signs id_tokens and publishes their keys (platform.Signing).
type Signer interface {
	Sign(ctx context.Context, claims any) (string, error)
	// Verify checks a JWT of ours and decodes its claims into out
	// (platform.ErrBadJWT when it is not one).
	Verify(ctx context.Context, raw string, out any) error
	JWKS(ctx context.Context) (jose.JSONWebKeySet, error)
}

// idTokenTTL is how long an id_token is valid: it proves a login, now.
const idTokenTTL = time.Hour

// idClaims are the id_token's claims (OpenID Connect Core §2, with VK
// ID's iis and app, vkid-wire.md §9).
type idClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	IIS      string `json:"iis"`
	App      int64  `json:"app"`
	userClaims
}

// userClaims are what profile and email disclose, in the id_token and at
// UserInfo.
type userClaims struct {
	Name       string `json:"name,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	Picture    string `json:"picture,omitempty"`
	Email      string `json:"email,omitempty"`
}

func (p *Provider) userClaims(ctx context.Context, userID int64, m scope.Mask) userClaims {
	var c userClaims
	if !m.Has(scope.Profile) && !m.Has(scope.Email) {
		return c
	}
	u, err := p.p.User(ctx, userID)
	if err != nil {
		return c
	}
	if m.Has(scope.Profile) {
		c.GivenName, c.FamilyName = u.FirstName, u.LastName
		c.Name = strings.TrimSpace(u.FirstName + " " + u.LastName)
		c.Picture = platform.AvatarURL(p.Cfg.PublicURL, u.ID, 200)
	}
	if m.Has(scope.Email) {
		c.Email = u.Email
	}
	return c
}

// addIDToken adds an id_token to a token answer of grant when it has the
// openid scope. nonce is the authorization request's (none on refresh).
func (p *Provider) addIDToken(ctx context.Context, out map[string]any, g platform.Grant, nonce string) *Error {
	if !g.Scope.Has(scope.OpenID) || p.signer == nil {
		return nil
	}
	tok, e := p.idToken(ctx, g, nonce)
	if e != nil {
		return e
	}
	out["id_token"] = tok
	return nil
}

// idToken signs the id_token of a grant (OpenID Connect Core §2, with VK
// ID's claims, vkid-wire.md §9).
func (p *Provider) idToken(ctx context.Context, g platform.Grant, nonce string) (string, *Error) {
	now := p.now()
	c := idClaims{Issuer: p.Issuer(), Subject: strconv.FormatInt(g.UserID, 10), Audience: strconv.FormatInt(g.AppID, 10),
		Expiry: now.Add(idTokenTTL).Unix(), IssuedAt: now.Unix(), Nonce: nonce, IIS: p.Issuer(), App: g.AppID,
		userClaims: p.userClaims(ctx, g.UserID, g.Scope)}
	if !g.AuthTime.IsZero() {
		c.AuthTime = g.AuthTime.Unix()
	}
	tok, err := p.signer.Sign(ctx, c)
	if err != nil {
		return "", internal(err)
	}
	return tok, nil
}

// JWKS serves the public signing keys.
func (p *Provider) JWKS(w http.ResponseWriter, r *http.Request) {
	set, err := p.signer.JWKS(r.Context())
	if err != nil {
		p.fail(w, r, internal(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeBody(w, set)
}

// UserInfo serves OpenID Connect UserInfo (Core §5.3) to a Bearer token
// with the openid scope.
func (p *Provider) UserInfo(w http.ResponseWriter, r *http.Request) {
	raw, dpopScheme := "", false
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		raw = strings.TrimSpace(h[7:])
	} else if len(h) > 5 && strings.EqualFold(h[:5], "dpop ") {
		raw, dpopScheme = strings.TrimSpace(h[5:]), true
	} else if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err == nil {
			raw = r.PostForm.Get("access_token")
		}
	}
	challenge := func(code, desc string, status int) {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+desc+`"`)
		writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
	}
	if raw == "" {
		challenge("invalid_token", "an access token is required", http.StatusUnauthorized)
		return
	}
	t, err := p.p.CheckToken(r.Context(), raw)
	switch {
	case platform.Refused(err):
		challenge("invalid_token", "the access token is invalid, expired or revoked", http.StatusUnauthorized)
		return
	case err != nil:
		p.fail(w, r, internal(err))
		return
	}
	if err := p.p.CheckBinding(r.Context(), t, dpopScheme, r.Header.Get("DPoP"), r.Method, p.Cfg.PublicURL.JoinPath("/oauth/userinfo").String(), raw); err != nil {
		var be *platform.ErrBinding
		if errors.As(err, &be) {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token", error_description="`+be.Reason+`"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": be.Reason})
			return
		}
		p.fail(w, r, internal(err))
		return
	}
	if !t.Scope.Has(scope.OpenID) || t.UserID == 0 || t.CommunityID != 0 {
		challenge("insufficient_scope", "the token lacks the openid scope", http.StatusForbidden)
		return
	}
	out := map[string]any{"sub": strconv.FormatInt(t.UserID, 10)}
	c := p.userClaims(r.Context(), t.UserID, t.Scope)
	for k, v := range map[string]string{"name": c.Name, "given_name": c.GivenName, "family_name": c.FamilyName, "picture": c.Picture, "email": c.Email} {
		if v != "" {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// Discovery serves OpenID Connect Discovery's configuration.
func (p *Provider) Discovery(w http.ResponseWriter, r *http.Request) {
	m := p.metadata()
	m["subject_types_supported"] = []string{"public"}
	m["id_token_signing_alg_values_supported"] = []string{string(jose.RS256)}
	m["claims_supported"] = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "name", "given_name", "family_name", "picture", "email"}
	writeJSON(w, http.StatusOK, m)
}

// grantFor is the grant a code stands for.
func grantFor(code storage.Code) platform.Grant {
	return platform.Grant{Family: code.Hash, AppID: code.AppID, UserID: code.UserID, Scope: code.Scope, AuthTime: code.IssuedAt, Nonce: code.Nonce}
}
