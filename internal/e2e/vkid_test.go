package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/internal/dpop"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// The VK ID dialect (vkid-wire.md), driven as its SDKs drive it: the
// /authorize redirect, then POST /oauth2/… with everything but the secret
// values in the query string.

// vkidVerifier is a verifier of 171 characters, as VK ID's Android SDK
// sends (longer than RFC 7636's 128).
var vkidVerifier = strings.Repeat("abcdefghij", 17) + "k"

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// vkidApp is a web app with a redirect URI on its own origin.
type vkidApp struct {
	platform.AppView
	id       string
	redirect string
}

func (e *env) vkidApp(owner int64, host string) vkidApp {
	redirect := "https://" + host + "/cb"
	a := e.app(owner, storage.Web, redirect)
	return vkidApp{AppView: a, id: fmt.Sprint(a.ID), redirect: redirect}
}

// vkidAuthorize runs /authorize as the web SDK builds it, logs login in
// on b when asked, approves when asked, and returns the redirect's query.
func (e *env) vkidAuthorize(b *browser, app vkidApp, login, state, scope string, extra map[string]string) url.Values {
	e.t.Helper()
	params := map[string]string{
		"response_type": "code", "client_id": app.id, "app_id": app.id, "redirect_uri": app.redirect, "state": state,
		"code_challenge": challengeOf(vkidVerifier), "code_challenge_method": "s256", "scope": scope,
		"v": "2.6.7", "sdk_type": "vkid", "stats_info": "eyJmbG93X3NvdXJjZSI6ImF1dGgifQ", "lang_id": "3", "scheme": "light",
	}
	for k, v := range extra {
		params[k] = v
	}
	to := b.get(e.authorize(params))
	if to == "" && strings.Contains(b.page, `name="password"`) {
		to = b.login(login, "password-"+login)
	}
	if to == "" && strings.Contains(b.page, `name="decision"`) {
		to = b.approve()
	}
	if to == "" {
		e.t.Fatalf("/authorize ended on a page: %d %s", b.status, b.page)
	}
	return query(e.t, to)
}

// vkid posts to a VK ID endpoint as the web SDK does: params in the query,
// body in the body.
func (e *env) vkid(path string, params, body url.Values, header ...string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+path+"?"+params.Encode(), strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.doJSON(req)
}

func (e *env) vkidExchange(app vkidApp, code, device, state string) (int, map[string]any) {
	e.t.Helper()
	return e.vkid("/oauth2/auth", url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {app.redirect}, "client_id": {app.id},
		"code_verifier": {vkidVerifier}, "state": {state}, "device_id": {device}}, url.Values{"code": {code}})
}

