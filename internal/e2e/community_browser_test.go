package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"latchkey/internal/testenv"
)

// An admin creates a token on the community's "API usage" tab with two
// permissions, for their bot app; the app's introspection sees it active;
// the admin revokes it on the same page; introspection sees it inactive.
func TestBrowserCommunityAPIUsageCreateAndRevoke(t *testing.T) {
	e := newCommunityEnv(t)
	ctx := testenv.Browser(t)
	must := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	api := fmt.Sprintf("%s/communities/%d/api", e.URL, e.g1.ID)
	must(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(api), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "admin"), chromedp.SendKeys(`input[name=password]`, "password-admin"),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`form.create-token`),
		chromedp.Click(`input[name=scope][value=messages]`), chromedp.Click(`input[name=scope][value=docs]`),
		chromedp.SetValue(`select[name=app_id]`, fmt.Sprint(e.app.ID)),
		chromedp.Click(`form.create-token button[type=submit]`), chromedp.WaitVisible(`#new-token`),
		chromedp.Click(`button[data-copy=new-token]`))
	raw, err := chromedp.Run(ctx, chromedp.Text(`#new-token`))
	if err != nil {
		t.Fatal(err)
	}
	raw = strings.TrimSpace(raw)
	if !strings.HasPrefix(raw, "lkc1") {
		t.Fatalf("new token shown as %q", raw)
	}
	rows, _ := chromedp.Run(ctx, chromedp.Text(`table.tokens`))
	if !strings.Contains(rows, "messages, docs") || !strings.Contains(rows, e.app.Title+" (created here)") || !strings.Contains(rows, "admin") {
		t.Fatalf("tokens table: %s", rows)
	}
	testenv.Screenshot(t, ctx, "community-api-usage-new-token")

	in := e.introspect(e.app, raw)
	if !active(in) || in["scope"] != "messages docs" || in["group_id"] != float64(e.g1.ID) {
		t.Fatalf("introspection after creation: %v", in)
	}
	m := e.call("groups.getTokenPermissions", raw, nil)
	if jsonString(m["response"]) != `{"mask":135168,"permissions":[{"name":"messages","setting":4096},{"name":"docs","setting":131072}]}` {
		t.Fatalf("groups.getTokenPermissions: %v", m)
	}

	must(chromedp.Click(`table.tokens button.danger`), chromedp.WaitVisible(`p.notice`))
	notice, _ := chromedp.Run(ctx, chromedp.Text(`p.notice`))
	if !strings.Contains(notice, "Token revoked") {
		t.Fatalf("notice after revoke: %q", notice)
	}
	events, _ := chromedp.Run(ctx, chromedp.Text(`table.events`))
	if !strings.Contains(events, "Token created here: messages docs") || !strings.Contains(events, "Token revoked") {
		t.Fatalf("events: %s", events)
	}
	testenv.Screenshot(t, ctx, "community-api-usage-revoked")
	if active(e.introspect(e.app, raw)) {
		t.Fatal("introspection: the revoked token is still active")
	}
}
