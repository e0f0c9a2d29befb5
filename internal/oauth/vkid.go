package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"latchkey/internal/httpx"
	"latchkey/internal/metrics"
	"latchkey/internal/pkce"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The VK ID dialect (vkid-wire.md): POST /oauth2/auth and the endpoints
// beside it, for VK's current SDKs. It is the same server as the legacy and
// RFC dialects — the same users, apps, consents, codes and refresh
// families — with VK ID's shapes: parameters from the query and the body
// merged, answers always JSON with state echoed, CORS for the app's
// registered origins, PKCE instead of a client secret.

// vkidTokenTTL is a VK ID access token's lifetime (vkid-wire.md §2).
const vkidTokenTTL = time.Hour

// vkidFailures and vkidBurst bound the failed calls to the VK ID endpoints
// per client address and app (a sustained rate per second, and the burst
// allowed, which also bounds the calls in flight at once): beyond, calls
// are answered slow_down (vkid-wire.md §8).
const (
	vkidFailures = 20
	vkidBurst    = 100
)

// VK ID's words for its errors (vkid-wire.md §8).
var (
	errVKIDVerifier     = newError(protocol.InvalidRequest, http.StatusBadRequest, "verifier is missing or invalid")
	errVKIDDevice       = newError(protocol.InvalidRequest, http.StatusBadRequest, "device_id is invalid")
	errVKIDChallenge    = newError(protocol.InvalidRequest, http.StatusBadRequest, "code_challenge is missing or invalid: send an S256 challenge")
	errVKIDCode         = newError(protocol.InvalidGrant, http.StatusBadRequest, "code is invalid or expired")
	errVKIDCodeUsed     = newError(protocol.InvalidGrant, http.StatusBadRequest, "code was already used")
	errVKIDMismatch     = newError(protocol.InvalidGrant, http.StatusBadRequest, "code_challenge does not match code_verifier")
	errVKIDRedirect     = newError(protocol.InvalidGrant, http.StatusBadRequest, "redirect_uri is invalid, please pass same redirect_uri, you used in authorize method.")
	errVKIDRefresh      = newError(protocol.InvalidGrant, http.StatusBadRequest, "refresh_token is missing or invalid")
	errVKIDToken        = newError("invalid_token", http.StatusUnauthorized, "access_token is missing, invalid, expired or revoked")
	errVKIDIDToken      = newError("invalid_id_token", http.StatusUnauthorized, "id_token is missing, invalid or expired")
	errVKIDSlowDown     = newError("slow_down", http.StatusTooManyRequests, "too many requests: slow down")
	errVKIDClientID     = newError(protocol.InvalidClient, http.StatusUnauthorized, "client_id is missing or unknown")
	errVKIDCommunity    = newError(protocol.InvalidGrant, http.StatusBadRequest, "a community code is redeemed at /access_token, not /oauth2/auth")
	errVKIDWiderRefresh = newError(protocol.InvalidScope, http.StatusBadRequest, "scope asks for more than the grant has")
)

// vkidCall is a request to a VK ID endpoint after the shared steps.
type vkidCall struct {
	p     *Provider
	r     *http.Request
	form  url.Values
	state string
	app   storage.App
	ip    string
	// limitKey is the address and app the call counts against.
	limitKey token.Hash
}

