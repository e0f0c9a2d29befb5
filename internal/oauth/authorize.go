package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/pkce"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// MaxCommunities is how many group_ids one request may name.
const MaxCommunities = 100

// MaxQuery bounds an /authorize request's query: state and the rest fit
// many times over, and no unauthenticated request makes the server carry
// more through the login and consent pages.
const MaxQuery = 16 << 10

// ErrTooLarge refuses an /authorize request over MaxQuery (never redirected:
// nothing of it is trusted yet).
var ErrTooLarge = newError(protocol.InvalidRequest, http.StatusBadRequest, "the request is too large")

// AuthorizeRequest is a checked /authorize request.
type AuthorizeRequest struct {
	App          storage.App
	RedirectURI  string
	ResponseType string
	Scope        scope.Mask
	// CommunityIDs is set for a community-token request (group_ids).
	CommunityIDs        []int64
	State               string
	Display             string
	Revoke              bool
	CodeChallenge       string
	CodeChallengeMethod string
	// Pushed: the parameters came from a pushed authorization request
	// (RFC 9126).
	Pushed bool
	// Nonce is OpenID Connect's, for the id_token.
	Nonce string
	// Params are the request's parameters as received, for re-posting them
	// from the consent form.
	Params url.Values
	// Issuer is this server's issuer identifier, sent back as iss.
	Issuer string
	// Prompt is OpenID Connect's and VK ID's prompt (vkid-wire.md §1).
	Prompt Prompt
	// MaxAge is OpenID Connect's max_age: how long ago the person may
	// have proved who they are (-1: not asked).
	MaxAge time.Duration
	// ACR is the lowest sign-in level acr_values asks for ("" for none):
	// a session at any level it names, or above, answers it.
	ACR string
	// LoginHint is the login the app expects (OpenID Connect's
	// login_hint), written into the login form.
	LoginHint string
	// Lang and Scheme choose the dialog's language ("ru", "en"; "" for the
	// browser's) and colour theme ("light", "dark"; "" for light), from VK
	// ID's lang_id and scheme.
	Lang, Scheme string
	// DeviceID is the browser's VK ID device_id, set by the page that
	// approves the request: the code is bound to it.
	DeviceID string
	// API is the API the request's resource names (RFC 8707; nil: the
	// built-in API). Scope is then a mask of its scopes, and Claims the
	// OpenID Connect scopes asked beside them.
	API    *storage.API
	Claims scope.Mask
}

// Prompt is the set of prompt values a request sent.
type Prompt struct {
	// None: answer without any page, or with login_required or
	// interaction_required.
	None bool
	// Login: ask for the password again.
	Login bool
	// Consent: show the dialog even when the consent covers the request.
	Consent bool
	// SelectAccount is accepted; a browser has one account signed in.
	SelectAccount bool
}

func parsePrompt(s string) (Prompt, error) {
	var p Prompt
	for v := range strings.FieldsSeq(s) {
		switch v {
		case "none":
			p.None = true
		case "login":
			p.Login = true
		case "consent":
			p.Consent = true
		case "select_account":
			p.SelectAccount = true
		default:
			return p, fmt.Errorf("prompt %q is not supported: use none, login, consent or select_account", v)
		}
	}
	if p.None && (p.Login || p.Consent || p.SelectAccount) {
		return p, errors.New("prompt=none cannot be combined with other values") // OpenID Connect Core §3.1.2.1
	}
	return p, nil
}

// parseMaxAge reads max_age: whole seconds, 0 or more.
func parseMaxAge(s string) (time.Duration, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 10*365*24*3600 {
		return -1, fmt.Errorf("max_age %q is not a number of seconds", s)
	}
	return time.Duration(n) * time.Second, nil
}

