package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// site is an external web site on its own loopback port (another origin).
type site struct {
	*httptest.Server
	mu   sync.Mutex
	got  []url.Values // queries received at /login/latchkey and /frame
	page string
}

func newSite(t *testing.T) *site {
	s := &site{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			s.mu.Lock()
			page := s.page
			s.mu.Unlock()
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, page)
		case "/login/latchkey", "/frame":
			s.mu.Lock()
			s.got = append(s.got, r.URL.Query())
			s.mu.Unlock()
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><p id="landed">welcome</p>`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *site) received(t *testing.T) url.Values {
	t.Helper()
	var q url.Values
	waitFor(t, 10*time.Second, "the site receiving the result", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.got) > 0 {
			q = s.got[len(s.got)-1]
			return true
		}
		return false
	})
	return q
}

// widgetPage is a page of the site embedding the widget: the callback
// writes what it receives into #out.
func widgetPage(base string, appID int64, opts string) string {
	return fmt.Sprintf(`<!doctype html><html><body><h1>Partner site</h1>
<script src="%s/js/widget.js"></script>
<div id="lk"></div><pre id="out"></pre>
<script>Latchkey.Widgets.Auth("lk", {apiId: %d, %s});</script></body></html>`, base, appID, opts)
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// clickInFrame clicks sel inside the first iframe of the page.
func clickInFrame(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	frames, err := chromedp.Run(ctx, chromedp.Nodes(`iframe`))
	if err != nil || len(frames) == 0 {
		t.Fatalf("no iframe: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(sel, chromedp.FromNode(frames[0])), chromedp.Click(sel, chromedp.FromNode(frames[0]))); err != nil {
		t.Fatalf("click %s in the iframe: %v", sel, err)
	}
}

func logInAndAllow(t *testing.T, ctx context.Context, login string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, login), chromedp.SendKeys(`input[name=password]`, "password-"+login),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`button[value=allow]`), chromedp.Click(`button[value=allow]`)); err != nil {
		t.Fatalf("log in and allow: %v", err)
	}
}

func TestBrowserWidgetCallbackAndRedirect(t *testing.T) {
	e := newEnv(t)
	dev := e.user("dev", "")
	e.user("wendy", "")
	e.user("walt", "")
	partner := newSite(t)
	app := e.app(dev.ID, storage.Web, partner.URL+"/login/latchkey")

	t.Run("callback", func(t *testing.T) {
		partner.page = widgetPage(e.URL, app.ID, `onAuth: function (u) { document.getElementById("out").textContent = JSON.stringify(u); }`)
		ctx := testenv.Browser(t)
		if err := chromedp.Do(ctx, chromedp.Navigate(partner.URL+"/")); err != nil {
			t.Fatal(err)
		}
		popupCh := chromedp.WaitNewTarget(ctx, func(i *target.Info) bool { return strings.HasPrefix(i.URL, e.URL) })
		clickInFrame(t, ctx, `#lk-login`)
		var popupID target.ID
		select {
		case popupID = <-popupCh:
		case <-time.After(10 * time.Second):
			t.Fatal("the widget opened no Latchkey window")
		}
		popup, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(popupID))
		defer cancel()
		logInAndAllow(t, popup, "wendy")

		var raw string
		waitFor(t, 10*time.Second, "the site's callback", func() bool {
			raw, _ = chromedp.Run(ctx, chromedp.Text(`#out`))
			return raw != ""
		})
		testenv.Screenshot(t, ctx, "widget-partner-site")
		var u map[string]string
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			t.Fatalf("callback got %q", raw)
		}
		// The site verifies the hash with the app secret.
		if u["first_name"] != "Wendy" || u["last_name"] != "Tester" || !strings.Contains(u["photo"], "/avatar/") ||
			u["hash"] != md5hex(fmt.Sprint(app.ID)+u["uid"]+app.ClientSecret) {
			t.Fatalf("callback data %v does not verify", u)
		}
	})

	t.Run("redirect", func(t *testing.T) {
		partner.page = widgetPage(e.URL, app.ID, fmt.Sprintf(`authUrl: %q`, partner.URL+"/login/latchkey"))
		ctx := testenv.Browser(t)
		if err := chromedp.Do(ctx, chromedp.Navigate(partner.URL+"/")); err != nil {
			t.Fatal(err)
		}
		clickInFrame(t, ctx, `#lk-login`)
		logInAndAllow(t, ctx, "walt")
		if err := chromedp.Do(ctx, chromedp.WaitVisible(`#landed`)); err != nil {
			t.Fatal(err)
		}
		q := partner.received(t)
		if q.Get("first_name") != "Walt" || q.Get("hash") != md5hex(fmt.Sprint(app.ID)+q.Get("uid")+app.ClientSecret) {
			t.Fatalf("authUrl received %v, which does not verify", q)
		}
	})
}

