// Package oauth implements the token side of Latchkey's OAuth 2.0 server in
// VK's dialect: checking /authorize requests and answering them, the
// /access_token endpoint (code exchange, client credentials), RFC 7009
// revocation, RFC 7662 introspection and RFC 8414 metadata.
//
// The pipeline owns the shared steps: client authentication, redirect URI
// checks and scope parsing happen once, here, never inside each grant.
package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Config holds the lifetimes and switches of the flows.
type Config struct {
	CodeTTL          time.Duration
	ImplicitTokenTTL time.Duration
	CodeTokenTTL     time.Duration
	AllowPlainPKCE   bool
	// PublicURL is the server's absolute URL (issuer, blank page).
	PublicURL *url.URL
}

// Provider answers the OAuth endpoints.
type Provider struct {
	P   *platform.Platform
	Cfg Config
	Log *slog.Logger
}

// BlankURL is <public-url>/blank.html.
func (p *Provider) BlankURL() string { return p.Cfg.PublicURL.JoinPath("/blank.html").String() }

// ParseAuthorize checks an /authorize request against stored apps.
func (p *Provider) ParseAuthorize(ctx context.Context, q url.Values) (*AuthorizeRequest, error) {
	return ParseAuthorize(ctx, q, p.P.Store.GetApp, AuthorizeConfig{BlankURL: p.BlankURL(), AllowPlainPKCE: p.Cfg.AllowPlainPKCE})
}

// CheckCommunities refuses a community request unless user admins every
// community it names, saying which one it does not.
func (p *Provider) CheckCommunities(ctx context.Context, req *AuthorizeRequest, userID int64) error {
	for _, id := range req.CommunityIDs {
		if _, err := p.P.Store.GetCommunity(ctx, id); errors.Is(err, storage.ErrNotFound) {
			return Refuse(fmt.Sprintf("community %d does not exist", id))
		} else if err != nil {
			return err
		}
		ok, err := p.P.Store.IsCommunityAdmin(ctx, id, userID)
		if err != nil {
			return err
		}
		if !ok {
			return Refuse(fmt.Sprintf("you are not an admin of community %d: only its admins can grant access to it", id))
		}
	}
	return nil
}

// Consent returns what the user has granted the app so far (nil for
// nothing), and whether it covers every scope req asks for, so the dialog
// can be skipped (never with revoke=1, nor for community requests, which
// always show it).
func (p *Provider) Consent(ctx context.Context, req *AuthorizeRequest, userID int64) (*storage.Consent, bool, error) {
	if len(req.CommunityIDs) > 0 {
		return nil, false, nil
	}
	c, err := p.P.Store.GetConsent(ctx, userID, req.App.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &c, !req.Revoke && c.Scope.Has(req.Scope), nil
}

// Grant answers an approved request for user: it remembers the consent
// (prior is what Consent returned, to save reading it again; nil reads it)
// and returns the redirect carrying the token(s) or the code. The token
// carries exactly the scopes asked for, never what an earlier consent added.
// For the code flow only user.ID is needed.
func (p *Provider) Grant(ctx context.Context, req *AuthorizeRequest, user storage.User, ip string, prior *storage.Consent) (string, error) {
	if err := p.CheckCommunities(ctx, req, user.ID); err != nil {
		return "", err
	}
	now := p.P.Now().UTC()
	if len(req.CommunityIDs) == 0 {
		if err := p.P.Grant(ctx, user.ID, req.App.ID, req.Scope, prior, req.Revoke); err != nil {
			return "", err
		}
	}
	if req.ResponseType == protocol.ResponseCode {
		return p.grantCode(ctx, req, user, ip, now)
	}
	return p.grantImplicit(ctx, req, user, ip)
}

func (p *Provider) grantCode(ctx context.Context, req *AuthorizeRequest, user storage.User, ip string, now time.Time) (string, error) {
	raw, h := p.P.Keys.Mint(token.Code)
	code := storage.Code{
		Hash: h, AppID: req.App.ID, UserID: user.ID, CommunityIDs: req.CommunityIDs, Scope: req.Scope,
		RedirectURI: req.RedirectURI, CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		IP: ip, IssuedAt: now, ExpiresAt: now.Add(p.Cfg.CodeTTL),
	}
	if err := p.P.Store.CreateCode(ctx, code); err != nil {
		return "", err
	}
	resp := NewResponse(req).Add("code", raw)
	if req.State != "" {
		resp.Add("state", req.State)
	}
	return resp.URL(), nil
}

func (p *Provider) grantImplicit(ctx context.Context, req *AuthorizeRequest, user storage.User, ip string) (string, error) {
	resp := NewResponse(req)
	if len(req.CommunityIDs) > 0 {
		for _, id := range req.CommunityIDs {
			raw, _, err := p.P.IssueToken(ctx, storage.Token{Kind: token.Community, AppID: req.App.ID, UserID: user.ID,
				CommunityID: id, Scope: req.Scope, IP: ip, Flow: storage.FlowImplicit}, 0)
			if err != nil {
				return "", err
			}
			resp.Add("access_token_"+strconv.FormatInt(id, 10), raw)
		}
		resp.Add("expires_in", "0")
	} else {
		ttl := userTTL(req.Scope, p.Cfg.ImplicitTokenTTL)
		raw, _, err := p.P.IssueToken(ctx, storage.Token{Kind: token.User, AppID: req.App.ID, UserID: user.ID,
			Scope: req.Scope, IP: ip, Flow: storage.FlowImplicit}, ttl)
		if err != nil {
			return "", err
		}
		resp.Add("access_token", raw).Add("expires_in", strconv.FormatInt(int64(ttl/time.Second), 10)).
			Add("user_id", strconv.FormatInt(user.ID, 10))
		if req.Scope.Has(scope.Email) && user.Email != "" {
			resp.Add("email", user.Email)
		}
	}
	if req.State != "" {
		resp.Add("state", req.State)
	}
	return resp.URL(), nil
}

// userTTL is the lifetime of a user token: none with offline.
func userTTL(m scope.Mask, ttl time.Duration) time.Duration {
	if m.Has(scope.Offline) {
		return 0
	}
	return ttl
}

// ---- /access_token

const maxForm = 64 << 10

// parseForm reads GET query or POST form parameters (both, for POST).
func parseForm(w http.ResponseWriter, r *http.Request) *Error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return newError(protocol.InvalidRequest, 400, "the request body is not a valid form: "+err.Error())
	}
	return nil
}