// parseACRValues reads acr_values, a list of the levels the app would
// take: the lowest of those Latchkey knows is the one asked; values it does
// not know are ignored (OpenID Connect Core §3.1.2.1: a voluntary claim),
// and a list of none of them asks nothing.
func parseACRValues(s string) (string, error) {
	if len(s) > 1024 {
		return "", errors.New("acr_values is longer than 1024 characters")
	}
	lowest := ""
	for v := range strings.FieldsSeq(s) {
		if l := platform.LevelOf(v); l > 0 && (lowest == "" || l < platform.LevelOf(lowest)) {
			lowest = v
		}
	}
	return lowest, nil
}

// OpenID reports whether the request is an OpenID Connect one (scope
// openid): its errors then use OpenID Connect's words where VK's differ.
func (r *AuthorizeRequest) OpenID() bool {
	return r.Scope.Has(scope.OpenID) && r.API == nil || r.Claims.Has(scope.OpenID)
}

// Audience is whose scope vocabulary the request uses.
func (r *AuthorizeRequest) Audience() scope.Audience {
	if len(r.CommunityIDs) > 0 {
		return scope.Community
	}
	return scope.User
}

// AppLookup finds an app by client_id.
type AppLookup func(ctx context.Context, id int64) (storage.App, error)

// AuthorizeConfig is what parsing depends on besides the request.
type AuthorizeConfig struct {
	// BlankURL is <public-url>/blank.html, always allowed for standalone apps.
	BlankURL       string
	AllowPlainPKCE bool
	// Issuer is the iss of every answer (RFC 9207); "" sends none.
	Issuer string
	// Resource finds the API a resource names (nil for the built-in
	// API); nil: requests serve the built-in API only.
	Resource func(ctx context.Context, resource string) (*storage.API, error)
	// Document finds the app of a client whose client_id is the URL of
	// its metadata document; nil: no client is.
	Document func(ctx context.Context, url string) (storage.App, error)
}

