package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The token endpoint, /access_token, is a pipeline: read the form,
// authenticate the client, pick the grant by grant_type, run it, answer.
// Each grant is a small type in a file of its own (grant_*.go) registered in
// grants below; it gets an authenticated client and never parses or
// authenticates anything the pipeline already did.

// grant is one grant_type of the token endpoint.
type grant interface {
	// exchange answers an authenticated request: the JSON body of a
	// successful answer, or an OAuth error.
	exchange(ctx context.Context, r *tokenRequest) (any, *Error)
	// public reports whether a public client (a standalone app, without a
	// secret) may use the grant.
	public() bool
}

// grants lists the grant types the endpoint serves. VK's code exchange
// sends no grant_type: it is the code grant.
func grants(p *Provider) map[string]grant {
	code := &codeGrant{p: p}
	return map[string]grant{
		"":                              code,
		protocol.GrantAuthorizationCode: code,
		protocol.GrantRefreshToken:      &refreshGrant{p: p},
		protocol.GrantDeviceCode:        &deviceGrant{p: p},
		protocol.GrantTokenExchange:     &exchangeGrant{p: p},
		protocol.GrantClientCredentials: &clientCredentialsGrant{p: p},
	}
}

// tokenRequest is a token request after the pipeline's shared steps.
type tokenRequest struct {
	form url.Values
	// client is the authenticated app, and secret the hash of the client
	// secret it authenticated with.
	client storage.App
	secret token.Hash
	// public: the client is a standalone app that sent no secret (RFC 8252
	// §8.4); it proves nothing but its client_id.
	public bool
	// jkt is the thumbprint of the DPoP key the request proved (RFC 9449
	// §5): the tokens issued are bound to it. "" without a DPoP header.
	jkt string
	ip  string
}

// AccessToken serves GET and POST /access_token.
func (p *Provider) AccessToken(w http.ResponseWriter, r *http.Request) {
	client, secret, public, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	gt := r.Form.Get("grant_type")
	g, ok := p.grants[gt]
	if !ok {
		p.fail(w, r, newError(protocol.UnsupportedGrantType, 400, fmt.Sprintf("grant_type %q is not supported: use %s", gt, strings.Join(p.grantTypes(), ", "))))
		return
	}
	if public && !g.public() {
		p.fail(w, r, newError(protocol.InvalidClient, 401, "client_secret is missing: this grant needs the app's client secret"))
		return
	}
	jkt, e := p.tokenProof(r, "/access_token")
	if e != nil {
		p.fail(w, r, e)
		return
	}
	body, e := g.exchange(r.Context(), &tokenRequest{form: r.Form, client: client, secret: secret, public: public, jkt: jkt, ip: httpx.ClientIP(r)})
	if e != nil {
		p.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// grantTypes are the named grant types served, for errors and metadata.
func (p *Provider) grantTypes() []string {
	return []string{protocol.GrantAuthorizationCode, protocol.GrantRefreshToken, protocol.GrantDeviceCode, protocol.GrantTokenExchange, protocol.GrantClientCredentials}
}

// clientRequest is the prologue of every endpoint an app's server or a
// device calls: read the form, authenticate the client. It answers errors
// itself and reports whether it did not.
func (p *Provider) clientRequest(w http.ResponseWriter, r *http.Request) (client storage.App, secret token.Hash, public, ok bool) {
	if e := parseForm(w, r); e != nil {
		p.fail(w, r, e)
		return client, secret, false, false
	}
	client, secret, public, e := p.authenticate(r)
	if e != nil {
		p.fail(w, r, e)
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

// authenticate authenticates the app by HTTP Basic (RFC 6749 §2.3.1,
// form-encoded id and secret) or by client_id and client_secret
// parameters, and returns the hash of the secret that matched. A
// standalone app that sends no secret is a public client (RFC 6749 §2.1,
// token_endpoint_auth_method none): it is identified, not authenticated,
// and only grants that allow it (with PKCE) take it. Web and iframe apps
// always authenticate.
func (p *Provider) authenticate(r *http.Request) (app storage.App, secretHash token.Hash, public bool, e *Error) {
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
	if id == "" {
		return app, secretHash, false, newError(protocol.InvalidClient, 401, "client_id is missing")
	}
	clientID, err := strconv.ParseInt(id, 10, 64)
	if err != nil || clientID <= 0 {
		return app, secretHash, false, errBadClientID
	}
	if secret == "" {
		app, err := p.p.LookupApp(r.Context(), clientID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return app, secretHash, false, errBadClientID
		case err != nil:
			return app, secretHash, false, internal(err)
		case app.Type == storage.Standalone:
			return app, secretHash, true, nil
		}
		return app, secretHash, false, newError(protocol.InvalidClient, 401, "client_secret is missing")
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