// authenticateClient authenticates the app by HTTP Basic (RFC 6749 §2.3.1,
// form-encoded id and secret) or by client_id and client_secret parameters.
func (p *Provider) authenticateClient(r *http.Request) (storage.App, *Error) {
	app, _, e := p.authenticate(r)
	return app, e
}

// authenticate is authenticateClient that also returns the hash of the
// secret that matched.
func (p *Provider) authenticate(r *http.Request) (storage.App, token.Hash, *Error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return storage.App{}, token.Hash{}, errBadClientID
		}
	} else {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	if id == "" {
		return storage.App{}, token.Hash{}, newError(protocol.InvalidClient, 401, "client_id is missing")
	}
	clientID, err := strconv.ParseInt(id, 10, 64)
	if err != nil || clientID <= 0 {
		return storage.App{}, token.Hash{}, errBadClientID
	}
	if secret == "" {
		return storage.App{}, token.Hash{}, newError(protocol.InvalidClient, 401, "client_secret is missing")
	}
	app, used, err := p.P.AuthenticateClient(r.Context(), clientID, secret)
	switch {
	case errors.Is(err, platform.ErrUnknownClient):
		return app, used, errBadClientID
	case errors.Is(err, platform.ErrBadSecret):
		return app, used, errBadSecret
	case err != nil:
		return app, used, p.internal(r, err)
	}
	return app, used, nil
}

// internal turns a failure of ours into the error the client sees,
// keeping the cause for the log (see fail).
func (p *Provider) internal(r *http.Request, err error) *Error {
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
	if e.cause != nil {
		level := slog.LevelError
		if errors.Is(e.cause, storage.ErrUnavailable) {
			level = slog.LevelWarn
		}
		p.Log.Log(r.Context(), level, "oauth: "+e.Description, "request_id", httpx.RequestID(w), "err", e.cause)
	}
	WriteJSON(w, e)
}

// errUnavailable answers while storage cannot be reached (RFC 6749 §4.1.2.1
// temporarily_unavailable), with 503 and Retry-After.
var errUnavailable = newError(protocol.TemporarilyUnavailable, http.StatusServiceUnavailable, "the server cannot reach its storage right now; try again in a few seconds")

