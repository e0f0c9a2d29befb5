package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// Pages speak Russian to a browser that asks for it (Accept-Language), and
// the language links switch them with the lang cookie; a server started
// with --lang ru speaks Russian to browsers that state nothing.
func TestPagesInRussian(t *testing.T) {
	e := newEnv(t)
	u := e.user("olga", "")
	app := e.app(u.ID, storage.Standalone)
	// A browser set to Russian sends Accept-Language: ru.
	ctx := testenv.Browser(t, chromedp.Flag("lang", "ru-RU"), chromedp.Flag("accept-lang", "ru-RU,ru"))
	auth := e.authorize(map[string]string{"client_id": fmt.Sprint(app.ID), "redirect_uri": e.blank(), "response_type": "token", "scope": "friends,photos"})
	if err := chromedp.Do(ctx, chromedp.Navigate(auth), chromedp.WaitVisible(`input[name=login]`)); err != nil {
		t.Fatal(err)
	}
	text := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(`body`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := text(); !strings.Contains(s, "Вход") || !strings.Contains(s, "Пароль") || !strings.Contains(s, "Нет аккаунта?") {
		t.Fatalf("the login page for Accept-Language ru: %q", s)
	}
	testenv.Screenshot(t, ctx, "login-ru")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(`input[name=login]`, "olga"),
		chromedp.SendKeys(`input[name=password]`, "password-olga"),
		chromedp.Submit(`input[name=login]`),
		chromedp.WaitVisible(`button[name=decision][value=allow]`)); err != nil {
		t.Fatal(err)
	}
	if s := text(); !strings.Contains(s, "запрашивает доступ") || !strings.Contains(s, "Доступ к вашим фотографиям") || !strings.Contains(s, "Запретить") {
		t.Fatalf("the consent dialog in Russian: %q", s)
	}
	testenv.Screenshot(t, ctx, "consent-ru")
	// The link to English sets the lang cookie, which wins over the header.
	if err := chromedp.Do(ctx, chromedp.Click(`footer.langs a[hreflang=en]`), chromedp.WaitVisible(`button[name=decision][value=allow]`)); err != nil {
		t.Fatal(err)
	}
	if s := text(); !strings.Contains(s, "asks for access") || !strings.Contains(s, "Access your photos") {
		t.Fatalf("after choosing English: %q", s)
	}
	if lang, err := chromedp.Run(ctx, chromedp.AttributeValue(`html`, "lang")); err != nil || lang.Value != "en" {
		t.Fatalf("html lang %q (%v)", lang.Value, err)
	}

	// --lang ru: the default for browsers that state no language.
	ru := newEnv(t, func(c *config.Config) { c.Lang = "ru" })
	req, _ := http.NewRequest("GET", ru.URL+"/login", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if !strings.Contains(body, `<html lang="ru">`) || !strings.Contains(body, "Пароль") {
		t.Fatalf("--lang ru, no Accept-Language: %s", body)
	}
	// The lang switch goes back only to this server.
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
		resp, err := noRedirects().Get(ru.URL + "/lang?to=en&next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Fatalf("/lang next=%q: %d to %q, want 303 to /", next, resp.StatusCode, loc)
		}
	}
}

