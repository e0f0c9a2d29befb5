package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

func TestImplicitFlowStandaloneApp(t *testing.T) { onBothBackends(t, testImplicitFlowStandaloneApp) }

func testImplicitFlowStandaloneApp(t *testing.T, e *env) {
	alice := e.user("alice", "alice@example.com")
	app := e.app(alice.ID, storage.Standalone)
	b := e.browser()

	// Not signed in: the dialog sends the browser to the login page first.
	params := map[string]string{"client_id": fmt.Sprint(app.ID), "redirect_uri": e.blank(), "response_type": "token",
		"scope": "friends,email", "state": "s-1", "display": "page", "v": "5.199"}
	if to := b.get(e.authorize(params)); to != "" {
		t.Fatalf("redirected to the app before login: %s", to)
	}
	if !strings.Contains(b.pageURL, "/login") {
		t.Fatalf("landed on %s, want the login page", b.pageURL)
	}
	if to := b.login("alice", "password-alice"); to != "" {
		t.Fatalf("login went to %s, want the consent dialog", to)
	}
	for _, want := range []string{app.Title, "Access your friends", "See your email address"} {
		if !strings.Contains(b.page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	to := b.approve()
	if !strings.HasPrefix(to, e.blank()+"#") {
		t.Fatalf("approve redirected to %q, want blank.html with a fragment", to)
	}
	f := fragment(t, to)
	if f.Get("expires_in") != "86400" || f.Get("user_id") != fmt.Sprint(alice.ID) || f.Get("state") != "s-1" || f.Get("email") != "alice@example.com" {
		t.Fatalf("fragment = %v", f)
	}
	tok := f.Get("access_token")
	if m := e.introspect(app, tok); !active(m) || m["scope"] != "friends email" || m["user_id"] != float64(alice.ID) {
		t.Fatalf("introspect = %v", m)
	}

	// A subset of what was granted goes straight back, without the dialog,
	// and carries exactly the scopes asked for.
	params["scope"] = "friends"
	params["state"] = "s-2"
	to = b.get(e.authorize(params))
	f = fragment(t, to)
	if f.Get("state") != "s-2" || f.Get("email") != "" {
		t.Fatalf("subset request: %q", to)
	}
	if m := e.introspect(app, f.Get("access_token")); m["scope"] != "friends" {
		t.Fatalf("subset token scope = %v, want friends only", m["scope"])
	}

	// revoke=1 always shows the dialog.
	params["revoke"] = "1"
	if to := b.get(e.authorize(params)); to != "" || !strings.Contains(b.page, `value="allow"`) {
		t.Fatalf("revoke=1 skipped the dialog: %q", to)
	}
	delete(params, "revoke")

	// More than was granted shows the dialog; offline gives expires_in=0.
	params["scope"] = "friends,offline"
	if to := b.get(e.authorize(params)); to != "" {
		t.Fatalf("a wider scope skipped the dialog: %s", to)
	}
	f = fragment(t, b.approve())
	if f.Get("expires_in") != "0" {
		t.Fatalf("offline token: expires_in=%q, want 0", f.Get("expires_in"))
	}
	if m := e.introspect(app, f.Get("access_token")); !active(m) || m["exp"] != nil {
		t.Fatalf("offline token introspection: %v", m)
	}
}

func TestDenyReturnsAccessDenied(t *testing.T) {
	e := newEnv(t)
	u := e.user("bob", "")
	app := e.app(u.ID, storage.Web, "https://app.example/cb?from=latchkey")
	b := e.browser()
	b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(app.ID), "redirect_uri": "https://app.example/cb?from=latchkey", "response_type": "code", "state": "st"}))
	b.login("bob", "password-bob")
	to := b.deny()
	q := query(t, to)
	if !strings.HasPrefix(to, "https://app.example/cb?from=latchkey&") || q.Get("error") != "access_denied" ||
		q.Get("error_reason") != "user_denied" || q.Get("error_description") != "User denied your request" || q.Get("state") != "st" {
		t.Fatalf("deny redirected to %q", to)
	}
	if _, err := e.Store.GetConsent(context.Background(), u.ID, app.ID); err != storage.ErrNotFound {
		t.Fatalf("deny stored a consent: %v", err)
	}
}