func (e *env) vkidRefresh(app vkidApp, refresh, device, state string, extra ...string) (int, map[string]any) {
	e.t.Helper()
	q := url.Values{"grant_type": {"refresh_token"}, "redirect_uri": {app.redirect}, "client_id": {app.id}, "device_id": {device}, "state": {state}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return e.vkid("/oauth2/auth", q, url.Values{"refresh_token": {refresh}})
}

func TestVKIDCodeFlow(t *testing.T) { onBothBackends(t, testVKIDCodeFlow, fastAPI) }

func testVKIDCodeFlow(t *testing.T, e *env) {
	u := e.user("vera", "vera@example.com")
	app := e.vkidApp(u.ID, "vera.example")
	state := "s+1/ü &x=y" // echoed exactly, whatever it holds
	b := e.browser()
	back := e.vkidAuthorize(b, app, "vera", state, "vkid.personal_info email friends", nil)
	code, device := back.Get("code"), back.Get("device_id")
	if code == "" || back.Get("state") != state || back.Get("type") != "code_v2" || back.Get("expires_in") != "600" || back.Get("iss") != e.URL {
		t.Fatalf("the redirect: %v; want code, state, type=code_v2, expires_in=600, iss", back)
	}
	if len(device) < 16 || len(device) > 128 || strings.Trim(device, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		t.Fatalf("device_id %q: want an opaque id of [A-Za-z0-9_-]", device)
	}
	// The browser keeps its device_id: the next code names the same one.
	if again := e.vkidAuthorize(b, app, "vera", "s2", "email friends", nil); again.Get("device_id") != device {
		t.Fatalf("a second sign-in on the same browser: device_id %q, want %q", again.Get("device_id"), device)
	}

	t.Run("a code with another device_id is refused", func(t *testing.T) {
		c := e.vkidAuthorize(b, app, "vera", "s3", "email", nil).Get("code")
		status, m := e.vkidExchange(app, c, "another-device", "s3")
		if status != 400 || m["error"] != "invalid_request" || m["error_description"] != "device_id is invalid" || m["state"] != "s3" {
			t.Fatalf("%d %v", status, m)
		}
	})

	status, m := e.vkidExchange(app, code, device, state)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, m)
	}
	uid, isNumber := m["user_id"].(float64)
	if m["state"] != state || !isNumber || int64(uid) != u.ID || m["scope"] != "vkid.personal_info friends email" ||
		m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["id_token"] == nil || m["refresh_token"] == nil {
		t.Fatalf("exchange answer: %v", m)
	}
	access, refresh := m["access_token"].(string), m["refresh_token"].(string)
	// The token works at the API with its scopes, and lives an hour.
	perms := e.call("account.getAppPermissions", access, nil)
	if perms["response"] != float64(2|4194304) {
		t.Fatalf("account.getAppPermissions: %v, want friends|email", perms)
	}
	status, again := e.vkidExchange(app, code, device, state)
	if status != 400 || again["error"] != "invalid_grant" || again["error_description"] != "code was already used" {
		t.Fatalf("the code again: %d %v", status, again)
	}
	// The replay revoked what the code issued (RFC 9700 §4.1.2), its
	// refresh token too: a new sign-in.
	if status, m := e.vkidRefresh(app, refresh, device, "gone"); status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("the replayed code's refresh token: %d %v", status, m)
	}
	code = e.vkidAuthorize(b, app, "vera", "s4", "email friends", nil).Get("code")
	if status, m = e.vkidExchange(app, code, device, "s4"); status != 200 {
		t.Fatalf("a new sign-in: %d %v", status, m)
	}
	access, refresh = m["access_token"].(string), m["refresh_token"].(string)

	t.Run("user_info", func(t *testing.T) {
		status, m := e.vkid("/oauth2/user_info", url.Values{"client_id": {app.id}}, url.Values{"access_token": {access}})
		user, _ := m["user"].(map[string]any)
		if status != 200 || user["user_id"] != fmt.Sprint(u.ID) || user["first_name"] != "Vera" || user["last_name"] != "Tester" ||
			user["email"] != "vera@example.com" || user["sex"] != float64(0) || user["avatar"] == "" {
			t.Fatalf("%d %v", status, m)
		}
		// Bearer works as well as the form field.
		if status, m := e.vkid("/oauth2/user_info", url.Values{"client_id": {app.id}}, nil, "Authorization", "Bearer "+access); status != 200 {
			t.Fatalf("as Bearer: %d %v", status, m)
		}
	})

	t.Run("public_info", func(t *testing.T) {
		status, m := e.vkid("/oauth2/public_info", url.Values{"client_id": {app.id}}, url.Values{"id_token": {m["id_token"].(string)}})
		user, _ := m["user"].(map[string]any)
		if status != 200 || user["user_id"] != fmt.Sprint(u.ID) || user["first_name"] != "Vera" || user["last_name"] != "T." {
			t.Fatalf("%d %v", status, m)
		}
	})

	// Refreshes rotate: a new refresh token every time.
	seen := map[string]bool{refresh: true}
	for i := range 3 {
		st := fmt.Sprintf("r%d", i)
		status, m := e.vkidRefresh(app, refresh, device, st)
		next, _ := m["refresh_token"].(string)
		if status != 200 || m["state"] != st || next == "" || seen[next] || m["scope"] != "vkid.personal_info friends email" {
			t.Fatalf("refresh %d: %d %v", i, status, m)
		}
		seen[next] = true
		refresh, access = next, m["access_token"].(string)
	}
	t.Run("a refresh token only works with its device", func(t *testing.T) {
		status, m := e.vkidRefresh(app, refresh, "someone-else", "x")
		if status != 400 || m["error"] != "invalid_grant" || m["error_description"] != "refresh_token is missing or invalid" {
			t.Fatalf("%d %v", status, m)
		}
		// Refused without being spent: its device still refreshes with it.
		status, m = e.vkidRefresh(app, refresh, device, "x")
		if status != 200 {
			t.Fatalf("after another device tried: %d %v", status, m)
		}
		refresh, access = m["refresh_token"].(string), m["access_token"].(string)
	})
	t.Run("scope narrows a refresh and never widens it", func(t *testing.T) {
		status, m := e.vkidRefresh(app, refresh, device, "n", "scope", "friends wall")
		if status != 400 || m["error"] != "invalid_scope" || m["state"] != "n" {
			t.Fatalf("wider: %d %v", status, m)
		}
	})

	// An hour later the access token has expired.
	e.Clock.Advance(61 * time.Minute)
	if code, _ := apiError(e.call("account.getAppPermissions", access, nil)); code != 5 {
		t.Fatalf("an access token after 61 minutes: error %d, want 5", code)
	}
}