// What a Russian-speaking person meets beyond the forms is Russian too:
// the blank page, an app's invalid request, a refusal the demo callback
// shows, a domain error, and the permissions of the authorized-apps page
// (the scopes' descriptions, not their names).
func TestErrorsAndBlankPageInRussian(t *testing.T) {
	e := newEnv(t)
	u := e.user("ivan", "")
	app := e.app(u.ID, storage.Standalone)
	if err := e.P.Consents.Grant(t.Context(), u.ID, app.ID, scope.Friends|scope.Offline, nil, true); err != nil {
		t.Fatal(err)
	}
	web := e.app(u.ID, storage.Web, e.URL+"/demo/callback")
	e.Node.Server.ServeDemo(web.ID, u.ID)
	ctx := testenv.Browser(t, chromedp.Flag("lang", "ru-RU"), chromedp.Flag("accept-lang", "ru-RU,ru"))
	text := func(path string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+path)); err != nil {
			t.Fatal(err)
		}
		s, err := chromedp.Run(ctx, chromedp.Text(`body`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		name, path    string
		want, notWant string
	}{
		{"the blank page", "/blank.html#access_token=x", "Готово", "Done"},
		{"an unknown client_id", "/authorize?client_id=999999&redirect_uri=" + url.QueryEscape(e.blank()) + "&response_type=token", "неверный client_id", "is incorrect"},
		{"an unregistered redirect_uri", "/authorize?client_id=" + fmt.Sprint(app.ID) + "&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=token", "неверный redirect_uri", "check application"},
		{"a refusal at the demo callback", "/demo/callback?error=access_denied&error_description=User+denied+your+request", "Пользователь отклонил ваш запрос", "denied"},
	} {
		if s := text(c.path); !strings.Contains(s, c.want) || strings.Contains(s, c.notWant) {
			t.Errorf("%s in Russian: %q, want %q and not %q", c.name, s, c.want, c.notWant)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/login?next=/settings/apps"), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "ivan"), chromedp.SendKeys(`input[name=password]`, "password-ivan"),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`table.authorized`)); err != nil {
		t.Fatal(err)
	}
	perms, err := chromedp.Run(ctx, chromedp.Text(`table.authorized tbody`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(perms, "Доступ к списку друзей") || !strings.Contains(perms, "Доступ в любое время") || strings.Contains(perms, "friends") {
		t.Errorf("the authorized apps' permissions in Russian: %q, want the scopes' descriptions", perms)
	}
	testenv.Screenshot(t, ctx, "authorized-apps-ru")
	// A domain error on a page: another person's app.
	other := e.user("olga", "")
	theirs := e.app(other.ID, storage.Web, "https://olga.example/cb")
	if s := text(fmt.Sprintf("/apps/%d", theirs.ID)); !strings.Contains(s, "Это приложение принадлежит другому разработчику") {
		t.Errorf("another developer's app in Russian: %q", s)
	}
}

// At 390 px (a phone), no page is wider than the screen, and every link of
// the header is on it: the tables of authorized apps and of a community's
// API usage, long names, the demo callback's code.
func TestMobileLayoutAt390px(t *testing.T) {
	e := newEnv(t)
	u := e.user("marta", "")
	ctx0 := t.Context()
	var app platform.AppView
	for range 3 {
		app = e.app(u.ID, storage.Standalone)
		if err := e.P.Consents.Grant(ctx0, u.ID, app.ID, scope.Friends|scope.Photos|scope.Email|scope.Wall, nil, true); err != nil {
			t.Fatal(err)
		}
	}
	web := e.app(u.ID, storage.Web, e.URL+"/demo/callback")
	e.Node.Server.ServeDemo(web.ID, u.ID)
	api := e.api(u.ID, "https://a-rather-long-api-identifier.example/v1/orders", storage.TokenOpaque)
	c, err := e.P.Communities.CreateCommunity(ctx0, platform.Actor{UserID: u.ID}, u.ID, "A community with a rather long name for a phone")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.P.Communities.CreateCommunityToken(ctx0, platform.Actor{UserID: u.ID}, c.ID, 0, scope.CommunityMessages|scope.CommunityManage|scope.CommunityDocs); err != nil {
			t.Fatal(err)
		}
	}
	ctx := testenv.Browser(t)
	measure := func(name, path string, signedIn bool) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+path), chromedp.WaitReady(`body`)); err != nil {
			t.Fatal(err)
		}
		type measures struct {
			Page, Height float64
			Links        []string
			Off          []string
		}
		m, err := chromedp.Run(ctx, chromedp.Evaluate[measures](`(() => {
			const links = [...document.querySelectorAll('header.top a')];
			return {
				Page: document.documentElement.scrollWidth,
				Height: (document.querySelector('header.top') || {getBoundingClientRect: () => ({height: 0})}).getBoundingClientRect().height,
				Links: links.map(a => a.getAttribute('href')),
				Off: links.filter(a => { const r = a.getBoundingClientRect(); return r.width === 0 || r.left < 0 || r.right > 390; }).map(a => a.getAttribute('href')),
			};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		testenv.Screenshot(t, ctx, "mobile-390-"+name)
		if m.Page > 390 {
			t.Errorf("%s (%s) at 390 px: the page is %v px wide", name, path, m.Page)
		}
		if len(m.Off) > 0 {
			t.Errorf("%s (%s) at 390 px: header links off the screen: %v", name, path, m.Off)
		}
		if signedIn && len(m.Links) < 7 {
			t.Errorf("%s (%s): the header has %d links (%v), want every section's", name, path, len(m.Links), m.Links)
		}
		if m.Height > 130 {
			t.Errorf("%s (%s) at 390 px: the header is %v px high", name, path, m.Height)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{"login", "/login"}, {"signup", "/signup"}, {"blank", "/blank.html"}} {
		measure(p[0], p[1], false)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/login"),
		chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "marta"),
		chromedp.SendKeys(`input[name=password]`, "password-marta"),
		chromedp.Submit(`input[name=login]`),
		chromedp.WaitVisible(`header.top nav`)); err != nil {
		t.Fatal(err)
	}
	consent := e.authorize(map[string]string{"client_id": fmt.Sprint(web.ID), "redirect_uri": e.URL + "/demo/callback", "response_type": "code", "scope": "friends,photos,email,wall,offline"})
	for _, p := range [][2]string{
		{"home", "/"}, {"inbox", "/inbox"}, {"authorized-apps", "/settings/apps"}, {"profile", "/settings/profile"},
		{"security", "/account/security"}, {"add-authenticator-app", "/account/security/app"},
		{"apps", "/apps"}, {"new-app", "/apps/new"}, {"app", fmt.Sprintf("/apps/%d", app.ID)},
		{"new-api", "/apis/new"}, {"api", fmt.Sprintf("/apis/%d", api.ID)},
		{"communities", "/communities"}, {"community", fmt.Sprintf("/communities/%d", c.ID)},
		{"community-api", fmt.Sprintf("/communities/%d/api", c.ID)}, {"device", "/device"}, {"logout", "/logout"},
		{"consent", strings.TrimPrefix(consent, e.URL)},
		{"demo-callback", "/demo/callback?code=" + strings.Repeat("lka1f9fdab46f49d1dc6c986b2185dd7e22f", 3)},
	} {
		measure(p[0], p[1], p[0] != "consent" && p[0] != "demo-callback")
	}
}

// noRedirects is a client that stops at the first redirect.
func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