// ParseAuthorize checks an /authorize request (vk-wire.md §1). The client
// and the redirect URI are checked first: until both are known good, every
// error is for an error page, never a redirect (RFC 6749 §4.1.2.1). After
// that, errors are redirectable.
func ParseAuthorize(ctx context.Context, q url.Values, apps AppLookup, cfg AuthorizeConfig) (*AuthorizeRequest, error) {
	req := &AuthorizeRequest{Params: q, State: q.Get("state"), Issuer: cfg.Issuer}
	var app storage.App
	var err error
	if raw := q.Get("client_id"); platform.IsDocumentURL(raw) && cfg.Document != nil {
		if app, err = cfg.Document(ctx, raw); err != nil {
			return nil, documentError(err)
		}
	} else {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			return nil, errBadClientID
		}
		app, err = apps(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errBadClientID
		}
		if err != nil {
			return nil, err
		}
	}
	req.App = app
	req.RedirectURI = q.Get("redirect_uri")
	if !RedirectURIAllowed(app, req.RedirectURI, cfg.BlankURL) {
		return nil, errBadRedirectURI
	}

	// From here on the redirect URI is trusted; the response type decides
	// whether errors travel in the query or the fragment.
	req.ResponseType = q.Get("response_type")
	switch req.ResponseType {
	case "":
		req.ResponseType = protocol.ResponseCode
	case protocol.ResponseCode, protocol.ResponseToken:
	default:
		req.ResponseType = protocol.ResponseCode
		return req, newError(protocol.UnsupportedResponseType, 400, fmt.Sprintf("response_type %q is not supported: use code or token", q.Get("response_type"))).redirectable()
	}
	req.Display = protocol.Display(q.Get("display"))
	req.Revoke = q.Get("revoke") == "1"
	if req.Prompt, err = parsePrompt(q.Get("prompt")); err != nil {
		return req, newError(protocol.InvalidRequest, 400, err.Error()).redirectable()
	}
	if req.Prompt.Consent {
		req.Revoke = true
	}
	if req.MaxAge, err = parseMaxAge(q.Get("max_age")); err != nil {
		return req, newError(protocol.InvalidRequest, 400, err.Error()).redirectable()
	}
	if req.ACR, err = parseACRValues(q.Get("acr_values")); err != nil {
		return req, newError(protocol.InvalidRequest, 400, err.Error()).redirectable()
	}
	if req.LoginHint = q.Get("login_hint"); len(req.LoginHint) > 256 {
		req.LoginHint = ""
	}
	req.Lang, req.Scheme = protocol.VKIDLang(q.Get("lang_id")), protocol.VKIDScheme(q.Get("scheme"))

	if g := q.Get("group_ids"); g != "" {
		if req.CommunityIDs, err = parseIDs(g); err != nil {
			return req, newError(protocol.InvalidRequest, 400, "group_ids: "+err.Error()).redirectable()
		}
	}
	if e := resourceOf(ctx, req, q, cfg); e != nil {
		return req, e.redirectable()
	}
	if req.API != nil {
		if req.Scope, req.Claims, err = apiRequestScopes(req.API, q.Get("scope")); err != nil {
			return req, newError(protocol.InvalidScope, 400, err.Error()).redirectable()
		}
	} else if req.Scope, err = scope.Parse(req.Audience(), q.Get("scope")); err != nil {
		return req, newError(protocol.InvalidScope, 400, err.Error()).redirectable()
	}

	req.Nonce = q.Get("nonce")
	if len(req.Nonce) > 512 {
		return req, newError(protocol.InvalidRequest, 400, "nonce is longer than 512 characters").redirectable()
	}
	req.CodeChallenge = q.Get("code_challenge")
	req.CodeChallengeMethod = challengeMethod(q.Get("code_challenge_method"))
	if req.CodeChallenge != "" {
		if req.ResponseType != protocol.ResponseCode {
			return req, newError(protocol.InvalidRequest, 400, "code_challenge is for response_type=code only").redirectable()
		}
		if req.CodeChallengeMethod == "" {
			req.CodeChallengeMethod = protocol.PKCEPlain // RFC 7636 §4.3
		}
		if err := checkChallenge(req.CodeChallenge, req.CodeChallengeMethod, cfg.AllowPlainPKCE); err != nil {
			return req, err
		}
	} else if req.CodeChallengeMethod != "" {
		return req, newError(protocol.InvalidRequest, 400, "code_challenge_method without code_challenge").redirectable()
	}
	if app.Type == storage.Standalone && req.ResponseType == protocol.ResponseCode && req.CodeChallenge == "" {
		// RFC 9700 §2.1.1: public clients must use PKCE.
		return req, newError(protocol.InvalidRequest, 400, "standalone apps must use PKCE with the code flow: send code_challenge and code_challenge_method=S256").redirectable()
	}
	return req, nil
}

// challengeMethod names a code_challenge_method as RFC 7636 does: VK ID's
// SDKs send s256 (the web) and sha256 (Android) for S256.
func challengeMethod(m string) string {
	if strings.EqualFold(m, protocol.PKCES256) || strings.EqualFold(m, "sha256") {
		return protocol.PKCES256
	}
	return m
}

func checkChallenge(challenge, method string, allowPlain bool) error {
	switch method {
	case protocol.PKCES256:
	case protocol.PKCEPlain:
		if !allowPlain {
			return newError(protocol.InvalidRequest, 400, "code_challenge_method=plain is not allowed: use S256").redirectable()
		}
	default:
		return newError(protocol.InvalidRequest, 400, fmt.Sprintf("code_challenge_method %q is not supported: use S256", method)).redirectable()
	}
	if !pkce.Valid(challenge) {
		return newError(protocol.InvalidRequest, 400, "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]").redirectable()
	}
	return nil
}

func parseIDs(s string) ([]int64, error) {
	var ids []int64
	seen := map[int64]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q is not a positive community id", part)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) > MaxCommunities {
		return nil, fmt.Errorf("at most %d communities", MaxCommunities)
	}
	return ids, nil
}