// A spent refresh token presented again is refused with VK ID's words and
// revokes the grant; logout ends one sign-in; revoke ends them all.
func TestVKIDRefreshReuseLogoutRevoke(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		u := e.user("lara", "")
		app := e.vkidApp(u.ID, "lara.example")
		b := e.browser()
		signIn := func(state string) (access, refresh, device string) {
			t.Helper()
			back := e.vkidAuthorize(b, app, "lara", state, "friends", nil)
			status, m := e.vkidExchange(app, back.Get("code"), back.Get("device_id"), state)
			if status != 200 {
				t.Fatalf("exchange: %d %v", status, m)
			}
			return m["access_token"].(string), m["refresh_token"].(string), back.Get("device_id")
		}
		live := func(tok string) bool {
			code, _ := apiError(e.call("account.getAppPermissions", tok, nil))
			return code == 0
		}

		access, first, device := signIn("a")
		status, m := e.vkidRefresh(app, first, device, "b")
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, m)
		}
		latest := m["access_token"].(string)
		status, m = e.vkidRefresh(app, first, device, "c")
		if status != 400 || m["error"] != "invalid_grant" || m["error_description"] != "refresh_token is missing or invalid" || m["state"] != "c" {
			t.Fatalf("the spent refresh token again: %d %v", status, m)
		}
		if live(latest) || live(access) {
			t.Fatal("after a reuse, the grant's access tokens still work")
		}

		one, _, _ := signIn("d")
		other, otherRefresh, _ := signIn("e")
		status, m = e.vkid("/oauth2/logout", url.Values{"client_id": {app.id}}, url.Values{"access_token": {one}})
		if status != 200 || m["response"] != float64(1) {
			t.Fatalf("logout: %d %v", status, m)
		}
		if live(one) || !live(other) {
			t.Fatalf("after logout of one sign-in: it works %v, the other works %v; want false, true", live(one), live(other))
		}
		status, m = e.vkid("/oauth2/revoke", url.Values{"client_id": {app.id}}, url.Values{"access_token": {other}})
		if status != 200 || m["response"] != float64(1) || live(other) {
			t.Fatalf("revoke: %d %v, the token works %v", status, m, live(other))
		}
		if status, _ := e.vkidRefresh(app, otherRefresh, device, "f"); status != 400 {
			t.Fatalf("a refresh token after revoke: %d", status)
		}
		// Revoke forgot the consent: the next sign-in asks again.
		b.get(e.authorize(map[string]string{"response_type": "code", "client_id": app.id, "redirect_uri": app.redirect,
			"code_challenge": challengeOf(vkidVerifier), "code_challenge_method": "S256", "scope": "friends"}))
		if !strings.Contains(b.page, `name="decision"`) {
			t.Fatal("after revoke, the dialog was not shown")
		}
	}, fastAPI)
}