// stripFirstAuth is a proxy that drops the Authorization header of the
// first token request, so that golang.org/x/oauth2's auto-detection sees
// HTTP Basic fail and retries with form parameters: the failed attempt must
// not use up the code.
func stripFirstAuth(t *testing.T, target string) (string, *atomic.Int32) {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var seen atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/access_token" && seen.Add(1) == 1 {
			r.Header.Del("Authorization")
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, &seen
}

func TestCodeFlowWebAppWithOAuth2Client(t *testing.T) {
	onBothBackends(t, testCodeFlowWebAppWithOAuth2Client)
}

func testCodeFlowWebAppWithOAuth2Client(t *testing.T, e *env) {
	carol := e.user("carol", "carol@example.com")
	redirect := "http://127.0.0.1:9/callback"
	app := e.app(carol.ID, storage.Web, redirect)
	tokenBase, attempts := stripFirstAuth(t, e.URL)
	conf := &oauth2.Config{
		ClientID: fmt.Sprint(app.ID), ClientSecret: app.ClientSecret, RedirectURL: redirect,
		Scopes:   []string{"friends", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: tokenBase + "/access_token"}, // AuthStyle: auto-detect
	}
	b := e.browser()
	b.get(conf.AuthCodeURL("state-42"))
	b.login("carol", "password-carol")
	to := b.approve()
	q := query(t, to)
	if !strings.HasPrefix(to, redirect+"?") || q.Get("state") != "state-42" || q.Get("code") == "" {
		t.Fatalf("code redirect = %q", to)
	}
	tok, err := conf.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if attempts.Load() != 2 {
		t.Fatalf("token endpoint saw %d attempts, want 2 (Basic dropped, then form)", attempts.Load())
	}
	if tok.TokenType != "bearer" || tok.Expiry.IsZero() || tok.Extra("user_id") != float64(carol.ID) ||
		tok.Extra("email") != "carol@example.com" || tok.Extra("scope") != "friends email" || tok.Extra("expires_in") != float64(43200) {
		t.Fatalf("token = %+v, extras user_id=%v email=%v scope=%v", tok, tok.Extra("user_id"), tok.Extra("email"), tok.Extra("scope"))
	}
	if m := e.introspect(app, tok.AccessToken); !active(m) {
		t.Fatalf("introspect = %v", m)
	}
}

func TestCodeFlowStandaloneWithPKCE(t *testing.T) {
	e := newEnv(t)
	dave := e.user("dave", "")
	app := e.app(dave.ID, storage.Standalone)
	conf := &oauth2.Config{
		ClientID: fmt.Sprint(app.ID), ClientSecret: app.ClientSecret, RedirectURL: e.blank(),
		Scopes:   []string{"messages", "offline"},
		Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/access_token", AuthStyle: oauth2.AuthStyleInParams},
	}
	verifier := oauth2.GenerateVerifier()
	b := e.browser()
	b.get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	b.login("dave", "password-dave")
	to := b.approve()
	if !strings.HasPrefix(to, e.blank()+"?code=") {
		t.Fatalf("redirect = %q", to)
	}
	tok, err := conf.Exchange(context.Background(), query(t, to).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !tok.Expiry.IsZero() || tok.Extra("expires_in") != float64(0) {
		t.Fatalf("offline code-flow token expires: %v", tok.Expiry)
	}
}

func TestVKStyleCodeExchange(t *testing.T) {
	e := newEnv(t)
	u := e.user("erin", "")
	redirect := "https://erin.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	for _, style := range []string{"GET query", "POST form"} {
		// The second round goes straight back: the consent is remembered.
		code := obtainCode(t, e, fmt.Sprint(app.ID), redirect, "erin", map[string]string{"scope": "4"})
		params := url.Values{"client_id": {fmt.Sprint(app.ID)}, "client_secret": {app.ClientSecret}, "redirect_uri": {redirect}, "code": {code}}
		var status int
		var m map[string]any
		if style == "GET query" {
			status, m = e.getJSON(e.URL + "/access_token?" + params.Encode())
		} else {
			status, m = e.postForm("/access_token", params, "", "")
		}
		if status != 200 || m["user_id"] != float64(u.ID) || m["expires_in"] != float64(43200) || m["token_type"] != "bearer" || m["scope"] != "photos" {
			t.Fatalf("%s: %d %v", style, status, m)
		}
	}
}