// RedirectURIAllowed reports whether uri may receive the app's answer: it
// must equal one of the app's registered URIs exactly, byte for byte (RFC
// 9700 §4.1.3: no prefix, wildcard or case folding), or, for a standalone
// app, be the server's own blank page.
//
// The one exception is RFC 8252 §7.3: a standalone (native) app that
// registered a loopback redirect (http://127.0.0.1/cb, http://[::1]/cb)
// may use it on any port, since the port is chosen when the app runs;
// everything but the port must still match exactly.
func RedirectURIAllowed(app storage.App, uri, blankURL string) bool {
	if uri == "" {
		return false
	}
	if app.Type == storage.Standalone && blankURL != "" && uri == blankURL {
		return true
	}
	for _, r := range app.RedirectURIs {
		if r == uri || app.Type == storage.Standalone && loopbackMatch(r, uri) {
			return true
		}
	}
	return false
}

// loopbackMatch reports whether uri is the registered loopback redirect
// with a port: http, an IP loopback literal, the same path and query, no
// user or fragment.
func loopbackMatch(registered, uri string) bool {
	r, err1 := url.Parse(registered)
	u, err2 := url.Parse(uri)
	if err1 != nil || err2 != nil || r.Scheme != "http" || u.Scheme != "http" || r.Port() != "" || u.Port() == "" {
		return false
	}
	if ip := net.ParseIP(r.Hostname()); ip == nil || !ip.IsLoopback() || r.Hostname() != u.Hostname() {
		return false
	}
	if port, err := strconv.Atoi(u.Port()); err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != u.Port() {
		return false
	}
	if u.User != nil || u.Fragment != "" || u.RawFragment != "" || strings.Contains(uri, "#") {
		return false
	}
	// The rest, byte for byte: rebuild the registered URI with the port.
	return uri == "http://"+r.Host+":"+u.Port()+strings.TrimPrefix(registered, "http://"+r.Host)
}

// Response builds the redirect back to the app: parameters in the fragment
// for the implicit flow, in the query for the code flow. Parameters keep the
// order they are added in, as VK sends them.
type Response struct {
	uri      string
	fragment bool
	parts    []string
	issuer   string
}

// NewResponse starts the answer to req.
func NewResponse(req *AuthorizeRequest) *Response {
	return &Response{uri: req.RedirectURI, fragment: req.ResponseType == protocol.ResponseToken, issuer: req.Issuer}
}

// Add appends a parameter.
func (r *Response) Add(key, value string) *Response {
	r.parts = append(r.parts, url.QueryEscape(key)+"="+url.QueryEscape(value))
	return r
}

// URL is the redirect target. Every answer ends with iss, the issuer
// (RFC 9207), so a client talking to several servers can tell which one
// answered (RFC 9700 §4.4, mix-up attacks).
func (r *Response) URL() string {
	parts := r.parts
	if r.issuer != "" {
		parts = append(parts[:len(parts):len(parts)], "iss="+url.QueryEscape(r.issuer))
	}
	body := strings.Join(parts, "&")
	if r.fragment {
		return r.uri + "#" + body
	}
	if strings.Contains(r.uri, "?") {
		return r.uri + "&" + body
	}
	return r.uri + "?" + body
}

// ErrorURL is the redirect that reports e to the app, with state echoed.
func ErrorURL(req *AuthorizeRequest, e *Error) string {
	resp := NewResponse(req).Add("error", e.Code)
	if e.Reason != "" {
		resp.Add("error_reason", e.Reason)
	}
	resp.Add("error_description", e.Description)
	if req.State != "" {
		resp.Add("state", req.State)
	}
	return resp.URL()
}

// DenyURL is the redirect for a user who pressed Deny.
func DenyURL(req *AuthorizeRequest) string { return ErrorURL(req, errUserDenied) }

// Refuse is an access_denied redirect with a description of why.
func Refuse(desc string) *Error {
	return &Error{Code: protocol.AccessDenied, Description: desc, Status: 403, Redirect: true}
}