// Every error row of vkid-wire.md §8: its code, status, a description, and
// the request's state.
func TestVKIDErrors(t *testing.T) {
	e := newEnv(t, fastAPI)
	u := e.user("ella", "")
	app := e.vkidApp(u.ID, "ella.example")
	b := e.browser()
	code := func() (string, string) {
		back := e.vkidAuthorize(b, app, "ella", "s", "friends", nil)
		return back.Get("code"), back.Get("device_id")
	}
	exchange := func(mut func(q, body url.Values)) (int, map[string]any) {
		c, device := code()
		q := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {app.redirect}, "client_id": {app.id},
			"code_verifier": {vkidVerifier}, "state": {"S"}, "device_id": {device}}
		body := url.Values{"code": {c}}
		mut(q, body)
		return e.vkid("/oauth2/auth", q, body)
	}
	used, usedDevice := code()
	if status, m := e.vkidExchange(app, used, usedDevice, "S"); status != 200 {
		t.Fatalf("exchange: %d %v", status, m)
	}
	cases := []struct {
		name   string
		do     func() (int, map[string]any)
		status int
		code   string
		desc   string
	}{
		{"no code_verifier", func() (int, map[string]any) { return exchange(func(q, _ url.Values) { q.Del("code_verifier") }) },
			400, "invalid_request", "verifier is missing or invalid"},
		{"a malformed code_verifier", func() (int, map[string]any) {
			return exchange(func(q, _ url.Values) { q.Set("code_verifier", "short") })
		}, 400, "invalid_request", "verifier is missing or invalid"},
		{"a malformed device_id", func() (int, map[string]any) {
			return exchange(func(q, _ url.Values) { q.Set("device_id", "no spaces!") })
		}, 400, "invalid_request", "device_id is invalid"},
		{"an unknown code", func() (int, map[string]any) {
			return exchange(func(_, body url.Values) { body.Set("code", "lkc1"+strings.Repeat("0", 60)) })
		}, 400, "invalid_grant", "code is invalid or expired"},
		{"a used code", func() (int, map[string]any) { return e.vkidExchange(app, used, usedDevice, "S") },
			400, "invalid_grant", "code was already used"},
		{"another verifier", func() (int, map[string]any) {
			return exchange(func(q, _ url.Values) { q.Set("code_verifier", strings.Repeat("z", 43)) })
		}, 400, "invalid_grant", "code_challenge does not match code_verifier"},
		{"another redirect_uri", func() (int, map[string]any) {
			return exchange(func(q, _ url.Values) { q.Set("redirect_uri", "https://ella.example/other") })
		}, 400, "invalid_grant", "redirect_uri is invalid, please pass same redirect_uri, you used in authorize method."},
		{"no refresh_token", func() (int, map[string]any) { return e.vkidRefresh(app, "", "dev", "S") },
			400, "invalid_grant", "refresh_token is missing or invalid"},
		{"an unknown client_id", func() (int, map[string]any) {
			return exchange(func(q, _ url.Values) { q.Set("client_id", "999999") })
		}, 401, "invalid_client", ""},
		{"a wrong client_secret", func() (int, map[string]any) {
			return exchange(func(q, _ url.Values) { q.Set("client_secret", "wrong") })
		}, 401, "invalid_client", ""},
		{"a bad access token", func() (int, map[string]any) {
			return e.vkid("/oauth2/user_info", url.Values{"client_id": {app.id}, "state": {"S"}}, url.Values{"access_token": {"lku1nonsense"}})
		}, 401, "invalid_token", ""},
		{"a bad id_token", func() (int, map[string]any) {
			return e.vkid("/oauth2/public_info", url.Values{"client_id": {app.id}, "state": {"S"}}, url.Values{"id_token": {"e30.e30.e30"}})
		}, 401, "invalid_id_token", ""},
		{"an unknown scope on refresh", func() (int, map[string]any) { return e.vkidRefresh(app, "lkr1x", "dev", "S", "scope", "nonsense") },
			400, "invalid_scope", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, m := c.do()
			if status != c.status || m["error"] != c.code || m["error_description"] == "" || m["error_description"] == nil || m["state"] != "S" {
				t.Fatalf("%d %v; want %d %s with a description and state S", status, m, c.status, c.code)
			}
			if c.desc != "" && m["error_description"] != c.desc {
				t.Fatalf("description %q, want %q", m["error_description"], c.desc)
			}
		})
	}
	t.Run("too many requests: slow_down", func(t *testing.T) {
		var status int
		var m map[string]any
		for range 200 {
			if status, m = e.vkid("/oauth2/user_info", url.Values{"client_id": {app.id}, "state": {"S"}}, nil); status == 429 {
				break
			}
		}
		if status != 429 || m["error"] != "slow_down" || m["state"] != "S" {
			t.Fatalf("%d %v; want 429 slow_down", status, m)
		}
		e.Clock.Advance(time.Minute)
		if status, _ := e.vkid("/oauth2/user_info", url.Values{"client_id": {app.id}}, nil); status != 401 {
			t.Fatalf("a minute later: %d, want the endpoint's own answer (401)", status)
		}
	})
	t.Run("other methods and paths answer JSON", func(t *testing.T) {
		if status, m := e.getJSON(e.URL + "/oauth2/auth"); status != 405 || m["error"] != "invalid_request" {
			t.Fatalf("GET /oauth2/auth: %d %v", status, m)
		}
		if status, m := e.getJSON(e.URL + "/oauth2/nothing"); status != 404 || m["error"] != "invalid_request" {
			t.Fatalf("/oauth2/nothing: %d %v", status, m)
		}
	})
}