// AccessToken serves GET and POST /access_token.
func (p *Provider) AccessToken(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		p.fail(w, r, e)
		return
	}
	app, secret, e := p.authenticate(r)
	if e != nil {
		p.fail(w, r, e)
		return
	}
	var body any
	switch gt := r.Form.Get("grant_type"); gt {
	case "", "authorization_code":
		body, e = p.exchangeCode(r, app)
	case "client_credentials":
		body, e = p.clientCredentials(r, app, secret)
	default:
		e = newError(protocol.UnsupportedGrantType, 400, fmt.Sprintf("grant_type %q is not supported: use authorization_code or client_credentials", gt))
	}
	if e != nil {
		p.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (p *Provider) exchangeCode(r *http.Request, app storage.App) (any, *Error) {
	ctx := r.Context()
	raw := r.Form.Get("code")
	if raw == "" {
		return nil, newError(protocol.InvalidRequest, 400, "code is missing")
	}
	kind, h, err := p.P.Keys.Parse(raw)
	if err != nil || kind != token.Code {
		return nil, errBadCode
	}
	now := p.P.Now()
	code, err := p.P.Store.UseCode(ctx, h, now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errBadCode
	case errors.Is(err, storage.ErrConflict):
		// A replayed code: someone else may hold it. Revoke all it issued.
		if code.AppID == app.ID {
			if err := p.P.RevokeCodeTokens(ctx, code); err != nil {
				return nil, p.internal(r, err)
			}
		}
		return nil, errBadCode
	case err != nil:
		return nil, p.internal(r, err)
	}
	if code.AppID != app.ID || !now.Before(code.ExpiresAt) {
		return nil, errBadCode
	}
	if r.Form.Get("redirect_uri") != code.RedirectURI {
		return nil, errCodeRedirect
	}
	if e := verifyPKCE(code, r.Form.Get("code_verifier")); e != nil {
		return nil, e
	}

	ip := httpx.ClientIP(r)
	if len(code.CommunityIDs) > 0 {
		out := map[string]any{"expires_in": 0, "token_type": "bearer", "scope": code.Scope.Text(scope.Community)}
		groups := make([]map[string]any, 0, len(code.CommunityIDs))
		for _, id := range code.CommunityIDs {
			raw, _, err := p.P.IssueToken(ctx, storage.Token{Kind: token.Community, AppID: app.ID, UserID: code.UserID,
				CommunityID: id, Scope: code.Scope, IP: ip, Flow: storage.FlowCode, CodeHash: &code.Hash}, 0)
			if err != nil {
				return nil, p.internal(r, err)
			}
			out["access_token_"+strconv.FormatInt(id, 10)] = raw
			groups = append(groups, map[string]any{"group_id": id, "access_token": raw})
			if _, ok := out["access_token"]; !ok {
				// Strict OAuth clients (golang.org/x/oauth2 among them)
				// refuse a body without access_token, and may then retry
				// the code, which revokes what it issued. VK clients read
				// the keyed and list shapes and ignore this one.
				out["access_token"] = raw
			}
		}
		out["groups"] = groups
		return out, nil
	}
	ttl := userTTL(code.Scope, p.Cfg.CodeTokenTTL)
	raw, _, err = p.P.IssueToken(ctx, storage.Token{Kind: token.User, AppID: app.ID, UserID: code.UserID,
		Scope: code.Scope, IP: ip, Flow: storage.FlowCode, CodeHash: &code.Hash}, ttl)
	if err != nil {
		return nil, p.internal(r, err)
	}
	out := map[string]any{
		"access_token": raw, "expires_in": int64(ttl / time.Second), "user_id": code.UserID,
		"token_type": "bearer", "scope": code.Scope.Text(scope.User),
	}
	if code.Scope.Has(scope.Email) {
		if u, err := p.P.Store.GetUser(ctx, code.UserID); err == nil && u.Email != "" {
			out["email"] = u.Email
		}
	}
	return out, nil
}

// verifyPKCE checks the code_verifier against the stored challenge (RFC 7636
// §4.6). A code issued without a challenge must be redeemed without a
// verifier (RFC 9700 §4.8.2: PKCE downgrade).
func verifyPKCE(code storage.Code, verifier string) *Error {
	if code.CodeChallenge == "" {
		if verifier != "" {
			return newError(protocol.InvalidGrant, 400, "code_verifier given, but the authorization request had no code_challenge")
		}
		return nil
	}
	if verifier == "" {
		return newError(protocol.InvalidGrant, 400, "code_verifier is missing")
	}
	if !validVerifier(verifier) {
		return newError(protocol.InvalidGrant, 400, "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")
	}
	want := verifier
	if code.CodeChallengeMethod == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(code.CodeChallenge)) != 1 {
		return newError(protocol.InvalidGrant, 400, "code_verifier does not match the code_challenge")
	}
	return nil
}