// obtainCode runs the code flow for a fresh user and returns the code.
func obtainCode(t *testing.T, e *env, app string, redirect, login string, extra map[string]string) string {
	b := e.browser()
	params := map[string]string{"client_id": app, "redirect_uri": redirect, "response_type": "code", "scope": "friends"}
	for k, v := range extra {
		params[k] = v
	}
	if to := b.get(e.authorize(params)); to != "" {
		t.Fatalf("authorize went to %s", to)
	}
	to := b.login(login, "password-"+login)
	if to == "" {
		to = b.approve()
	}
	c := query(t, to).Get("code")
	if c == "" {
		t.Fatalf("no code in %q", to)
	}
	return c
}

func TestAuthorizationErrors(t *testing.T) { onBothBackends(t, testAuthorizationErrors) }

func testAuthorizationErrors(t *testing.T, e *env) {
	owner := e.user("owner", "")
	redirect := "https://web.example/cb"
	web := e.app(owner.ID, storage.Web, redirect)
	standalone := e.app(owner.ID, storage.Standalone)
	webID := fmt.Sprint(web.ID)

	t.Run("unknown client: error page, never a redirect", func(t *testing.T) {
		b := e.browser()
		to := b.get(e.authorize(map[string]string{"client_id": "999", "redirect_uri": redirect}))
		if to != "" || b.status != 400 || !strings.Contains(b.page, "client_id is incorrect") {
			t.Fatalf("redirect %q, status %d", to, b.status)
		}
	})
	t.Run("unregistered redirect URI: JSON for a program", func(t *testing.T) {
		for _, bad := range []string{"https://web.example/cb/", "https://WEB.example/cb", "https://web.example/cb?x=1", "https://evil.example/cb", e.blank()} {
			status, m := e.getJSON(e.authorize(map[string]string{"client_id": webID, "redirect_uri": bad}))
			if status != 400 || m["error"] != "invalid_request" || m["error_description"] != "redirect_uri is incorrect, check application redirect uri in the settings page" {
				t.Fatalf("%s: %d %v", bad, status, m)
			}
		}
	})
	t.Run("unknown scope is invalid_scope, redirected", func(t *testing.T) {
		b := e.browser()
		to := b.get(e.authorize(map[string]string{"client_id": webID, "redirect_uri": redirect, "scope": "friends,teleport", "state": "x"}))
		q := query(t, to)
		if q.Get("error") != "invalid_scope" || !strings.Contains(q.Get("error_description"), "teleport") || q.Get("state") != "x" {
			t.Fatalf("redirect = %q", to)
		}
	})
	t.Run("implicit errors travel in the fragment", func(t *testing.T) {
		b := e.browser()
		to := b.get(e.authorize(map[string]string{"client_id": webID, "redirect_uri": redirect, "scope": "nope", "response_type": "token"}))
		if fragment(t, to).Get("error") != "invalid_scope" {
			t.Fatalf("redirect = %q", to)
		}
	})
	t.Run("unsupported response type", func(t *testing.T) {
		b := e.browser()
		to := b.get(e.authorize(map[string]string{"client_id": webID, "redirect_uri": redirect, "response_type": "id_token"}))
		if query(t, to).Get("error") != "unsupported_response_type" {
			t.Fatalf("redirect = %q", to)
		}
	})
	t.Run("standalone code flow without PKCE", func(t *testing.T) {
		b := e.browser()
		to := b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(standalone.ID), "redirect_uri": e.blank(), "response_type": "code"}))
		if q := query(t, to); q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), "PKCE") {
			t.Fatalf("redirect = %q", to)
		}
	})

	exchange := func(code, redirectURI, secret string, extra ...string) (int, map[string]any) {
		vals := url.Values{"grant_type": {"authorization_code"}, "client_id": {webID}, "client_secret": {secret}, "redirect_uri": {redirectURI}, "code": {code}}
		for i := 0; i+1 < len(extra); i += 2 {
			vals.Set(extra[i], extra[i+1])
		}
		return e.postForm("/access_token", vals, "", "")
	}

	t.Run("expired code", func(t *testing.T) {
		e.user("exp", "")
		code := obtainCode(t, e, webID, redirect, "exp", nil)
		e.Clock.Advance(10*60*1e9 + 1e9) // past the 10-minute lifetime
		status, m := exchange(code, redirect, web.ClientSecret)
		if status != 400 || m["error"] != "invalid_grant" || m["error_description"] != "Code is invalid or expired." {
			t.Fatalf("%d %v", status, m)
		}
	})
	t.Run("replayed code fails and revokes what it issued", func(t *testing.T) {
		e.user("replay", "")
		code := obtainCode(t, e, webID, redirect, "replay", nil)
		status, first := exchange(code, redirect, web.ClientSecret)
		if status != 200 {
			t.Fatalf("first use: %d %v", status, first)
		}
		tok := first["access_token"].(string)
		if !active(e.introspect(web, tok)) {
			t.Fatal("token inactive before the replay")
		}
		status, m := exchange(code, redirect, web.ClientSecret)
		if status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v", status, m)
		}
		if active(e.introspect(web, tok)) {
			t.Fatal("the token issued from a replayed code still works")
		}
	})
	t.Run("wrong redirect_uri at exchange", func(t *testing.T) {
		e.user("redir", "")
		code := obtainCode(t, e, webID, redirect, "redir", nil)
		status, m := exchange(code, redirect+"/other", web.ClientSecret)
		if status != 400 || m["error"] != "invalid_grant" || m["error_description"] != "redirect_uri is invalid, please pass same redirect_uri, you used in authorize method." {
			t.Fatalf("%d %v", status, m)
		}
	})
	t.Run("wrong secret is 401 and does not use up the code", func(t *testing.T) {
		e.user("secret", "")
		code := obtainCode(t, e, webID, redirect, "secret", nil)
		status, m := exchange(code, redirect, "wrong-secret")
		if status != 401 || m["error"] != "invalid_client" || m["error_description"] != "client_secret is incorrect" {
			t.Fatalf("%d %v", status, m)
		}
		status, m = e.postForm("/access_token", url.Values{"client_id": {"424242"}, "client_secret": {"x"}, "code": {code}, "redirect_uri": {redirect}}, "", "")
		if status != 401 || m["error_description"] != "client_id is incorrect" {
			t.Fatalf("unknown client_id: %d %v", status, m)
		}
		if status, m := exchange(code, redirect, web.ClientSecret); status != 200 {
			t.Fatalf("the code was used up by failed authentication: %d %v", status, m)
		}
	})
	t.Run("PKCE verifier mismatch", func(t *testing.T) {
		e.user("pkce", "")
		verifier := oauth2.GenerateVerifier()
		code := obtainCode(t, e, webID, redirect, "pkce", map[string]string{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256"})
		status, m := exchange(code, redirect, web.ClientSecret, "code_verifier", oauth2.GenerateVerifier())
		if status != 400 || m["error"] != "invalid_grant" || !strings.Contains(m["error_description"].(string), "code_verifier") {
			t.Fatalf("%d %v", status, m)
		}
	})
	t.Run("forged code", func(t *testing.T) {
		status, m := exchange("lka1"+strings.Repeat("0", 60), redirect, web.ClientSecret)
		if status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("%d %v", status, m)
		}
	})
	t.Run("unsupported grant type", func(t *testing.T) {
		status, m := e.postForm("/access_token", url.Values{"grant_type": {"password"}, "client_id": {webID}, "client_secret": {web.ClientSecret}}, "", "")
		if status != 400 || m["error"] != "unsupported_grant_type" {
			t.Fatalf("%d %v", status, m)
		}
	})
	t.Run("client credentials off", func(t *testing.T) {
		status, m := e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}}, webID, web.ClientSecret)
		if status != 400 || m["error"] != "unauthorized_client" || !strings.Contains(m["error_description"].(string), "--client-credentials on") {
			t.Fatalf("%d %v", status, m)
		}
	})
}

