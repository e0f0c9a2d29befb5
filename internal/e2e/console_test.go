package e2e

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/internal/storage"
)

// consoleApp creates an app through the console's form and returns its id.
func consoleApp(t *testing.T, b *browser, title, typ, redirects string) string {
	t.Helper()
	b.get(b.e.URL + "/apps/new")
	b.submit(b.formWith("title"), map[string]string{"title": title, "type": typ, "redirect_uris": redirects})
	m := regexp.MustCompile(`/apps/(\d+)`).FindStringSubmatch(b.pageURL)
	if m == nil || b.status != 200 {
		t.Fatalf("after create: %s (%d)\n%s", b.pageURL, b.status, b.page)
	}
	return m[1]
}

// secretOnPage reads the text of <code id=ID> on the current page.
func secretOnPage(t *testing.T, b *browser, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `" class="secret">([^<]*)<`).FindStringSubmatch(b.page)
	if m == nil {
		t.Fatalf("no %s on the page", id)
	}
	return m[1]
}

// confirm opens an action's confirmation page and confirms it.
func confirm(t *testing.T, b *browser, appID, action string) {
	t.Helper()
	b.get(b.e.URL + "/apps/" + appID + "/confirm/" + action)
	b.submit(b.formWith("confirm"), nil, "confirm", "yes")
	if b.status != 200 {
		t.Fatalf("%s: %d\n%s", action, b.status, b.page)
	}
}

func (e *env) clientCredentials(id, secret string) (int, map[string]any) {
	return e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
}

func TestConsoleSecretRotationAndClientCredentials(t *testing.T) {
	e := newEnv(t)
	e.user("dev", "")
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("dev", "password-dev")
	id := consoleApp(t, b, "Rotator", "web", "https://rot.example/cb\nhttps://rot.example/cb2")
	if !strings.Contains(b.page, "App created") || !strings.Contains(b.page, "https://rot.example/cb2") {
		t.Fatal("settings page after creation lacks the notice or the redirect URIs")
	}
	first := secretOnPage(t, b, "client-secret")

	// Off by default: unauthorized_client with a way to turn it on.
	if status, m := e.clientCredentials(id, first); status != 400 || m["error"] != "unauthorized_client" {
		t.Fatalf("client credentials while off: %d %v", status, m)
	}
	b.get(e.URL + "/apps/" + id)
	b.submit(b.formWith("state"), nil, "state", "on")
	if !strings.Contains(b.page, "Status: <strong>on</strong>") {
		t.Fatal("switch did not turn on")
	}
	status, m := e.clientCredentials(id, first)
	if status != 200 || m["token_type"] != "bearer" || m["expires_in"] != float64(0) || !strings.HasPrefix(m["access_token"].(string), "lks1") {
		t.Fatalf("client credentials while on: %d %v", status, m)
	}

	// Rotation: both secrets work until the old one is retired.
	confirm(t, b, id, "rotate-secret")
	second := secretOnPage(t, b, "client-secret")
	if second == first || secretOnPage(t, b, "old-client-secret") != first {
		t.Fatal("rotation did not make a new current secret and keep the old one")
	}
	minted := map[string]string{}
	for _, s := range []string{first, second} {
		status, m := e.clientCredentials(id, s)
		if status != 200 {
			t.Fatalf("during rotation secret %q refused: %d %v", s, status, m)
		}
		minted[s] = m["access_token"].(string)
	}
	confirm(t, b, id, "retire-secret")
	// Tokens minted with the retired secret die with it; the others live.
	if code, _ := apiError(e.call("utils.getServerTime", minted[first], nil)); code != 5 {
		t.Fatalf("a token minted with the retired secret answered %d, want 5", code)
	}
	if code, _ := apiError(e.call("utils.getServerTime", minted[second], nil)); code != 0 {
		t.Fatalf("a token minted with the current secret answered %d", code)
	}
	if status, m := e.clientCredentials(id, first); status != 401 || m["error_description"] != "client_secret is incorrect" {
		t.Fatalf("retired secret: %d %v", status, m)
	}
	if status, _ := e.clientCredentials(id, second); status != 200 {
		t.Fatal("current secret refused after retiring the old one")
	}

	// Without retiring, the old secret expires after 7 days.
	confirm(t, b, id, "rotate-secret")
	third := secretOnPage(t, b, "client-secret")
	e.Clock.Advance(7*24*time.Hour + time.Second)
	if status, _ := e.clientCredentials(id, second); status != 401 {
		t.Fatal("rotated-out secret still works after 7 days")
	}
	if status, _ := e.clientCredentials(id, third); status != 200 {
		t.Fatal("current secret refused")
	}

	b.get(e.URL + "/apps/" + id)
	b.submit(b.formWith("state"), nil, "state", "off")
	if status, _ := e.clientCredentials(id, third); status != 400 {
		t.Fatal("client credentials still work after turning the switch off")
	}

	// Every action is in the security events, with who and from where.
	b.get(e.URL + "/apps/" + id)
	for _, want := range []string{"App created", "Secure key regenerated", "Previous secure key retired", "Client credentials flow turned on", "Client credentials flow turned off", "dev", "127.0.0.1"} {
		if !strings.Contains(b.page, want) {
			t.Errorf("recent security events lack %q", want)
		}
	}
}