// The widget renders only on the app's registered origins: the server
// refuses another origin, and CSP frame-ancestors stops a site that lies
// about its origin.
func TestWidgetRefusesUnregisteredOrigins(t *testing.T) {
	e := newEnv(t)
	dev := e.user("dev", "")
	partner := newSite(t)
	stranger := newSite(t)
	app := e.app(dev.ID, storage.Web, partner.URL+"/login/latchkey")
	button := func(origin string) *http.Response {
		resp, err := http.Get(e.URL + "/widget/button?" + url.Values{"app_id": {fmt.Sprint(app.ID)}, "origin": {origin}, "mode": {"callback"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := button(partner.URL)
	if ok.StatusCode != 200 || !strings.Contains(ok.Header.Get("Content-Security-Policy"), "frame-ancestors "+partner.URL+";") || ok.Header.Get("X-Frame-Options") != "" {
		t.Fatalf("registered origin: %d, CSP %q, XFO %q", ok.StatusCode, ok.Header.Get("Content-Security-Policy"), ok.Header.Get("X-Frame-Options"))
	}
	refused := button(stranger.URL)
	if refused.StatusCode != 403 || !strings.Contains(refused.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("unregistered origin: %d, CSP %q", refused.StatusCode, refused.Header.Get("Content-Security-Policy"))
	}
	// In a browser: the stranger embeds the widget honestly, and then lies
	// (a hand-made iframe claiming the partner's origin). No button either way.
	stranger.page = widgetPage(e.URL, app.ID, `onAuth: function () {}`) +
		fmt.Sprintf(`<iframe id="liar" src="%s/widget/button?app_id=%d&origin=%s&mode=callback"></iframe>`, e.URL, app.ID, url.QueryEscape(partner.URL))
	ctx := testenv.Browser(t)
	// Ready when the page and both frames have stopped loading (a frame
	// the browser blocks stops loading with its error page).
	var mu sync.Mutex
	stopped := map[cdp.FrameID]bool{}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventFrameStoppedLoading); ok {
			mu.Lock()
			stopped[e.FrameID] = true
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(stranger.URL+"/"), chromedp.WaitReady(`#liar`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the page and both frames loaded or blocked", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(stopped) >= 3
	})
	frames, err := chromedp.Run(ctx, chromedp.Nodes(`#lk iframe, #liar`))
	if err != nil || len(frames) != 2 {
		t.Fatalf("frames: %d, %v", len(frames), err)
	}
	for i, f := range frames {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		nodes, _ := chromedp.Run(qctx, chromedp.Nodes(`#lk-login`, chromedp.FromNode(f), chromedp.AtLeast(0)))
		cancel()
		if len(nodes) > 0 {
			t.Fatalf("frame %d rendered the login button on an unregistered site", i)
		}
	}
	testenv.Screenshot(t, ctx, "widget-refused")
}

// An iframe app: consent on first launch, then the iframe gets launch
// parameters whose auth_key and sign verify and whose token works; removing
// access in the settings makes the token fail with error 5; a notification
// the app sends appears in the inbox.
func TestBrowserIFrameAppSettingsAndInbox(t *testing.T) {
	e := newEnv(t)
	dev := e.user("dev", "")
	e.user("ivan", "")
	appSite := newSite(t)
	a, err := e.P.Apps.CreateApp(context.Background(), platform.CLI, platform.NewApp{OwnerID: dev.ID, Title: "Puzzle game", Type: storage.IFrame,
		IFrameURL: appSite.URL + "/frame", IFrameScope: scope.Friends | scope.Notify})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Browser(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 800), chromedp.Navigate(fmt.Sprintf("%s/app%d", e.URL, a.ID))); err != nil {
		t.Fatal(err)
	}
	logInAndAllow(t, ctx, "ivan")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`iframe.app-frame`)); err != nil {
		t.Fatal(err)
	}
	q := appSite.received(t)
	testenv.Screenshot(t, ctx, "iframe-app")

	viewer := q.Get("viewer_id")
	if q.Get("api_id") != fmt.Sprint(a.ID) || q.Get("user_id") != viewer || q.Get("api_settings") != fmt.Sprint(int64(scope.Friends|scope.Notify)) {
		t.Fatalf("launch parameters: %v", q)
	}
	if q.Get("auth_key") != md5hex(fmt.Sprintf("%d_%s_%s", a.ID, viewer, a.ClientSecret)) {
		t.Fatal("auth_key does not verify")
	}
	vk := url.Values{}
	for k, v := range q {
		if strings.HasPrefix(k, "vk_") {
			vk[k] = v
		}
	}
	mac := hmac.New(sha256.New, []byte(a.ClientSecret))
	mac.Write([]byte(vk.Encode()))
	if q.Get("sign") != base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) || vk.Get("vk_user_id") != viewer || vk.Get("vk_app_id") != fmt.Sprint(a.ID) {
		t.Fatalf("sign does not verify: %v", q)
	}
	tok := q.Get("access_token")
	m := e.call("users.get", tok, nil)
	if r, ok := m["response"].([]any); !ok || r[0].(map[string]any)["first_name"] != "Ivan" {
		t.Fatalf("users.get with the launch token: %v", m)
	}

	// The app notifies the user; the inbox shows it, new, then read.
	e.Clock.Advance(time.Second)
	if m := e.call("secure.sendNotification", a.ServiceToken, map[string]string{"user_id": viewer, "message": "Your move in Puzzle game"}); jsonString(m["response"]) != "["+viewer+"]" {
		t.Fatalf("sendNotification: %v", m)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/inbox"), chromedp.WaitVisible(`ul.inbox`)); err != nil {
		t.Fatal(err)
	}
	inbox, _ := chromedp.Run(ctx, chromedp.Text(`ul.inbox`))
	if !strings.Contains(inbox, "Puzzle game") || !strings.Contains(inbox, "Your move in Puzzle game") || !strings.Contains(strings.ToLower(inbox), "new") {
		t.Fatalf("inbox: %q", inbox)
	}
	testenv.Screenshot(t, ctx, "inbox")
	if notes, _ := e.Store.ListNotifications(context.Background(), mustInt(t, viewer)); len(notes) != 1 || notes[0].ReadAt.IsZero() {
		t.Fatal("the notification was not marked read after being shown")
	}

	// Remove access on the settings page: the token fails with error 5.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/settings/apps"), chromedp.WaitVisible(`table.authorized`)); err != nil {
		t.Fatal(err)
	}
	listed, _ := chromedp.Run(ctx, chromedp.Text(`table.authorized`))
	if !strings.Contains(listed, "Puzzle game") || !strings.Contains(listed, "friends") {
		t.Fatalf("authorized apps: %q", listed)
	}
	testenv.Screenshot(t, ctx, "authorized-apps")
	if err := chromedp.Do(ctx, chromedp.Click(`table.authorized button.danger`), chromedp.WaitVisible(`p.notice`)); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Second)
	code, msg := apiError(e.call("users.get", tok, nil))
	if code != 5 || msg != "User authorization failed: user revoke access for this token." {
		t.Fatalf("after removing access: %d %q", code, msg)
	}
	// Next launch asks again.
	if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("%s/app%d", e.URL, a.ID)), chromedp.WaitVisible(`button[value=allow]`)); err != nil {
		t.Fatalf("the dialog did not come back: %v", err)
	}
}