// vkidBegin is the prologue of every VK ID endpoint: the merged form, the
// app client_id names (with its secret checked when one is sent: none is
// needed), CORS for the app's origins, and the rate limit. It answers
// errors itself and reports whether it did not.
func (p *Provider) vkidBegin(w http.ResponseWriter, r *http.Request) (*vkidCall, bool) {
	w.Header().Add("Vary", "Origin")
	if e := parseForm(w, r); e != nil {
		p.vkidFail(w, r, "", e)
		return nil, false
	}
	c := &vkidCall{p: p, r: r, form: r.Form, state: r.Form.Get("state"), ip: httpx.ClientIP(r)}
	app, e := p.vkidApp(r.Context(), c.form.Get("client_id"), c.form.Get("client_secret"))
	if e != nil {
		c.fail(w, e)
		return nil, false
	}
	c.app = app
	if origin := r.Header.Get("Origin"); origin != "" && OriginAllowed(app, origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
	// Every request is counted before it is worked on, and given back
	// when it succeeds: what the limit bounds is failures (bad codes,
	// tokens and parameters) per address and app, not a busy app's server.
	c.limitKey = token.HashOf("vkid\x00" + c.ip + "\x00" + strconv.FormatInt(app.ID, 10))
	if !p.limits.Allow(c.limitKey, vkidFailures, vkidBurst, p.now()) {
		p.Metrics.Limited(metrics.LimitVKID)
		p.vkidFail(w, r, c.state, errVKIDSlowDown)
		return nil, false
	}
	return c, true
}

// ok answers a successful call with body, and gives back what the call
// took from the limit.
func (c *vkidCall) ok(w http.ResponseWriter, body any) {
	c.p.limits.Return(c.limitKey, vkidFailures)
	writeJSON(w, http.StatusOK, body)
}

// fail answers e with the call's state. A failure of ours (5xx) is given
// back to the limit: it is not the client's.
func (c *vkidCall) fail(w http.ResponseWriter, e *Error) {
	if e.Status >= 500 {
		c.p.limits.Return(c.limitKey, vkidFailures)
	}
	c.p.vkidFail(w, c.r, c.state, e)
}

// vkidApp is the app of client_id; a secret, when sent, must be its own.
func (p *Provider) vkidApp(ctx context.Context, clientID, secret string) (storage.App, *Error) {
	id, err := strconv.ParseInt(clientID, 10, 64)
	if err != nil || id <= 0 {
		return storage.App{}, errVKIDClientID
	}
	var app storage.App
	if secret != "" {
		app, _, err = p.p.AuthenticateClient(ctx, id, secret)
	} else {
		app, err = p.p.LookupApp(ctx, id)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, platform.ErrUnknownClient):
		return app, errVKIDClientID
	case errors.Is(err, platform.ErrBadSecret):
		return app, errBadSecret
	case err != nil:
		return app, internal(err)
	}
	return app, nil
}

// OriginAllowed reports whether a browser page at origin may read the
// app's VK ID answers: origin is that of one of its redirect URIs (for a
// standalone app's loopback redirect, on any port, as RFC 8252 §7.3 lets
// the redirect itself).
func OriginAllowed(app storage.App, origin string) bool {
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" || o.Path != "" || o.User != nil {
		return false
	}
	for _, ru := range app.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || u.Host == "" {
			continue
		}
		if u.Scheme == o.Scheme && u.Host == o.Host {
			return true
		}
		if app.Type == storage.Standalone && u.Scheme == "http" && o.Scheme == "http" && u.Port() == "" &&
			o.Port() != "" && u.Hostname() == o.Hostname() && loopbackMatch(ru, "http://"+o.Host+u.EscapedPath()) {
			return true
		}
	}
	return false
}