func TestRevocationAndIntrospectionAreScopedToTheApp(t *testing.T) {
	onBothBackends(t, testRevocationAndIntrospectionAreScopedToTheApp)
}

func testRevocationAndIntrospectionAreScopedToTheApp(t *testing.T, e *env) {
	u := e.user("frank", "")
	mine := e.app(u.ID, storage.Standalone)
	other := e.app(u.ID, storage.Standalone)
	b := e.browser()
	b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(mine.ID), "redirect_uri": e.blank(), "response_type": "token"}))
	b.login("frank", "password-frank")
	tok := fragment(t, b.approve()).Get("access_token")

	if m := e.introspect(other, tok); active(m) {
		t.Fatalf("another app sees the token: %v", m)
	}
	status, _ := e.postForm("/oauth/revoke", url.Values{"token": {tok}}, fmt.Sprint(other.ID), other.ClientSecret)
	if status != 200 || !active(e.introspect(mine, tok)) {
		t.Fatalf("another app revoked the token (status %d)", status)
	}
	status, _ = e.postForm("/oauth/revoke", url.Values{"token": {tok}}, fmt.Sprint(mine.ID), mine.ClientSecret)
	if status != 200 || active(e.introspect(mine, tok)) {
		t.Fatalf("revoke by its app: status %d, still active", status)
	}
	if status, m := e.postForm("/oauth/revoke", url.Values{"token": {tok}}, fmt.Sprint(mine.ID), "wrong"); status != 401 || m["error"] != "invalid_client" {
		t.Fatalf("revoke with a wrong secret: %d %v", status, m)
	}
}

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	status, m := e.getJSON(e.URL + "/.well-known/oauth-authorization-server")
	if status != 200 || m["issuer"] != e.URL || m["token_endpoint"] != e.URL+"/access_token" || m["authorization_endpoint"] != e.URL+"/authorize" ||
		m["revocation_endpoint"] != e.URL+"/oauth/revoke" || m["introspection_endpoint"] != e.URL+"/oauth/introspect" {
		t.Fatalf("%d %v", status, m)
	}
	if fmt.Sprint(m["code_challenge_methods_supported"]) != "[S256]" {
		t.Fatalf("code_challenge_methods_supported = %v", m["code_challenge_methods_supported"])
	}
}