// Browser apps call VK ID endpoints cross-origin: the app's registered
// origins may read the answers, preflights included; others may not.
func TestVKIDCORS(t *testing.T) {
	e := newEnv(t)
	u := e.user("cleo", "")
	app := e.vkidApp(u.ID, "cleo.example")
	post := func(origin string) http.Header {
		req, _ := http.NewRequest("POST", e.URL+"/oauth2/user_info?client_id="+app.id, strings.NewReader("access_token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}
	preflight := func(origin string) (int, http.Header) {
		req, _ := http.NewRequest("OPTIONS", e.URL+"/oauth2/auth?client_id="+app.id, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if h := post("https://cleo.example"); h.Get("Access-Control-Allow-Origin") != "https://cleo.example" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Fatalf("the app's origin: %v", h)
	}
	for _, o := range []string{"https://evil.example", "https://cleo.example.evil.example", "http://cleo.example", "null"} {
		if h := post(o); h.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("origin %s was allowed", o)
		}
		if status, h := preflight(o); status != 403 || h.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight from %s: %d %v", o, status, h)
		}
	}
	status, h := preflight("https://cleo.example")
	if status != 204 || h.Get("Access-Control-Allow-Origin") != "https://cleo.example" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight from the app's origin: %d %v", status, h)
	}
}

// A legacy implicit-flow token migrates to a VK ID grant with no more
// scopes than it had (vkid-wire.md §7).
func TestVKIDMigratesLegacyToken(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		u := e.user("mira", "")
		app := e.vkidApp(u.ID, "mira.example")
		b := e.browser()
		b.get(e.authorize(map[string]string{"client_id": app.id, "redirect_uri": app.redirect, "response_type": "token", "scope": "friends,photos"}))
		to := b.login("mira", "password-mira")
		if to == "" {
			to = b.approve()
		}
		legacy := fragment(t, to).Get("access_token")
		if legacy == "" {
			t.Fatalf("no legacy token in %s", to)
		}
		q := url.Values{"grant_type": {"access_token"}, "client_id": {app.id}, "device_id": {"mira-phone"}, "state": {"m"},
			"code_challenge": {challengeOf(vkidVerifier)}, "code_challenge_method": {"S256"}}
		status, m := e.vkid("/oauth2/auth", q, url.Values{"access_token": {legacy}})
		if status != 200 || m["code"] == nil || m["state"] != "m" || m["device_id"] != "mira-phone" {
			t.Fatalf("migration: %d %v", status, m)
		}
		status, m = e.vkid("/oauth2/auth", url.Values{"grant_type": {"authorization_code"}, "client_id": {app.id}, "device_id": {"mira-phone"},
			"code_verifier": {vkidVerifier}, "state": {"m2"}}, url.Values{"code": {m["code"].(string)}})
		if status != 200 || m["scope"] != "vkid.personal_info friends photos" {
			t.Fatalf("the migration's code: %d %v", status, m)
		}
		if perms := e.call("account.getAppPermissions", m["access_token"].(string), nil); perms["response"] != float64(2|4) {
			t.Fatalf("the migrated token's permissions: %v, want friends|photos", perms)
		}
		// Not a token: invalid_token. Another app's token: invalid_token.
		other := e.vkidApp(u.ID, "other.example")
		for name, call := range map[string][2]string{"nonsense": {app.id, "lku1nonsense"}, "another app's token": {other.id, legacy}} {
			q.Set("client_id", call[0])
			if status, m := e.vkid("/oauth2/auth", q, url.Values{"access_token": {call[1]}}); status != 401 || m["error"] != "invalid_token" {
				t.Fatalf("%s: %d %v", name, status, m)
			}
		}
	})
}

