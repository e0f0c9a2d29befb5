package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The token endpoints are one pipeline in two dialects: /access_token (VK's
// legacy one and the RFCs') and VK ID's /oauth2/auth. A request is read,
// its client authenticated, its grant picked by grant_type from one
// registry, run, and its answer encoded. Each grant is a small type in a
// file of its own (grant_*.go): it decodes its parameters, asks the
// platform, which issues every token, and returns what was issued. The
// dialect decides only the shapes: which grants it serves, whether a
// secret is needed, its words for errors and its answers.

// grant is one grant_type of the token endpoints.
type grant interface {
	// exchange runs an authenticated request: what was issued, or why not
	// (an *Error, or a platform error the dialect words).
	exchange(ctx context.Context, r *tokenRequest) (answer, error)
	// public reports whether a public client (a standalone app, without a
	// secret) may use the grant.
	public() bool
}

// presenter is a grant whose request presents an access token: its DPoP
// header is that token's proof, which the grant checks, not the token
// request's (RFC 9449 §5).
type presenter interface{ presentsToken() }

// grants is the registry of every grant type; a dialect serves some.
// VK's code exchange sends no grant_type: it is the code grant.
func grants(p *Provider) map[string]grant {
	code := &codeGrant{p: p}
	return map[string]grant{
		"":                              code,
		protocol.GrantAuthorizationCode: code,
		protocol.GrantRefreshToken:      &refreshGrant{p: p},
		protocol.GrantDeviceCode:        &deviceGrant{p: p},
		protocol.GrantTokenExchange:     &exchangeGrant{p: p},
		protocol.GrantClientCredentials: &clientCredentialsGrant{p: p},
		grantMigrate:                    &migrateGrant{p: p},
	}
}

// dialect is one way clients speak to the token endpoints.
type dialect struct {
	// kind is the platform's name for it: lifetimes, what answers carry.
	kind platform.Dialect
	// path is the endpoint's path, the htu of its DPoP proofs.
	path string
	// grantTypes are the named grant types it serves.
	grantTypes []string
	// secretless: every app may call without its secret, PKCE standing in
	// for it (VK ID); otherwise only standalone apps are public clients.
	secretless bool
	// device: requests name their VK ID device, and the codes and refresh
	// tokens they use must be that device's.
	device bool
	// words are the dialect's own errors for the pipeline's and the
	// platform's (nil: the pipeline's).
	words func(err error) *Error
}

// The two dialects.
var (
	legacy = &dialect{kind: platform.Legacy, path: "/access_token", grantTypes: []string{protocol.GrantAuthorizationCode,
		protocol.GrantRefreshToken, protocol.GrantDeviceCode, protocol.GrantTokenExchange, protocol.GrantClientCredentials}}
	vkid = &dialect{kind: platform.VKID, path: "/oauth2/auth", secretless: true, device: true, words: vkidWords,
		grantTypes: []string{protocol.GrantAuthorizationCode, protocol.GrantRefreshToken, grantMigrate}}
)

// serves reports whether the dialect serves grant type gt ("" is the
// legacy code exchange).
func (d *dialect) serves(gt string) bool {
	return gt == "" && d == legacy || slices.Contains(d.grantTypes, gt)
}

// refuse is the error a client of the dialect is answered for err.
func (d *dialect) refuse(err error) *Error {
	if d.words != nil {
		if e := d.words(err); e != nil {
			return e
		}
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return grantError(err)
}

// tokenRequest is a token request after the pipeline's shared steps.
type tokenRequest struct {
	d    *dialect
	http *http.Request
	form url.Values
	// client is the authenticated app, and secret the hash of the client
	// secret it authenticated with.
	client storage.App
	secret token.Hash
	// public: the client sent no secret; it proves nothing but its
	// client_id (RFC 8252 §8.4).
	public bool
	// jkt is the thumbprint of the DPoP key the request proved (RFC 9449
	// §5): the tokens issued are bound to it. "" without a DPoP header.
	jkt string
	ip  string
}

// issuance is the platform's request for a user token of grant g, issued
// to this request's client and key, by its dialect's rules.
func (r *tokenRequest) issuance(g platform.Grant, flow storage.Flow) platform.Issuance {
	g.JKT = r.jkt
	return platform.Issuance{Grant: g, Dialect: r.d.kind, Flow: flow, IP: r.ip}
}

// AccessToken serves GET and POST /access_token.
func (p *Provider) AccessToken(w http.ResponseWriter, r *http.Request) {
	client, secret, public, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	body, e := p.token(r, &tokenRequest{d: legacy, client: client, secret: secret, public: public})
	if e != nil {
		p.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// token is the pipeline after client authentication, in both dialects:
// the grant, the DPoP proof, the grant's run, the answer's shape.
func (p *Provider) token(r *http.Request, tr *tokenRequest) (map[string]any, *Error) {
	tr.http, tr.form, tr.ip = r, r.Form, httpx.ClientIP(r)
	gt := r.Form.Get("grant_type")
	g, ok := p.grants[gt]
	if !ok || !tr.d.serves(gt) {
		return nil, newError(protocol.UnsupportedGrantType, 400, fmt.Sprintf("grant_type %q is not supported: use %s", gt, strings.Join(tr.d.grantTypes, ", ")))
	}
	if tr.public && !g.public() {
		return nil, newError(protocol.InvalidClient, 401, "client_secret is missing: this grant needs the app's client secret")
	}
	if _, ok := g.(presenter); !ok {
		jkt, e := p.tokenProof(r, tr.d.path)
		if e != nil {
			return nil, e
		}
		tr.jkt = jkt
	}
	if tr.client.Profile == platform.ProfileFAPI2 && tr.jkt == "" {
		return nil, newError(protocol.InvalidRequest, http.StatusBadRequest, "a FAPI 2.0 app's tokens are bound to its key: send a DPoP proof (RFC 9449)")
	}
	a, err := g.exchange(r.Context(), tr)
	if err != nil {
		return nil, tr.d.refuse(err)
	}
	return a.encode(tr.d), nil
}

// answer is what a grant issued, for its dialect to shape.
type answer interface {
	encode(d *dialect) map[string]any
}

// issued is a user token's answer.
type issued platform.Issued

func (a issued) encode(d *dialect) map[string]any {
	out := map[string]any{"access_token": a.Access, "expires_in": int64(a.TTL / time.Second), "user_id": a.UserID}
	if d.kind == platform.VKID {
		out["token_type"], out["scope"] = "Bearer", VKIDScope(a.Scope)
	} else {
		out["token_type"], out["scope"] = "bearer", a.Scope.Text(scope.User)
	}
	if a.APIID != 0 {
		out["scope"] = a.ScopeText // an API's scopes, by its names
	}
	if a.JKT != "" {
		out["token_type"] = "DPoP"
	}
	for k, v := range map[string]string{"refresh_token": a.Refresh, "id_token": a.IDToken, "email": a.Email} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// body is an answer of one shape in every dialect.
type body map[string]any

func (b body) encode(*dialect) map[string]any { return b }

// clientRequest is the prologue of every endpoint an app's server or a
// device calls in the legacy dialect: read the form, authenticate the
// client. It answers errors itself and reports whether it did not.
func (p *Provider) clientRequest(w http.ResponseWriter, r *http.Request) (client storage.App, secret token.Hash, public, ok bool) {
	if e := parseForm(w, r); e != nil {
		p.fail(w, r, e)
		return client, secret, false, false
	}
	client, secret, public, err := p.authenticate(r, legacy)
	if err != nil {
		p.fail(w, r, legacy.refuse(err))
		return client, secret, public, false
	}
	return client, secret, public, true
}

// tokenProof checks the DPoP proof of a token request to path, if it has
// one, and returns its key's thumbprint.
func (p *Provider) tokenProof(r *http.Request, path string) (string, *Error) {
	proofs := r.Header.Values("DPoP")
	switch len(proofs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", newError(protocol.InvalidDPoPProof, 400, "more than one DPoP header")
	}
	pr, err := p.p.CheckProof(r.Context(), proofs[0], http.MethodPost, p.Cfg.PublicURL.JoinPath(path).String(), "")
	if errors.Is(err, platform.ErrUseNonce) {
		// A nonce of another node's (or an old one): RFC 9449 §8's answer.
		e := newError(protocol.UseDPoPNonce, 400, err.Error())
		e.Nonce = p.p.DPoPNonce()
		return "", e
	}
	if platform.ProofRefused(err) {
		return "", newError(protocol.InvalidDPoPProof, 400, err.Error())
	}
	if err != nil {
		return "", internal(err)
	}
	return pr.JKT, nil
}

const maxForm = 64 << 10

// parseForm reads GET query or POST form parameters (both, for POST).
func parseForm(w http.ResponseWriter, r *http.Request) *Error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return newError(protocol.InvalidRequest, 400, "the request body is not a valid form: "+err.Error())
	}
	return nil
}

// Why a client is not authenticated (vk-wire.md §2 has VK's words).
var (
	errNoClientID = newError(protocol.InvalidClient, 401, "client_id is missing")
	errNoSecret   = newError(protocol.InvalidClient, 401, "client_secret is missing")
)

// authenticate is the one client authentication of every endpoint an
// app's server or a device calls: by HTTP Basic (RFC 6749 §2.3.1,
// form-encoded id and secret) or by client_id and client_secret
// parameters. It returns the app and the hash of the secret that matched.
// An app that sends no secret is a public client (RFC 6749 §2.1,
// token_endpoint_auth_method none): identified, not authenticated, and
// only grants that allow it (with PKCE) take it. In the legacy dialect
// only standalone apps may be public; in VK ID's, every app (PKCE is
// always required there).
func (p *Provider) authenticate(r *http.Request, d *dialect) (app storage.App, secretHash token.Hash, public bool, err error) {
	if r.Form.Has("client_assertion") || r.Form.Has("client_assertion_type") {
		app, err := p.assertion(r)
		return app, secretHash, false, err
	}
	app, secretHash, public, err = p.bySecret(r, d)
	if err != nil {
		return app, secretHash, public, err
	}
	// An app that names its method is authenticated by it alone.
	_, _, basic := r.BasicAuth()
	switch m := app.AuthMethod; {
	case m == platform.AuthPrivateKey:
		return app, secretHash, public, errWrongMethod(m)
	case m == platform.AuthSecretBasic && (public || !basic), m == platform.AuthSecretPost && (public || basic), m == platform.AuthNone && !public:
		return app, secretHash, public, errWrongMethod(m)
	}
	return app, secretHash, public, nil
}

// errWrongMethod refuses a client authenticated otherwise than by its
// token_endpoint_auth_method.
func errWrongMethod(method string) *Error {
	return newError(protocol.InvalidClient, http.StatusUnauthorized, "this client authenticates with "+method+" only")
}

// assertion authenticates by private_key_jwt (RFC 7523 §2.2): the assertion
// alone, with no secret beside it.
func (p *Provider) assertion(r *http.Request) (storage.App, error) {
	// Basic with an empty password only names the client (some clients
	// send it so), as client_id would.
	id, secret, basic := r.BasicAuth()
	if basic && secret == "" {
		id, _ = url.QueryUnescape(id)
		if r.Form.Get("client_id") == "" {
			r.Form.Set("client_id", id)
		}
	}
	switch {
	case r.Form.Get("client_assertion_type") != platform.JWTBearer:
		return storage.App{}, newError(protocol.InvalidClient, http.StatusUnauthorized, "client_assertion_type must be "+platform.JWTBearer)
	case basic && secret != "" || r.Form.Has("client_secret"):
		return storage.App{}, newError(protocol.InvalidRequest, http.StatusBadRequest, "a client authenticates one way: a client_assertion or a secret, not both")
	case p.assertions == nil:
		return storage.App{}, newError(protocol.InvalidClient, http.StatusUnauthorized, "this server takes no client assertions")
	}
	audiences := []string{p.Issuer(), p.Cfg.PublicURL.JoinPath("/access_token").String(), p.Cfg.PublicURL.JoinPath(r.URL.Path).String()}
	ctx := platform.WithClientAddress(r.Context(), httpx.ClientIP(r)) // for a document client's first fetch
	app, err := p.assertions.Authenticate(ctx, r.Form.Get("client_id"), r.Form.Get("client_assertion"), audiences)
	var bad *platform.ErrBadAssertion
	switch {
	case errors.As(err, &bad):
		return app, newError(protocol.InvalidClient, http.StatusUnauthorized, bad.Error())
	case errors.Is(err, platform.ErrUnknownClient):
		return app, errBadClientID
	case err != nil:
		return app, internal(err)
	}
	return app, nil
}

// bySecret authenticates by client_secret, or identifies a public client.
func (p *Provider) bySecret(r *http.Request, d *dialect) (app storage.App, secretHash token.Hash, public bool, err error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return app, secretHash, false, errBadClientID
		}
	} else {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	if secret == "" {
		ctx := r.Context()
		if platform.IsDocumentURL(id) { // a document client: its address counts against new documents
			ctx = platform.WithClientAddress(ctx, httpx.ClientIP(r))
		}
		app, err := p.client(ctx, id)
		switch {
		case err != nil:
			return app, secretHash, false, err
		case d.secretless || app.Type == storage.Standalone:
			return app, secretHash, true, nil
		}
		return app, secretHash, false, errNoSecret
	}
	clientID, e := clientID(id)
	if e != nil {
		return app, secretHash, false, e
	}
	app, used, err := p.p.AuthenticateClient(r.Context(), clientID, secret)
	switch {
	case errors.Is(err, platform.ErrUnknownClient):
		return app, used, false, errBadClientID
	case errors.Is(err, platform.ErrBadSecret):
		return app, used, false, errBadSecret
	case err != nil:
		return app, used, false, internal(err)
	}
	return app, used, false, nil
}

// client is the app a client_id names, unauthenticated.
func (p *Provider) client(ctx context.Context, id string) (storage.App, error) {
	if platform.IsDocumentURL(id) && p.documents != nil {
		app, err := p.documents.App(ctx, id)
		if err != nil {
			return app, documentError(err)
		}
		return app, nil
	}
	clientID, e := clientID(id)
	if e != nil {
		return storage.App{}, e
	}
	app, err := p.p.LookupApp(ctx, clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return app, errBadClientID
	case err != nil:
		return app, internal(err)
	}
	return app, nil
}

// document finds a client by its metadata document, when the server knows
// any (nil otherwise).
func (p *Provider) document() func(ctx context.Context, url string) (storage.App, error) {
	if p.documents == nil {
		return nil
	}
	return p.documents.App
}

// documentError is why a client_id naming a metadata document is refused,
// or the failure of ours behind it.
func documentError(err error) *Error {
	var de *platform.ErrClientDocument
	if errors.As(err, &de) {
		return newError(protocol.InvalidClient, http.StatusUnauthorized, "client_id names a client metadata document that cannot be used: "+de.Reason)
	}
	return internal(err)
}

// clientID reads a client_id.
func clientID(id string) (int64, *Error) {
	if id == "" {
		return 0, errNoClientID
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, errBadClientID
	}
	return n, nil
}

// internal turns a failure of ours into the error the client sees,
// keeping the cause for the log (see fail).
func internal(err error) *Error {
	if errors.Is(err, storage.ErrUnavailable) {
		e := *errUnavailable
		e.cause = err
		return &e
	}
	e := newError(protocol.ServerError, 500, "internal error; try again")
	e.cause = err
	return e
}

// fail writes e as JSON, and logs its cause when it is a failure of ours.
func (p *Provider) fail(w http.ResponseWriter, r *http.Request, e *Error) {
	if p.logCause(w, r, e) {
		WriteJSON(w, e)
	}
}

// logCause logs the cause of e when it is a failure of ours, and reports
// whether the client is still there to be answered (when it went away, it
// has been answered with httpx.StatusClientClosed for the access log).
func (p *Provider) logCause(w http.ResponseWriter, r *http.Request, e *Error) bool {
	if e.cause == nil {
		return true
	}
	if httpx.ClientGone(r, e.cause) {
		p.log.DebugContext(r.Context(), "oauth: the client went away", "request_id", httpx.RequestID(w))
		w.WriteHeader(httpx.StatusClientClosed)
		return false
	}
	level := slog.LevelError
	if errors.Is(e.cause, storage.ErrUnavailable) {
		level = slog.LevelWarn
	}
	p.log.Log(r.Context(), level, "oauth: "+e.Description, "request_id", httpx.RequestID(w), "err", e.cause)
	return true
}

// errUnavailable answers while storage cannot be reached (RFC 6749 §4.1.2.1
// temporarily_unavailable), with 503 and Retry-After.
var errUnavailable = newError(protocol.TemporarilyUnavailable, http.StatusServiceUnavailable, "the server cannot reach its storage right now; try again in a few seconds")
