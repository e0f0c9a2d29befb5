package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
	// secret is the hash of the secret the client sent (public: none).
	secret token.Hash
	public bool
	// limitKey is the address and app the call counts against.
	limitKey token.Hash
}

// vkidBegin is the prologue of every VK ID endpoint: the merged form, the
// client authenticated as the dialect has it (its secret checked when one
// is sent: none is needed), CORS for the app's origins, and the rate
// limit. It answers errors itself and reports whether it did not.
func (p *Provider) vkidBegin(w http.ResponseWriter, r *http.Request) (*vkidCall, bool) {
	w.Header().Add("Vary", "Origin")
	if e := parseForm(w, r); e != nil {
		p.vkidFail(w, r, "", e)
		return nil, false
	}
	c := &vkidCall{p: p, r: r, form: r.Form, state: r.Form.Get("state"), ip: httpx.ClientIP(r)}
	app, secret, public, err := p.authenticate(r, vkid)
	if err != nil {
		c.fail(w, vkid.refuse(err))
		return nil, false
	}
	c.app, c.secret, c.public = app, secret, public
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
	app, err := p.client(r.Context(), r.URL.Query().Get("client_id"))
	if err != nil {
		p.vkidFail(w, r, "", vkid.refuse(err))
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
// the migration of a legacy token (vkid-wire.md §2, §3, §7), through the
// token endpoints' pipeline in VK ID's dialect.
func (p *Provider) VKIDAuth(w http.ResponseWriter, r *http.Request) {
	c, ok := p.vkidBegin(w, r)
	if !ok {
		return
	}
	body, e := p.token(r, &tokenRequest{d: vkid, client: c.app, secret: c.secret, public: c.public})
	if e != nil {
		c.fail(w, e)
		return
	}
	body["state"] = c.state
	c.ok(w, body)
}

// vkidWords are VK ID's words for the errors it shares with the legacy
// dialect (vkid-wire.md §8); nil for the others.
func vkidWords(err error) *Error {
	switch {
	case errors.Is(err, errNoClientID), errors.Is(err, errBadClientID):
		return errVKIDClientID
	case errors.Is(err, errNoCode), errors.Is(err, platform.ErrCodeInvalid):
		return errVKIDCode
	case errors.Is(err, platform.ErrCodeUsed):
		return errVKIDCodeUsed
	case errors.Is(err, platform.ErrCodeRedirect):
		return errVKIDRedirect
	case errors.Is(err, pkce.ErrMismatch), errors.Is(err, pkce.ErrUnexpected):
		return errVKIDMismatch
	case errors.Is(err, pkce.ErrMissing), errors.Is(err, pkce.ErrShape):
		return errVKIDVerifier
	case errors.Is(err, errNoRefresh), errors.Is(err, platform.ErrRefreshInvalid):
		return errVKIDRefresh
	case errors.Is(err, platform.ErrWiderScope):
		return errVKIDWiderRefresh
	}
	return nil
}

// VKIDScope is a grant's scope as VK ID writes it: space-separated names,
// vkid.personal_info first.
func VKIDScope(m scope.Mask) string {
	return strings.TrimSpace(scope.PersonalInfo + " " + m.Text(scope.User))
}

// grantMigrate is VK ID's grant_type for the migration of a legacy token.
const grantMigrate = "access_token"

// migrateGrant trades a legacy user token for a VK ID code (vkid-wire.md
// §7): the code carries the token's scopes, never more, is bound to the
// device and the PKCE challenge sent, and is redeemed as any other.
type migrateGrant struct{ p *Provider }

// public: the token presented is the proof.
func (g *migrateGrant) public() bool { return true }

// presentsToken: a DPoP header is the legacy token's proof.
func (g *migrateGrant) presentsToken() {}

func (g *migrateGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
	t, e := g.p.presented(r.http, r.form, r.client.ID, r.d.path)
	if e != nil {
		return nil, e
	}
	device, challenge := r.form.Get("device_id"), r.form.Get("code_challenge")
	method := challengeMethod(r.form.Get("code_challenge_method"))
	switch {
	case !ValidDeviceID(device):
		return nil, errVKIDDevice
	case method != protocol.PKCES256 || !pkce.Valid(challenge):
		return nil, errVKIDChallenge
	}
	code, err := g.p.codes.Issue(ctx, platform.CodeRequest{AppID: t.AppID, UserID: t.UserID, Scope: t.Scope,
		CodeChallenge: challenge, CodeChallengeMethod: method, IP: r.ip, DeviceID: device}, g.p.Cfg.CodeTTL)
	if err != nil {
		return nil, internal(err)
	}
	return body{"code": code, "device_id": device}, nil
}

// presented is the user token a VK ID request presents, in Authorization
// (Bearer, or DPoP with its proof for path) or as access_token: a live user
// token of the request's app.
func (p *Provider) presented(r *http.Request, form url.Values, appID int64, path string) (storage.Token, *Error) {
	raw, dpopScheme := httpx.Credential(r.Header.Get("Authorization"))
	if raw == "" {
		raw = form.Get("access_token")
	}
	if raw == "" {
		return storage.Token{}, errVKIDToken
	}
	ctx := r.Context()
	t, err := p.p.CheckToken(ctx, raw)
	switch {
	case platform.Refused(err):
		return t, errVKIDToken
	case err != nil:
		return t, internal(err)
	case t.Kind != token.User || t.AppID != appID || t.UserID == 0 || t.APIID != 0:
		return t, errVKIDToken
	}
	err = p.p.CheckBinding(ctx, t, dpopScheme, r.Header.Get("DPoP"), http.MethodPost, p.Cfg.PublicURL.JoinPath(path).String(), raw)
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
	t, e := p.presented(r, c.form, c.app.ID, "/oauth2/user_info")
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
	claims, err := p.issuer.IDTokenOf(r.Context(), c.form.Get("id_token"), c.app.ID)
	switch {
	case errors.Is(err, platform.ErrBadIDToken):
		c.fail(w, errVKIDIDToken)
		return
	case err != nil:
		c.fail(w, internal(err))
		return
	}
	id, _ := strconv.ParseInt(claims.Subject, 10, 64)
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
	t, e := p.presented(r, c.form, c.app.ID, path)
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