func (p *Provider) clientCredentials(r *http.Request, app storage.App, secret token.Hash) (any, *Error) {
	if !app.ClientCredentials {
		return nil, newError(protocol.UnauthorizedClient, 400, fmt.Sprintf(
			"the client credentials flow is obsolete and off for this app: use the service token from the app's settings, "+
				"or turn the flow on in the app's settings (or: latchkey app set --app %d --client-credentials on)", app.ID))
	}
	raw, _, err := p.P.IssueToken(r.Context(), storage.Token{Kind: token.Service, AppID: app.ID, IP: httpx.ClientIP(r),
		Flow: storage.FlowClientCredentials, SecretHash: &secret}, 0)
	if err != nil {
		return nil, p.internal(r, err)
	}
	return map[string]any{"access_token": raw, "token_type": "bearer", "expires_in": 0}, nil
}

// ---- RFC 7009, RFC 7662, RFC 8414

// tokenRequest reads a revocation or introspection request: the form, the
// client's authentication and the token parameter. It answers errors
// itself and reports whether it did not.
func (p *Provider) tokenRequest(w http.ResponseWriter, r *http.Request) (storage.App, string, bool) {
	if e := parseForm(w, r); e != nil {
		p.fail(w, r, e)
		return storage.App{}, "", false
	}
	app, e := p.authenticateClient(r)
	if e != nil {
		p.fail(w, r, e)
		return app, "", false
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		WriteJSON(w, newError(protocol.InvalidRequest, 400, "token is missing"))
		return app, "", false
	}
	return app, raw, true
}

// Revoke serves POST /oauth/revoke. It answers 200 for unknown tokens and
// for other apps' tokens alike (RFC 7009 §2.2), revoking only the app's own.
func (p *Provider) Revoke(w http.ResponseWriter, r *http.Request) {
	app, raw, ok := p.tokenRequest(w, r)
	if !ok {
		return
	}
	if err := p.P.RevokeToken(r.Context(), platform.Actor{IP: httpx.ClientIP(r)}, app.ID, raw); err != nil {
		p.fail(w, r, p.internal(r, err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// Introspect serves POST /oauth/introspect. An app sees only its own
// tokens: any other token is {"active":false}.
func (p *Provider) Introspect(w http.ResponseWriter, r *http.Request) {
	app, raw, ok := p.tokenRequest(w, r)
	if !ok {
		return
	}
	t, err := p.P.CheckToken(r.Context(), raw)
	if err != nil || t.AppID != app.ID {
		if err != nil && !errors.Is(err, platform.ErrTokenInvalid) && !errors.Is(err, platform.ErrTokenExpired) && !errors.Is(err, platform.ErrTokenRevoked) {
			p.fail(w, r, p.internal(r, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	out := map[string]any{
		"active": true, "client_id": strconv.FormatInt(t.AppID, 10), "token_type": "bearer",
		"iat": t.IssuedAt.Unix(), "token_kind": t.Kind.String(), "iss": p.Cfg.PublicURL.String(),
	}
	if !t.ExpiresAt.IsZero() {
		out["exp"] = t.ExpiresAt.Unix()
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
	base := p.Cfg.PublicURL
	methods := []string{"S256"}
	if p.Cfg.AllowPlainPKCE {
		methods = append(methods, "plain")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                        base.String(),
		"authorization_endpoint":                        base.JoinPath("/authorize").String(),
		"token_endpoint":                                base.JoinPath("/access_token").String(),
		"revocation_endpoint":                           base.JoinPath("/oauth/revoke").String(),
		"introspection_endpoint":                        base.JoinPath("/oauth/introspect").String(),
		"response_types_supported":                      []string{protocol.ResponseCode, protocol.ResponseToken},
		"response_modes_supported":                      []string{"query", "fragment"},
		"grant_types_supported":                         []string{"authorization_code", "implicit", "client_credentials"},
		"code_challenge_methods_supported":              methods,
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                              scope.Known(scope.User).Names(scope.User),
	})
}