// VKIDPreflight answers CORS preflights (OPTIONS) of the VK ID endpoints:
// allowed for the app's origins, refused (as JSON) for others.
func (p *Provider) VKIDPreflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	app, e := p.vkidApp(r.Context(), r.URL.Query().Get("client_id"), "")
	if e != nil {
		p.vkidFail(w, r, "", e)
		return
	}
	if origin == "" || !OriginAllowed(app, origin) {
		p.vkidFail(w, r, "", newError(protocol.InvalidRequest, http.StatusForbidden, "the origin is not one of the app's redirect URIs' origins"))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// vkidFail answers e as VK ID does: JSON, always with error_description,
// and with the request's state when it had one.
func (p *Provider) vkidFail(w http.ResponseWriter, r *http.Request, state string, e *Error) {
	if !p.logCause(w, r, e) {
		return
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	body := map[string]string{"error": e.Code, "error_description": e.Description}
	if state != "" {
		body["state"] = state
	}
	writeJSON(w, e.Status, body)
}

// VKIDAuth serves POST /oauth2/auth: the code exchange, the refresh, and
// the migration of a legacy token (vkid-wire.md §2, §3, §7).
func (p *Provider) VKIDAuth(w http.ResponseWriter, r *http.Request) {
	c, ok := p.vkidBegin(w, r)
	if !ok {
		return
	}
	var body map[string]any
	var e *Error
	switch gt := c.form.Get("grant_type"); gt {
	case protocol.GrantAuthorizationCode, protocol.GrantRefreshToken:
		jkt, pe := p.tokenProof(r, "/oauth2/auth")
		if pe != nil {
			e = pe
			break
		}
		if gt == protocol.GrantAuthorizationCode {
			body, e = p.vkidCode(c, jkt)
		} else {
			body, e = p.vkidRefresh(c, jkt)
		}
	case "access_token":
		body, e = p.vkidMigrate(c)
	default:
		e = newError(protocol.UnsupportedGrantType, http.StatusBadRequest, "grant_type must be authorization_code, refresh_token or access_token")
	}
	if e != nil {
		c.fail(w, e)
		return
	}
	body["state"] = c.state
	c.ok(w, body)
}

// vkidCode redeems a code (vkid-wire.md §2): PKCE always, the code's own
// device_id, the redirect URI it was issued for.
func (p *Provider) vkidCode(c *vkidCall, jkt string) (map[string]any, *Error) {
	ctx := c.r.Context()
	verifier, device := c.form.Get("code_verifier"), c.form.Get("device_id")
	switch {
	case !pkce.ValidVerifier(verifier):
		return nil, errVKIDVerifier
	case !ValidDeviceID(device):
		return nil, errVKIDDevice
	case c.form.Get("code") == "":
		return nil, errVKIDCode
	}
	// The code's own device, and a user's: checked before the code is
	// spent, so that a wrong device_id cannot spend another's code.
	fits := func(code storage.Code) error {
		switch {
		case len(code.CommunityIDs) > 0:
			return errVKIDCommunity
		case code.DeviceID != device:
			return errVKIDDevice
		}
		return nil
	}
	code, err := p.codes.Redeem(ctx, c.form.Get("code"), platform.Redemption{AppID: c.app.ID, RedirectURI: c.form.Get("redirect_uri"), Verifier: verifier, Fits: fits})
	var refused *Error
	switch {
	case errors.As(err, &refused):
		return nil, refused
	case errors.Is(err, platform.ErrCodeUsed):
		return nil, errVKIDCodeUsed
	case errors.Is(err, platform.ErrCodeInvalid):
		return nil, errVKIDCode
	case errors.Is(err, platform.ErrCodeRedirect):
		return nil, errVKIDRedirect
	case errors.Is(err, pkce.ErrMismatch), errors.Is(err, pkce.ErrUnexpected):
		return nil, errVKIDMismatch
	case errors.Is(err, pkce.ErrMissing), errors.Is(err, pkce.ErrShape):
		return nil, errVKIDVerifier
	case err != nil:
		return nil, grantError(err)
	}
	g := grantFor(code)
	g.JKT, g.DeviceID = jkt, device
	refresh, err := p.refreshes.Issue(ctx, g)
	if err != nil {
		return nil, grantError(err)
	}
	return p.vkidTokens(c, g, refresh, storage.FlowCode, code.Nonce, jkt)
}

// vkidRefresh rotates a refresh token (vkid-wire.md §3): only with the app
// and device it was issued to; a new one every time; a spent one revokes
// the grant. scope may narrow the access token, never widen it.
func (p *Provider) vkidRefresh(c *vkidCall, jkt string) (map[string]any, *Error) {
	raw, device := c.form.Get("refresh_token"), c.form.Get("device_id")
	if raw == "" {
		return nil, errVKIDRefresh
	}
	if !ValidDeviceID(device) {
		return nil, errVKIDDevice
	}
	narrow := scope.Mask(-1)
	if s := c.form.Get("scope"); s != "" {
		m, err := scope.Parse(scope.User, s)
		if err != nil {
			return nil, newError(protocol.InvalidScope, http.StatusBadRequest, err.Error())
		}
		narrow = m
	}
	g, next, err := p.refreshes.Rotate(c.r.Context(), raw, c.app.ID, storage.Holder{JKT: jkt, DeviceID: device})
	switch {
	case errors.Is(err, platform.ErrRefreshInvalid):
		return nil, errVKIDRefresh
	case err != nil:
		return nil, grantError(err)
	}
	if narrow != -1 {
		if !g.Scope.Has(narrow) {
			return nil, errVKIDWiderRefresh
		}
		g.Scope = narrow
	}
	return p.vkidTokens(c, g, next, storage.FlowRefresh, "", jkt)
}

// vkidTokens issues the grant's next access token and answers it with the
// refresh token and an id_token (vkid-wire.md §2): user_id an integer,
// scope space-separated with vkid.personal_info.
func (p *Provider) vkidTokens(c *vkidCall, g platform.Grant, refresh string, flow storage.Flow, nonce, jkt string) (map[string]any, *Error) {
	ctx := c.r.Context()
	access, _, err := p.p.IssueToken(ctx, storage.Token{Kind: token.User, AppID: g.AppID, UserID: g.UserID,
		Scope: g.Scope, IP: c.ip, Flow: flow, CodeHash: &g.Family, JKT: jkt}, vkidTokenTTL)
	if err != nil {
		return nil, grantError(err)
	}
	typ := "Bearer"
	if jkt != "" {
		typ = "DPoP"
	}
	out := map[string]any{
		"access_token": access, "refresh_token": refresh, "token_type": typ,
		"expires_in": int64(vkidTokenTTL / time.Second), "user_id": g.UserID, "scope": VKIDScope(g.Scope),
	}
	// A sign-in always has an id_token; a refresh only for OpenID Connect
	// clients (vkid-wire.md §3: it may be omitted), since signing one is
	// the costliest step of the answer.
	if flow != storage.FlowRefresh || g.Scope.Has(scope.OpenID) {
		id, e := p.idToken(ctx, g, nonce)
		if e != nil {
			return nil, e
		}
		out["id_token"] = id
	}
	return out, nil
}

// VKIDScope is a grant's scope as VK ID writes it: space-separated names,
// vkid.personal_info first.
func VKIDScope(m scope.Mask) string {
	return strings.TrimSpace(scope.PersonalInfo + " " + m.Text(scope.User))
}

// vkidMigrate trades a legacy user token for a VK ID code (vkid-wire.md
// §7): the code carries the token's scopes, never more, is bound to the
// device and the PKCE challenge sent, and is redeemed as any other.
func (p *Provider) vkidMigrate(c *vkidCall) (map[string]any, *Error) {
	t, e := p.vkidToken(c, "/oauth2/auth")
	if e != nil {
		return nil, e
	}
	device, challenge := c.form.Get("device_id"), c.form.Get("code_challenge")
	method := challengeMethod(c.form.Get("code_challenge_method"))
	switch {
	case !ValidDeviceID(device):
		return nil, errVKIDDevice
	case method != protocol.PKCES256 || !pkce.Valid(challenge):
		return nil, errVKIDChallenge
	}
	code, err := p.codes.Issue(c.r.Context(), platform.CodeRequest{AppID: t.AppID, UserID: t.UserID, Scope: t.Scope,
		CodeChallenge: challenge, CodeChallengeMethod: method, IP: c.ip, DeviceID: device}, p.Cfg.CodeTTL)
	if err != nil {
		return nil, internal(err)
	}
	return map[string]any{"code": code, "device_id": device}, nil
}

// vkidToken is the user token a VK ID request presents, as access_token or
// in Authorization (Bearer, or DPoP with its proof for path): a user token
// of the request's app, live.
func (p *Provider) vkidToken(c *vkidCall, path string) (storage.Token, *Error) {
	raw, dpopScheme := c.form.Get("access_token"), false
	if h := c.r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		raw = strings.TrimSpace(h[7:])
	} else if len(h) > 5 && strings.EqualFold(h[:5], "dpop ") {
		raw, dpopScheme = strings.TrimSpace(h[5:]), true
	}
	if raw == "" {
		return storage.Token{}, errVKIDToken
	}
	ctx := c.r.Context()
	t, err := p.p.CheckToken(ctx, raw)
	switch {
	case platform.Refused(err):
		return t, errVKIDToken
	case err != nil:
		return t, internal(err)
	case t.Kind != token.User || t.AppID != c.app.ID || t.UserID == 0:
		return t, errVKIDToken
	}
	err = p.p.CheckBinding(ctx, t, dpopScheme, c.r.Header.Get("DPoP"), http.MethodPost, p.Cfg.PublicURL.JoinPath(path).String(), raw)
	var be *platform.ErrBinding
	switch {
	case errors.As(err, &be):
		return t, newError("invalid_token", http.StatusUnauthorized, be.Reason)
	case err != nil:
		return t, internal(err)
	}
	return t, nil
}

// VKIDUserInfo serves POST /oauth2/user_info (vkid-wire.md §4): user_id a
// string, email only with its scope.
func (p *Provider) VKIDUserInfo(w http.ResponseWriter, r *http.Request) {
	c, ok := p.vkidBegin(w, r)
	if !ok {
		return
	}
	t, e := p.vkidToken(c, "/oauth2/user_info")
	if e != nil {
		c.fail(w, e)
		return
	}
	u, err := p.p.User(r.Context(), t.UserID)
	if err != nil {
		c.fail(w, internal(err))
		return
	}
	user := map[string]any{
		"user_id": strconv.FormatInt(u.ID, 10), "first_name": u.FirstName, "last_name": u.LastName,
		"avatar": platform.AvatarURL(p.Cfg.PublicURL, u.ID, 200), "sex": 0, "verified": false, "birthday": "",
	}
	if t.Scope.Has(scope.Email) && u.Email != "" {
		user["email"] = u.Email
	}
	c.ok(w, map[string]any{"user": user})
}

// VKIDPublicInfo serves POST /oauth2/public_info (vkid-wire.md §5): what an
// id_token of this app says of its user, masked.
func (p *Provider) VKIDPublicInfo(w http.ResponseWriter, r *http.Request) {
	c, ok := p.vkidBegin(w, r)
	if !ok {
		return
	}
	var claims idClaims
	err := p.signer.Verify(r.Context(), c.form.Get("id_token"), &claims)
	switch {
	case errors.Is(err, platform.ErrBadJWT):
		c.fail(w, errVKIDIDToken)
		return
	case err != nil:
		c.fail(w, internal(err))
		return
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || claims.Audience != strconv.FormatInt(c.app.ID, 10) || claims.Issuer != p.Issuer() || !p.now().Before(time.Unix(claims.Expiry, 0)) {
		c.fail(w, errVKIDIDToken)
		return
	}
	u, err := p.p.User(r.Context(), id)
	if err != nil {
		c.fail(w, errVKIDIDToken)
		return
	}
	user := map[string]any{
		"user_id": strconv.FormatInt(u.ID, 10), "first_name": u.FirstName, "last_name": initial(u.LastName),
		"avatar": platform.AvatarURL(p.Cfg.PublicURL, u.ID, 200),
	}
	if claims.Email != "" {
		user["email"] = maskEmail(claims.Email)
	}
	c.ok(w, map[string]any{"user": user})
}

// initial is a name's first letter and a dot ("Ivanov" → "I.").
func initial(name string) string {
	if name == "" {
		return ""
	}
	r, _ := utf8.DecodeRuneInString(name)
	return string(r) + "."
}

// maskEmail keeps an address's first letter and its domain
// ("ivan@example.com" → "i***@example.com").
func maskEmail(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "***@" + domain
}

// VKIDLogout serves POST /oauth2/logout (vkid-wire.md §6): this sign-in's
// tokens stop working; other sign-ins stay.
func (p *Provider) VKIDLogout(w http.ResponseWriter, r *http.Request) {
	p.vkidEnd(w, r, "/oauth2/logout", func(ctx context.Context, actor platform.Actor, t storage.Token) error {
		return p.p.EndSignIn(ctx, actor, t)
	})
}

// VKIDRevoke serves POST /oauth2/revoke (vkid-wire.md §6): the app's
// access is withdrawn, as "Remove access" does.
func (p *Provider) VKIDRevoke(w http.ResponseWriter, r *http.Request) {
	p.vkidEnd(w, r, "/oauth2/revoke", func(ctx context.Context, actor platform.Actor, t storage.Token) error {
		return p.p.RemoveAppAccess(ctx, actor, t.UserID, t.AppID)
	})
}

func (p *Provider) vkidEnd(w http.ResponseWriter, r *http.Request, path string, end func(context.Context, platform.Actor, storage.Token) error) {
	c, ok := p.vkidBegin(w, r)
	if !ok {
		return
	}
	t, e := p.vkidToken(c, path)
	if e != nil {
		c.fail(w, e)
		return
	}
	if err := end(r.Context(), platform.Actor{UserID: t.UserID, IP: c.ip}, t); err != nil {
		c.fail(w, internal(err))
		return
	}
	c.ok(w, map[string]int{"response": 1})
}

// vkidEndpoints are the dialect's paths, for VKIDElse.
var vkidEndpoints = map[string]bool{"/oauth2/auth": true, "/oauth2/user_info": true, "/oauth2/public_info": true, "/oauth2/logout": true, "/oauth2/revoke": true}

// VKIDElse answers the rest of /oauth2/ in JSON too, since VK ID's clients
// read every answer as JSON: an endpoint asked with another method than
// POST, or a path that is none.
func (p *Provider) VKIDElse(w http.ResponseWriter, r *http.Request) {
	if vkidEndpoints[r.URL.Path] {
		w.Header().Set("Allow", "POST, OPTIONS")
		p.vkidFail(w, r, "", newError(protocol.InvalidRequest, http.StatusMethodNotAllowed, r.URL.Path+" takes POST"))
		return
	}
	p.vkidFail(w, r, "", newError(protocol.InvalidRequest, http.StatusNotFound, "no such endpoint: "+r.URL.Path))
}
