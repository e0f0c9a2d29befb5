package e2e

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
	"latchkey/internal/token"
)

// A developer creates an app in the console, copies its service token,
// generates a new one, and the old token stops working at once.
func TestBrowserConsoleServiceTokenRegeneration(t *testing.T) {
	e := newEnv(t)
	dev := e.user("devon", "")
	ctx := testenv.Browser(t)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	must := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}

	must(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.URL+"/apps"), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "devon"), chromedp.SendKeys(`input[name=password]`, "password-devon"),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`a[href="/apps/new"]`),
		chromedp.Click(`a[href="/apps/new"]`), chromedp.WaitVisible(`input[name=title]`),
		chromedp.SendKeys(`input[name=title]`, "Console app"),
		chromedp.SetValue(`select[name=type]`, "standalone"),
		chromedp.Submit(`input[name=title]`), chromedp.WaitVisible(`#app-id`))
	appID := text(`#app-id`)

	// Show and copy the secure key and the service token.
	must(chromedp.Click(`details:has(#client-secret) summary`), chromedp.WaitVisible(`#client-secret`),
		chromedp.Click(`details:has(#service-token) summary`), chromedp.WaitVisible(`#service-token`),
		chromedp.Click(`button[data-copy=service-token]`))
	secret, oldToken := text(`#client-secret`), text(`#service-token`)
	if !strings.HasPrefix(oldToken, "lks1") || len(secret) != 24 {
		t.Fatalf("page shows secret %q and service token %q", secret, oldToken)
	}
	copied, err := chromedp.Run(ctx, chromedp.Evaluate[string](`new Promise(r => setTimeout(() => r(document.querySelector("button[data-copy=service-token]").textContent), 300))`, chromedp.EvalAwaitPromise))
	if err != nil || copied != "Copied" {
		t.Fatalf("copy button reads %q", copied)
	}
	testenv.Screenshot(t, ctx, "console-app-settings")

	// Generate a new one, through the confirmation page.
	must(chromedp.Click(`a[href$="/confirm/new-service-token"]`), chromedp.WaitVisible(`button[name=confirm]`))
	testenv.Screenshot(t, ctx, "console-confirm-new-service-token")
	must(chromedp.Click(`button[name=confirm]`), chromedp.WaitVisible(`.notice`),
		chromedp.Click(`details:has(#service-token) summary`), chromedp.WaitVisible(`#service-token`))
	newToken := text(`#service-token`)
	if newToken == oldToken || !strings.HasPrefix(newToken, "lks1") {
		t.Fatalf("new service token %q", newToken)
	}
	events := text(`table.events`)
	if !strings.Contains(events, "Service token regenerated") || !strings.Contains(events, "devon") {
		t.Fatalf("security events: %s", events)
	}

	// Introspection: old inactive, new active.
	status, old := e.postForm("/oauth/introspect", url.Values{"token": {oldToken}}, appID, secret)
	_, fresh := e.postForm("/oauth/introspect", url.Values{"token": {newToken}}, appID, secret)
	if status != 200 || active(old) || !active(fresh) || fresh["token_kind"] != "service" {
		t.Fatalf("introspection: old %v, new %v", old, fresh)
	}
	// The API: secure.checkToken refuses the old service token, accepts the new.
	var id int64
	fmt.Sscan(appID, &id)
	userTok, _, err := e.P.Tokens.IssueToken(t.Context(), storage.Token{Kind: token.User, AppID: id, UserID: dev.ID, Flow: storage.FlowImplicit}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := apiError(e.call("secure.checkToken", oldToken, map[string]string{"token": userTok})); code != 5 || !regexp.MustCompile(`invalid access_token`).MatchString(msg) {
		t.Fatalf("old service token at the API: %d %q", code, msg)
	}
	m := e.call("secure.checkToken", newToken, map[string]string{"token": userTok})
	if r, ok := m["response"].(map[string]any); !ok || r["success"] != float64(1) || r["user_id"] != float64(dev.ID) {
		t.Fatalf("new service token at the API: %v", m)
	}
}