func TestConsoleEditsRedirectURIsAndValidates(t *testing.T) {
	e := newEnv(t)
	e.user("dev", "")
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("dev", "password-dev")
	b.get(e.URL + "/apps/new")
	b.submit(b.formWith("title"), map[string]string{"title": "Bad", "type": "web", "redirect_uris": "http://evil.example/cb"})
	if b.status != 422 || !strings.Contains(b.page, "use https") {
		t.Fatalf("http redirect URI accepted: %d", b.status)
	}
	id := consoleApp(t, b, "Editor", "web", "https://ed.example/cb")
	b.submit(b.formWith("redirect_uris"), map[string]string{"redirect_uris": "https://ed.example/new\nhttps://ed.example/other"})
	a, err := e.Store.GetApp(context.Background(), mustInt(t, id))
	if err != nil || fmt.Sprint(a.RedirectURIs) != "[https://ed.example/new https://ed.example/other]" {
		t.Fatalf("redirect URIs after edit: %v %v", a.RedirectURIs, err)
	}
	// The new URI works at /authorize, the old one no longer does.
	status, _ := e.getJSON(e.authorize(map[string]string{"client_id": id, "redirect_uri": "https://ed.example/cb"}))
	if status != 400 {
		t.Fatalf("removed redirect URI still accepted: %d", status)
	}
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConsoleDeleteAppStopsItsTokens(t *testing.T) {
	e := newAPIEnv(t)
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("alice", "password-alice")
	id := fmt.Sprint(e.app.ID)
	if code, _ := apiError(e.call("users.get", e.user, nil)); code != 0 {
		t.Fatalf("before delete: %d", code)
	}
	confirm(t, b, id, "delete")
	if !strings.Contains(b.pageURL, "/apps") || strings.Contains(b.page, e.app.Title) {
		t.Fatalf("after delete: %s", b.pageURL)
	}
	for _, tok := range []string{e.user, e.group, e.service} {
		if code, _ := apiError(e.call("users.get", tok, map[string]string{"user_ids": "1"})); code != 5 {
			t.Fatalf("a token of the deleted app answered %d, want 5", code)
		}
	}
	if _, err := e.Store.GetApp(context.Background(), e.app.ID); err != storage.ErrNotFound {
		t.Fatalf("app still stored: %v", err)
	}
}

func TestConsoleAnotherUserCannotSeeOrChangeTheApp(t *testing.T) {
	e := newAPIEnv(t) // alice owns e.app
	before, _ := e.Store.GetApp(context.Background(), e.app.ID)
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("bob", "password-bob")
	id := fmt.Sprint(e.app.ID)
	b.get(e.URL + "/apps/" + id)
	if b.status != 403 || strings.Contains(b.page, e.app.ClientSecret) || strings.Contains(b.page, e.app.ServiceToken) {
		t.Fatalf("another user's settings page: %d", b.status)
	}
	// Bob posts to every action with his own valid CSRF token.
	b.get(e.URL + "/logout") // a page with a form, for a valid CSRF token
	csrf := b.formWith("csrf").fields.Get("csrf")
	for _, action := range []string{"rotate-secret", "retire-secret", "new-service-token", "delete", "client-credentials", "settings"} {
		f := form{action: "/apps/" + id + "/" + action, fields: url.Values{"csrf": {csrf}, "confirm": {"yes"}, "state": {"on"}, "title": {"Stolen"}, "redirect_uris": {"https://evil.example/cb"}}}
		b.pageURL = e.URL + "/apps"
		b.submit(f, nil)
		if b.status != 403 {
			t.Fatalf("%s by another user: %d, want 403", action, b.status)
		}
	}
	after, _ := e.Store.GetApp(context.Background(), e.app.ID)
	if after.Title != before.Title || after.Secret.Hash != before.Secret.Hash || string(after.ServiceTokenSealed) != string(before.ServiceTokenSealed) ||
		after.ClientCredentials || fmt.Sprint(after.RedirectURIs) != fmt.Sprint(before.RedirectURIs) {
		t.Fatal("another user's requests changed the app")
	}
	if code, _ := apiError(e.call("users.get", e.service, map[string]string{"user_ids": "1"})); code != 0 {
		t.Fatal("the owner's service token stopped working")
	}
	// Not signed in: the console sends to the login page.
	anon := e.browser()
	anon.get(e.URL + "/apps/" + id)
	if !strings.Contains(anon.pageURL, "/login") {
		t.Fatalf("anonymous console access landed on %s", anon.pageURL)
	}
}