func TestLoginThrottleAndGenericError(t *testing.T) {
	e := newEnv(t)
	e.user("gina", "")
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("nobody", "whatever-password")
	if b.status != 401 || !strings.Contains(b.page, "Wrong login or password.") {
		t.Fatalf("unknown login: %d", b.status)
	}
	unknownPage := b.page
	b.get(e.URL + "/login")
	b.login("gina", "wrong-password")
	if b.status != 401 || !strings.Contains(b.page, "Wrong login or password.") {
		t.Fatalf("wrong password: %d", b.status)
	}
	if strings.Contains(unknownPage, "no such") || strings.Contains(b.page, "no such") {
		t.Fatal("the error tells unknown logins apart")
	}
	for range 4 {
		b.get(e.URL + "/login")
		b.login("gina", "wrong-password")
	}
	b.get(e.URL + "/login")
	b.login("gina", "password-gina")
	if b.status != 429 || !strings.Contains(b.page, "Too many failed attempts") {
		t.Fatalf("sixth attempt with the right password: %d, want 429", b.status)
	}
	e.Clock.Advance(16 * 60 * 1e9)
	b.get(e.URL + "/login")
	if to := b.login("gina", "password-gina"); to != "" || b.status != 200 || !strings.Contains(b.page, "Hello, Gina") {
		t.Fatalf("after the window: %d %q", b.status, to)
	}
}