// A developer registers an API in the console: its page shows the
// introspection secret once, which works at introspection; a new secret
// (after a confirmation) replaces it; the settings change its scopes;
// deleting it (after a confirmation) ends its tokens.
func TestBrowserConsoleAPI(t *testing.T) {
	e := newEnv(t)
	e.user("devon", "")
	ctx := testenv.Browser(t)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	must := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	works := func(clientID, secret string) bool {
		status, _ := e.postForm("/oauth/introspect", url.Values{"token": {"x"}}, clientID, secret)
		return status == 200
	}
	must(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.URL+"/apps"), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "devon"), chromedp.SendKeys(`input[name=password]`, "password-devon"),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`a[href="/apis/new"]`),
		chromedp.Click(`a[href="/apis/new"]`), chromedp.WaitVisible(`input[name=identifier]`),
		chromedp.SendKeys(`input[name=name]`, "Orders"),
		chromedp.SendKeys(`input[name=identifier]`, "https://orders.example/api"),
		chromedp.SendKeys(`textarea[name=scopes]`, "orders:read = Read your orders | Читать ваши заказы\norders:write = Place orders | Оформлять заказы"),
		chromedp.Submit(`input[name=name]`), chromedp.WaitVisible(`#introspection-secret`))
	clientID, secret := text(`#introspection-client-id`), text(`#introspection-secret`)
	if !strings.HasPrefix(clientID, "api-") || len(secret) < 20 || !works(clientID, secret) {
		t.Fatalf("the new API's credentials %q %q do not work at introspection", clientID, secret)
	}
	testenv.Screenshot(t, ctx, "console-api-created")
	id := strings.TrimPrefix(clientID, "api-")
	must(chromedp.Navigate(e.URL+"/apis/"+id), chromedp.WaitVisible(`#live-tokens`))
	if ex := text(`#token-example`); !strings.Contains(ex, "resource=https://orders.example/api") || !strings.Contains(ex, e.URL+"/access_token") {
		t.Fatalf("the token example: %q", ex)
	}
	if ex := text(`#nginx-example`); !strings.Contains(ex, e.URL+"/oauth/check") || !strings.Contains(ex, "auth_request") || !strings.Contains(ex, "proxy_set_header X-Latchkey-Subject") {
		t.Fatalf("the nginx example: %q", ex)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Nodes(`#introspection-secret`, chromedp.AtLeast(0))); len(n) != 0 {
		t.Fatal("the introspection secret is shown again")
	}

	// A bad scope line is said so, and nothing changes.
	must(chromedp.SetValue(`textarea[name=scopes]`, "orders:read without descriptions"), chromedp.Submit(`input[name=name]`), chromedp.WaitVisible(`p.error`))
	if msg := text(`p.error`); !strings.Contains(msg, "name = English description | Russian description") {
		t.Fatalf("a bad scope line: %q", msg)
	}
	must(chromedp.SetValue(`textarea[name=scopes]`, "orders:read = Read your orders | Читать ваши заказы"), chromedp.Submit(`input[name=name]`),
		chromedp.WaitVisible(`p.notice`))
	if v, err := e.P.APIs.API(t.Context(), platform.CLI, mustInt(t, id)); err != nil || len(platform.ScopeNames(&v.API, -1)) != 1 {
		t.Fatalf("the scopes after saving: %v %v", platform.ScopeNames(&v.API, -1), err)
	}

	// A new secret, after a confirmation: the old one stops working.
	must(chromedp.Click(`a[href$="/confirm/rotate-secret"]`), chromedp.WaitVisible(`button[name=confirm]`),
		chromedp.Click(`button[name=confirm]`), chromedp.WaitVisible(`#introspection-secret`))
	rotated := text(`#introspection-secret`)
	if rotated == secret || !works(clientID, rotated) || works(clientID, secret) {
		t.Fatal("after a new secret, the new one should work and the old one not")
	}
	// Deleted, after a confirmation: gone from the list.
	must(chromedp.Click(`a[href$="/confirm/delete"]`), chromedp.WaitVisible(`button[name=confirm]`),
		chromedp.Click(`button[name=confirm]`), chromedp.WaitVisible(`a[href="/apis/new"]`))
	if n, _ := chromedp.Run(ctx, chromedp.Nodes(`a[href="/apis/`+id+`"]`, chromedp.AtLeast(0))); len(n) != 0 {
		t.Fatal("the deleted API is still listed")
	}
	if works(clientID, rotated) {
		t.Fatal("a deleted API's credentials still work")
	}
}