// prompt=none answers without a page; prompt=consent shows the dialog even
// when the consent covers the request; prompt=login asks for the password
// of someone signed in a while ago.
func TestVKIDPrompt(t *testing.T) {
	e := newEnv(t)
	u := e.user("nina", "")
	app := e.vkidApp(u.ID, "nina.example")
	b := e.browser()
	params := func(prompt string) map[string]string {
		return map[string]string{"response_type": "code", "client_id": app.id, "redirect_uri": app.redirect, "state": "p",
			"code_challenge": challengeOf(vkidVerifier), "code_challenge_method": "sha256", "scope": "friends", "prompt": prompt}
	}
	if back := query(t, b.get(e.authorize(params("none")))); back.Get("error") != "login_required" || back.Get("state") != "p" {
		t.Fatalf("prompt=none, signed out: %v", back)
	}
	b.get(e.authorize(params("")))
	if to := b.login("nina", "password-nina"); to != "" {
		t.Fatalf("no dialog: %s", to)
	}
	if back := query(t, b.get(e.authorize(params("none")))); back.Get("error") != "interaction_required" {
		t.Fatalf("prompt=none, consent needed: %v", back)
	}
	if back := query(t, b.approve()); back.Get("code") == "" {
		t.Fatalf("approve: %v", back)
	}
	if back := query(t, b.get(e.authorize(params("none")))); back.Get("code") == "" {
		t.Fatalf("prompt=none, consent given: %v", back)
	}
	if to := b.get(e.authorize(params("consent"))); to != "" || !strings.Contains(b.page, `name="decision"`) {
		t.Fatalf("prompt=consent: went to %q", to)
	}
	e.Clock.Advance(10 * time.Minute)
	if to := b.get(e.authorize(params("login"))); to != "" || !strings.Contains(b.page, `name="password"`) {
		t.Fatalf("prompt=login ten minutes after logging in: went to %q", to)
	}
	if back := query(t, b.login("nina", "password-nina")); back.Get("code") == "" {
		t.Fatalf("after logging in again: %v", back)
	}
	if back := query(t, b.get(e.authorize(params("none login")))); back.Get("error") != "invalid_request" {
		t.Fatalf("prompt=none login: %v", back)
	}
}

// DPoP (RFC 9449) in the VK ID dialect: a proof at /oauth2/auth binds the
// tokens to its key; /oauth2/user_info then takes the token only as
// Authorization: DPoP with a fresh proof, never as Bearer, and refuses a
// refresh with another key's proof without spending the refresh token.
func TestVKIDDPoP(t *testing.T) {
	e := newEnv(t, fastAPI)
	u := e.user("dina", "")
	app := e.vkidApp(u.ID, "dina.example")
	key, other := dpopKey(t), dpopKey(t)
	n := 0
	proof := func(k *dpop.Signer, path, tok string) string {
		n++
		p, err := k.Proof("POST", e.URL+path, tok, fmt.Sprint("vkid-jti-", n), e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	back := e.vkidAuthorize(e.browser(), app, "dina", "d", "email", nil)
	q := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {app.redirect}, "client_id": {app.id},
		"code_verifier": {vkidVerifier}, "state": {"d"}, "device_id": {back.Get("device_id")}}
	status, m := e.vkid("/oauth2/auth", q, url.Values{"code": {back.Get("code")}}, "DPoP", proof(key, "/oauth2/auth", ""))
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("a code exchange with a proof: %d %v", status, m)
	}
	access, refresh := m["access_token"].(string), m["refresh_token"].(string)
	info := url.Values{"client_id": {app.id}}
	if status, m := e.vkid("/oauth2/user_info", info, nil, "Authorization", "DPoP "+access, "DPoP", proof(key, "/oauth2/user_info", access)); status != 200 {
		t.Fatalf("user_info with the token and a proof: %d %v", status, m)
	}
	if status, m := e.vkid("/oauth2/user_info", info, nil, "Authorization", "Bearer "+access); status != 401 || m["error"] != "invalid_token" {
		t.Fatalf("the bound token as Bearer: %d %v", status, m)
	}
	if status, _ := e.vkid("/oauth2/user_info", info, nil, "Authorization", "DPoP "+access, "DPoP", proof(other, "/oauth2/user_info", access)); status != 401 {
		t.Fatalf("the bound token with another key's proof: %d", status)
	}
	rq := url.Values{"grant_type": {"refresh_token"}, "client_id": {app.id}, "device_id": {back.Get("device_id")}, "state": {"r"}}
	if status, _ := e.vkid("/oauth2/auth", rq, url.Values{"refresh_token": {refresh}}, "DPoP", proof(other, "/oauth2/auth", "")); status != 400 {
		t.Fatalf("a refresh with another key: %d", status)
	}
	if status, m := e.vkid("/oauth2/auth", rq, url.Values{"refresh_token": {refresh}}, "DPoP", proof(key, "/oauth2/auth", "")); status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("the refresh with its key, after another key tried: %d %v", status, m)
	}
}