func TestFormsRequireCSRFAndPagesAreLockedDown(t *testing.T) {
	e := newEnv(t)
	e.user("hank", "")
	// A form post without the token (or with a forged one) is refused.
	for _, token := range []string{"", "forged"} {
		jarless := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := jarless.PostForm(e.URL+"/login", url.Values{"login": {"hank"}, "password": {"password-hank"}, "csrf": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || len(resp.Cookies()) > 1 {
			t.Fatalf("login without CSRF token %q: %d", token, resp.StatusCode)
		}
	}
	// A cross-site browser post is refused before the form is read.
	req, _ := http.NewRequest("POST", e.URL+"/login", strings.NewReader("login=hank"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site post: %d", resp.StatusCode)
	}
	// Security headers on login and consent pages.
	for _, path := range []string{"/login", "/signup", "/authorize?client_id=1&redirect_uri=x", "/blank.html"} {
		resp, err := http.Get(e.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s headers: %v", path, h)
		}
	}
	// The blank page, which receives tokens, exists at /blank.html only:
	// static files are served without the pages' headers.
	if resp, err := http.Get(e.URL + "/static/blank.html"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/static/blank.html: %v %v, want 404", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	// Login keeps the user on this site, whatever a browser would make of
	// the target (tabs dropped, backslashes read as slashes).
	for _, next := range []string{"/%09/evil.example/x", "/%5Cevil.example", "/../%5Cevil", "//evil.example/"} {
		b := e.browser()
		b.get(e.URL + "/login?next=" + next)
		if to := b.login("hank", "password-hank"); to != "" || !strings.Contains(b.page, "Hello, Hank") {
			t.Fatalf("open redirect after login with next=%s: %q", next, to)
		}
	}
	b := e.browser()
	b.get(e.URL + "/login?next=//evil.example/")
	if to := b.login("hank", "password-hank"); to != "" || !strings.Contains(b.page, "Hello, Hank") {
		t.Fatalf("open redirect after login: %q", to)
	}
	// The session cookie is HttpOnly and SameSite=Lax (and not Secure on
	// plain http): read from the Set-Cookie of a real login.
	b2 := e.browser()
	b2.get(e.URL + "/login")
	f := b2.formWith("password")
	f.fields.Set("login", "hank")
	f.fields.Set("password", "password-hank")
	req, _ = http.NewRequest("POST", e.URL+"/login", strings.NewReader(f.fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = b2.client.Do(req) // the jar sends the CSRF cookie
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "lk_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure || session.Path != "/" {
		t.Fatalf("session cookie: %+v", session)
	}
}

func TestSignupAndLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get(e.URL + "/signup")
	b.submit(b.formWith("password"), map[string]string{"login": "ivy", "password": "short", "first_name": "Ivy"})
	if b.status != 422 || !strings.Contains(b.page, "Password") {
		t.Fatalf("short password: %d", b.status)
	}
	b.submit(b.formWith("password"), map[string]string{"login": "ivy", "password": "long-enough-1", "first_name": "Ivy", "last_name": "Green", "email": "ivy@example.com"})
	if b.status != 200 || !strings.Contains(b.page, "Hello, Ivy") {
		t.Fatalf("after sign-up: %d\n%s", b.status, b.page)
	}
	// A copy of the session cookie, as a thief would keep it.
	stolen := e.browser()
	u, _ := url.Parse(e.URL)
	stolen.client.Jar.SetCookies(u, b.client.Jar.Cookies(u))
	stolen.get(e.URL + "/")
	if !strings.Contains(stolen.page, "Hello, Ivy") {
		t.Fatal("the copied cookie does not work before logout")
	}

	e.Clock.Advance(time.Second)
	b.get(e.URL + "/logout")
	b.submit(b.formWith("csrf"), nil)
	b.get(e.URL + "/")
	if !strings.Contains(b.pageURL, "/login") {
		t.Fatalf("after logout / shows %s", b.pageURL)
	}
	stolen.get(e.URL + "/")
	if !strings.Contains(stolen.pageURL, "/login") {
		t.Fatal("the copied session cookie still works after logout")
	}
	e.Clock.Advance(time.Second)
	b.login("ivy", "long-enough-1")
	if !strings.Contains(b.page, "Hello, Ivy") {
		t.Fatal("cannot log in again after logout")
	}
}

func TestSignupsPerAddressAreLimited(t *testing.T) {
	e := newEnv(t)
	signup := func(login string) int {
		b := e.browser()
		b.get(e.URL + "/signup")
		b.submit(b.formWith("password"), map[string]string{"login": login, "password": "long-enough-1", "first_name": "S"})
		return b.status
	}
	for i := range 20 {
		if status := signup(fmt.Sprintf("user%02d", i)); status != 200 {
			t.Fatalf("sign-up %d: %d", i+1, status)
		}
	}
	if status := signup("one-too-many"); status != 429 {
		t.Fatalf("21st sign-up in an hour: %d, want 429", status)
	}
	if _, err := e.Store.GetUserByLogin(context.Background(), "one-too-many"); err != storage.ErrNotFound {
		t.Fatal("the refused account was created")
	}
	e.Clock.Advance(time.Hour)
	if status := signup("next-hour"); status != 200 {
		t.Fatalf("sign-up an hour later: %d", status)
	}
}

// The database holds no token, code, secret or password in the clear, after
// every flow has minted one.
func TestDatabaseHoldsNoCredentialsAfterFlows(t *testing.T) {
	e := newEnv(t)
	u := e.user("jack", "jack@example.com")
	redirect := "https://jack.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	secrets := []string{"password-jack", app.ClientSecret, app.ServiceToken}
	b := e.browser()
	b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(app.ID), "redirect_uri": redirect, "response_type": "token", "scope": "offline"}))
	b.login("jack", "password-jack")
	secrets = append(secrets, fragment(t, b.approve()).Get("access_token"))
	code := obtainCode(t, e, fmt.Sprint(app.ID), redirect, "jack", nil)
	secrets = append(secrets, code)
	_, m := e.postForm("/access_token", url.Values{"code": {code}, "redirect_uri": {redirect}}, fmt.Sprint(app.ID), app.ClientSecret)
	secrets = append(secrets, m["access_token"].(string))
	testenv.AssertFilesLack(t, secrets, e.DB, e.DB+"-wal")
}
