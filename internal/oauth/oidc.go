package oauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
)

// OpenID Connect: id_tokens for the openid scope on the code flow,
// discovery, the JWKS and UserInfo.

// Signer publishes the keys id_tokens are signed with (platform.Signing).
type Signer interface {
	JWKS(ctx context.Context) (jose.JSONWebKeySet, error)
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
	raw, dpopScheme := httpx.Credential(r.Header.Get("Authorization"))
	if raw == "" && r.Method == http.MethodPost {
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
	if t.JKT != "" || dpopScheme {
		w.Header().Set("DPoP-Nonce", p.p.DPoPNonce())
	}
	if err := p.p.CheckBinding(r.Context(), t, dpopScheme, r.Header.Get("DPoP"), r.Method, p.Cfg.PublicURL.JoinPath("/oauth/userinfo").String(), raw); err != nil {
		var be *platform.ErrBinding
		if errors.As(err, &be) {
			code := "invalid_token"
			if be.UseNonce {
				code = protocol.UseDPoPNonce
			}
			w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`", error_description="`+be.Reason+`"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": code, "error_description": be.Reason})
			return
		}
		p.fail(w, r, internal(err))
		return
	}
	if t.APIID != 0 {
		challenge("invalid_token", "the access token is for another API", http.StatusUnauthorized)
		return
	}
	if !t.Scope.Has(scope.OpenID) || t.UserID == 0 || t.CommunityID != 0 {
		challenge("insufficient_scope", "the token lacks the openid scope", http.StatusForbidden)
		return
	}
	out := map[string]any{"sub": strconv.FormatInt(t.UserID, 10)}
	var c platform.UserClaims
	if t.Scope.Has(scope.Profile) || t.Scope.Has(scope.Email) {
		if u, err := p.p.User(r.Context(), t.UserID); err == nil {
			c = p.issuer.Claims(u, t.Scope)
		}
	}
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
	m["claims_supported"] = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "name", "given_name", "family_name", "picture", "email"}
	writeJSON(w, http.StatusOK, m)
}
