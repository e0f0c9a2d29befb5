package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"latchkey/internal/dpop"
	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// RFC 7009 revocation, RFC 7662 introspection and RFC 8414 metadata.

// tokenParam reads a revocation or introspection request: the form, the
// client's authentication and the token parameter. It answers errors
// itself and reports whether it did not.
func (p *Provider) tokenParam(w http.ResponseWriter, r *http.Request) (storage.App, string, bool) {
	app, _, public, ok := p.clientRequest(w, r)
	if !ok {
		return app, "", false
	}
	if public {
		p.fail(w, r, newError(protocol.InvalidClient, 401, "client_secret is missing"))
		return app, "", false
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		p.fail(w, r, newError(protocol.InvalidRequest, 400, "token is missing"))
		return app, "", false
	}
	return app, raw, true
}

// Revoke serves POST /oauth/revoke. It answers 200 for unknown tokens and
// for other apps' tokens alike (RFC 7009 §2.2), revoking only the app's own.
func (p *Provider) Revoke(w http.ResponseWriter, r *http.Request) {
	app, raw, ok := p.tokenParam(w, r)
	if !ok {
		return
	}
	if err := p.p.RevokeToken(r.Context(), platform.Actor{IP: httpx.ClientIP(r)}, app.ID, raw); err != nil {
		p.fail(w, r, internal(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// Introspect serves POST /oauth/introspect (RFC 7662). An app sees only
// its own tokens; an API, authenticated with its introspection
// credentials, only the tokens whose audience it is. Any other token is
// {"active":false}.
func (p *Provider) Introspect(w http.ResponseWriter, r *http.Request) {
	if api, raw, ok, handled := p.apiIntrospection(w, r); handled {
		if ok {
			p.introspectFor(w, r, raw, func(t storage.Token) bool { return t.APIID == api.ID }, &api)
		}
		return
	}
	app, raw, ok := p.tokenParam(w, r)
	if !ok {
		return
	}
	p.introspectFor(w, r, raw, func(t storage.Token) bool { return t.AppID == app.ID }, nil)
}

// apiIntrospection authenticates an introspection by an API (its
// client_id is platform.IntrospectionClientID's, never an app's). handled
// is false for a request that is not an API's; ok, that it was
// authenticated and names a token (errors are answered).
func (p *Provider) apiIntrospection(w http.ResponseWriter, r *http.Request) (api storage.API, raw string, ok, handled bool) {
	if e := parseForm(w, r); e != nil {
		p.fail(w, r, e)
		return api, "", false, true
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if !strings.HasPrefix(id, "api-") {
		return api, "", false, false
	}
	api, err := p.apis.AuthenticateAPI(r.Context(), id, secret)
	switch {
	case errors.Is(err, platform.ErrBadAPICredentials):
		p.fail(w, r, newError(protocol.InvalidClient, 401, "the API's introspection client_id or secret is wrong"))
		return api, "", false, true
	case err != nil:
		p.fail(w, r, internal(err))
		return api, "", false, true
	}
	if raw = r.PostForm.Get("token"); raw == "" {
		p.fail(w, r, newError(protocol.InvalidRequest, 400, "token is missing"))
		return api, "", false, true
	}
	return api, raw, true, true
}

// introspectFor answers the introspection of raw for a caller that may see
// the tokens mine accepts; aud is the API asking (nil: an app).
func (p *Provider) introspectFor(w http.ResponseWriter, r *http.Request, raw string, mine func(storage.Token) bool, asking *storage.API) {
	t, err := p.p.CheckAccessToken(r.Context(), raw)
	if err != nil && !platform.Refused(err) {
		p.fail(w, r, internal(err))
		return
	}
	if err != nil || !mine(t) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	out := map[string]any{
		"active": true, "client_id": strconv.FormatInt(t.AppID, 10), "token_type": "bearer",
		"iat": t.IssuedAt.Unix(), "token_kind": t.Kind.String(), "iss": p.Issuer(),
	}
	if !t.ExpiresAt.IsZero() {
		out["exp"] = t.ExpiresAt.Unix()
	}
	if t.JKT != "" {
		out["token_type"] = "DPoP"
		out["cnf"] = map[string]string{"jkt": t.JKT} // RFC 9449 §6.2
	}
	if t.APIID != 0 {
		api := asking
		if api == nil {
			a, err := p.apis.Lookup(r.Context(), t.APIID)
			if err != nil {
				writeJSON(w, http.StatusOK, map[string]any{"active": false}) // its API is gone
				return
			}
			api = &a
		}
		out["aud"] = api.Identifier
		out["scope"] = strings.Join(platform.ScopeNames(api, t.Scope), " ")
		out["sub"] = strconv.FormatInt(t.AppID, 10) // a client's own token (RFC 9068 §2.2)
		if t.UserID != 0 {
			out["sub"] = strconv.FormatInt(t.UserID, 10)
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	switch t.Kind {
	case token.User:
		out["scope"] = t.Scope.Text(scope.User)
		out["sub"] = strconv.FormatInt(t.UserID, 10)
		out["user_id"] = t.UserID
	case token.Community:
		out["scope"] = t.Scope.Text(scope.Community)
		out["sub"] = "community:" + strconv.FormatInt(t.CommunityID, 10)
		out["group_id"] = t.CommunityID
	case token.Service:
		out["sub"] = "app:" + strconv.FormatInt(t.AppID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// Metadata serves RFC 8414 authorization server metadata.
func (p *Provider) Metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.metadata())
}

// metadata lists the endpoints and what they support: the RFC 8414
// document, which OpenID Connect discovery extends.
func (p *Provider) metadata() map[string]any {
	base := p.Cfg.PublicURL
	methods := []string{protocol.PKCES256}
	if p.Cfg.AllowPlainPKCE {
		methods = append(methods, protocol.PKCEPlain)
	}
	clientAuth := []string{"client_secret_basic", "client_secret_post"}
	if p.assertions != nil {
		clientAuth = append(clientAuth, platform.AuthPrivateKey)
	}
	m := map[string]any{
		"issuer":                                         p.Issuer(),
		"authorization_endpoint":                         base.JoinPath("/authorize").String(),
		"token_endpoint":                                 base.JoinPath("/access_token").String(),
		"revocation_endpoint":                            base.JoinPath("/oauth/revoke").String(),
		"introspection_endpoint":                         base.JoinPath("/oauth/introspect").String(),
		"userinfo_endpoint":                              base.JoinPath("/oauth/userinfo").String(),
		"jwks_uri":                                       base.JoinPath("/oauth/jwks").String(),
		"pushed_authorization_request_endpoint":          base.JoinPath("/oauth/par").String(),
		"device_authorization_endpoint":                  base.JoinPath("/oauth/device/code").String(),
		"end_session_endpoint":                           base.JoinPath("/oauth/logout").String(),
		"dpop_signing_alg_values_supported":              dpopAlgorithms(),
		"authorization_response_iss_parameter_supported": true,
		"response_types_supported":                       []string{protocol.ResponseCode, protocol.ResponseToken},
		"response_modes_supported":                       []string{"query", "fragment"},
		"grant_types_supported":                          slices.Concat(legacy.grantTypes, []string{protocol.GrantImplicit}),
		"code_challenge_methods_supported":               methods,
		"token_endpoint_auth_methods_supported":          append(clientAuth, "none"),
		"revocation_endpoint_auth_methods_supported":     clientAuth,
		"introspection_endpoint_auth_methods_supported":  clientAuth,
		"scopes_supported":                               scope.Known(scope.User).Names(scope.User),
		"acr_values_supported":                           platform.ACRValues,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
	}
	if p.assertions != nil {
		algs := make([]string, len(platform.AssertionAlgorithms))
		for i, a := range platform.AssertionAlgorithms {
			algs[i] = string(a)
		}
		for _, k := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
			m[k+"_auth_signing_alg_values_supported"] = algs
		}
	}
	if p.Cfg.ClientDocuments && p.documents != nil {
		m["client_id_metadata_document_supported"] = true
	}
	if p.Cfg.Registration != "" && p.Cfg.Registration != platform.RegistrationOff {
		m["registration_endpoint"] = base.JoinPath("/oauth/register").String()
	}
	return m
}

func dpopAlgorithms() []string {
	out := make([]string, len(dpop.Algorithms))
	for i, a := range dpop.Algorithms {
		out[i] = string(a)
	}
	return out
}
