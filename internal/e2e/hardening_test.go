package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Text that is not valid UTF-8, or holds NUL, is refused with a clear error
// before it reaches storage, on both backends (PostgreSQL would fail the
// write, and the server would answer 500).
func TestInvalidTextIsRefusedBeforeStorage(t *testing.T) { onBothBackends(t, testInvalidText, fastAPI) }

func testInvalidText(t *testing.T, base *env) {
	e := newAPIEnvOn(t, base)
	bad := []string{"\xff\xfe", "nul\x00inside"}
	for _, text := range bad {
		for _, call := range []struct{ method, tok, param string }{
			{"messages.send", e.user, "message"},
			{"secure.sendNotification", e.service, "message"},
			{"users.get", e.user, "fields"},
		} {
			params := map[string]string{call.param: text, "random_id": "7", "peer_id": fmt.Sprint(e.bob.ID), "user_ids": fmt.Sprint(e.bob.ID)}
			if code, msg := apiError(e.call(call.method, call.tok, params)); code != 100 || !strings.Contains(msg, call.param) {
				t.Errorf("%s with %s=%q: error %d %q, want 100 naming the parameter", call.method, call.param, text, code, msg)
			}
		}
	}

	// POST /login with a login that is not text: the usual wrong-login answer.
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("\xff", "whatever-password")
	if b.status != http.StatusUnauthorized || !strings.Contains(b.page, "Wrong login or password") {
		t.Fatalf("login=%%ff: %d, want 401 wrong login or password", b.status)
	}

	// The console and the community pages refuse such names with the form.
	b.login("alice", "password-alice")
	for _, text := range bad {
		b.get(e.URL + "/apps/new")
		b.submit(b.formWith("title"), map[string]string{"title": text, "type": "web"})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "Title") {
			t.Errorf("app title %q: %d, want 422 naming the title", text, b.status)
		}
		b.get(e.URL + "/apps/new")
		b.submit(b.formWith("title"), map[string]string{"title": "Fine", "type": "web", "description": text})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "Description") {
			t.Errorf("app description %q: %d, want 422 naming the description", text, b.status)
		}
		b.get(e.URL + "/communities")
		b.submit(b.formWith("name"), map[string]string{"name": text})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "Name") {
			t.Errorf("community name %q: %d, want 422 naming the name", text, b.status)
		}
		b.get(e.URL + fmt.Sprintf("/communities/%d", e.community.ID))
		b.submit(b.formWith("login"), map[string]string{"login": text})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "There is no user with login") {
			t.Errorf("add-admin login %q: %d, want 422 no such user", text, b.status)
		}
	}
	apps, err := e.P.Apps.AppsOf(t.Context(), e.alice.ID)
	if err != nil || len(apps) != 1 {
		t.Fatalf("after refused creations alice has %d apps (%v), want her first one only", len(apps), err)
	}
}

// Two apps of one user may pick the same random_id: each message is sent.
func TestRandomIDDeduplicatesPerApp(t *testing.T) {
	e := newAPIEnv(t)
	other := e.issue(storage.Token{Kind: token.User, AppID: e.other.ID, UserID: e.alice.ID, Scope: scope.Messages, Flow: storage.FlowImplicit}, time.Hour)
	first := e.call("messages.send", e.user, map[string]string{"peer_id": fmt.Sprint(e.bob.ID), "message": "from app A", "random_id": "99"})
	again := e.call("messages.send", e.user, map[string]string{"peer_id": fmt.Sprint(e.bob.ID), "message": "from app A again", "random_id": "99"})
	fromB := e.call("messages.send", other, map[string]string{"peer_id": fmt.Sprint(e.bob.ID), "message": "from app B", "random_id": "99"})
	if first["response"] == nil || again["response"] != first["response"] {
		t.Fatalf("the same app's retry: %v then %v, want the same message id", first, again)
	}
	if fromB["response"] == nil || fromB["response"] == first["response"] {
		t.Fatalf("another app's message with the same random_id: %v, want a message of its own (first %v)", fromB, first["response"])
	}
	items, err := e.P.Messages.Inbox(t.Context(), e.bob.ID)
	if err != nil || len(items) != 2 {
		t.Fatalf("bob's inbox has %d items (%v), want both apps' messages", len(items), err)
	}
}

// A burst of wrong passwords is counted before any is checked: of 100 sent
// at once, exactly 5 are checked, and the right password after them is
// refused until the window ends.
func TestLoginThrottleHoldsUnderABurst(t *testing.T) {
	e := newEnv(t)
	e.user("vic", "")
	const n = 100
	browsers := make([]*browser, n)
	forms := make([]form, n)
	for i := range n {
		browsers[i] = e.browser()
		browsers[i].get(e.URL + "/login")
		forms[i] = browsers[i].formWith("password")
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			browsers[i].submit(forms[i], map[string]string{"login": "vic", "password": "wrong-password"})
		})
	}
	close(start)
	wg.Wait()
	checked := 0
	for _, b := range browsers {
		switch b.status {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("a burst attempt answered %d", b.status)
		}
	}
	if checked != 5 {
		t.Fatalf("%d of %d parallel wrong passwords were checked, want exactly 5", checked, n)
	}
	b := e.browser()
	b.get(e.URL + "/login")
	if to := b.login("vic", "password-vic"); to != "" || b.status != http.StatusTooManyRequests {
		t.Fatalf("the right password after the burst: %d, want 429", b.status)
	}
}

// Sign-ups are counted before the account is made: 30 at once from one
// address make 20 accounts, and attempts with a taken login count too.
func TestSignupThrottleHoldsUnderABurst(t *testing.T) {
	e := newEnv(t)
	const n = 30
	var wg sync.WaitGroup
	start := make(chan struct{})
	browsers := make([]*browser, n)
	forms := make([]form, n)
	for i := range n {
		browsers[i] = e.browser()
		browsers[i].get(e.URL + "/signup")
		forms[i] = browsers[i].formWith("password")
	}
	for i := range n {
		wg.Go(func() {
			<-start
			login := fmt.Sprintf("burst%02d", i)
			if i%3 == 0 {
				login = "burst00" // taken, but still an attempt
			}
			browsers[i].submit(forms[i], map[string]string{"login": login, "password": "long-enough-1"})
		})
	}
	close(start)
	wg.Wait()
	refused := 0
	for _, b := range browsers {
		if b.status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused != n-20 {
		t.Fatalf("%d of %d parallel sign-ups were refused by the throttle, want %d", refused, n, n-20)
	}
}

// Strangers who lock a login out with wrong passwords do not lock out its
// owner on a browser the owner logged in from before (a device cookie);
// strangers, and the owner on a new browser, stay throttled.
func TestLockoutSparesTheOwnersDevice(t *testing.T) {
	e := newEnv(t)
	e.user("olga", "")
	own := e.browser()
	own.get(e.URL + "/login")
	if to := own.login("olga", "password-olga"); to != "" || !strings.Contains(own.page, "Hello, Olga") {
		t.Fatalf("first login: %d", own.status)
	}
	own.get(e.URL + "/logout")
	own.submit(own.formWith("csrf"), nil)
	e.Clock.Advance(time.Second) // sessions issued after the logout count

	stranger := e.browser()
	for range 5 {
		stranger.get(e.URL + "/login")
		stranger.login("olga", "guess-password")
	}
	stranger.get(e.URL + "/login")
	if stranger.login("olga", "password-olga"); stranger.status != http.StatusTooManyRequests {
		t.Fatalf("a stranger with the right password after the lockout: %d, want 429", stranger.status)
	}
	fresh := e.browser()
	fresh.get(e.URL + "/login")
	if fresh.login("olga", "password-olga"); fresh.status != http.StatusTooManyRequests {
		t.Fatalf("a new browser during the lockout: %d, want 429", fresh.status)
	}
	own.get(e.URL + "/login")
	if to := own.login("olga", "password-olga"); to != "" || !strings.Contains(own.page, "Hello, Olga") {
		t.Fatalf("the owner's browser during the lockout: %d, want logged in", own.status)
	}
	// The device cookie names its login: it does not help guess another.
	e.user("pia", "")
	for range 5 {
		stranger.get(e.URL + "/login")
		stranger.login("pia", "guess-password")
	}
	own.get(e.URL + "/login")
	if own.login("pia", "password-pia"); own.status != http.StatusTooManyRequests {
		t.Fatalf("olga's browser logging in as locked-out pia: %d, want 429", own.status)
	}
}

// Opening an iframe app again hands the viewer the same live token: visits
// do not mint a token each.
func TestIFrameLaunchReusesTheLiveToken(t *testing.T) {
	e := newEnv(t)
	dev := e.user("dev", "")
	e.user("vera", "")
	a, err := e.P.Apps.CreateApp(t.Context(), platform.CLI, platform.NewApp{OwnerID: dev.ID, Title: "Game", Type: storage.IFrame,
		IFrameURL: "https://game.example/app", IFrameScope: scope.Friends})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("vera", "password-vera")
	launch := func() string {
		t.Helper()
		b.get(fmt.Sprintf("%s/app%d", e.URL, a.ID))
		if strings.Contains(b.page, "asks for access") {
			b.submit(b.formWith("decision"), nil, "decision", "allow")
		}
		src := regexp.MustCompile(`class="app-frame" src="([^"]+)"`).FindStringSubmatch(b.page)
		if src == nil {
			t.Fatalf("no iframe on the launch page: %d", b.status)
		}
		u, err := url.Parse(html.UnescapeString(src[1]))
		if err != nil {
			t.Fatal(err)
		}
		return u.Query().Get("access_token")
	}
	first, second := launch(), launch()
	if first == "" || first != second {
		t.Fatalf("two launches gave %q and %q, want the same live token", first, second)
	}
	tokens, err := e.Store.ListTokens(t.Context(), storage.TokenFilter{AppID: a.ID, Flow: storage.FlowIFrame})
	if err != nil || len(tokens) != 1 {
		t.Fatalf("%d launch tokens stored (%v), want 1", len(tokens), err)
	}
	// Past half its lifetime, the next launch gets a fresh token.
	e.Clock.Advance(13 * time.Hour)
	if third := launch(); third == first {
		t.Fatal("a token past half its lifetime was handed out again")
	}
}

// After the consent dialog's POST, the way back to the app is a 303, so no
// browser re-posts the form to the app (RFC 9700 §4.12).
func TestConsentAnswersWithSeeOther(t *testing.T) {
	e := newEnv(t)
	u := e.user("sora", "")
	app := e.app(u.ID, storage.Web, "https://sora.example/cb")
	for _, decision := range []string{"allow", "deny"} {
		b := e.browser()
		b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(app.ID), "redirect_uri": "https://sora.example/cb", "scope": "friends", "revoke": "1"}))
		b.login("sora", "password-sora")
		f := b.formWith("decision")
		vals := f.fields
		vals.Set("decision", decision)
		req, _ := http.NewRequest("POST", e.URL+f.action, strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "https://sora.example/cb?") {
			t.Fatalf("%s: %d %q, want 303 to the app", decision, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// Behind a trusted proxy the per-address login limit is per client, taken
// from X-Forwarded-For; the same header from a peer that is not a trusted
// proxy is ignored, so it cannot be used to dodge the limit.
func TestTrustedProxyAddressesThrottlePerClient(t *testing.T) {
	attempt := func(e *env, i int, forwardedFor string) int {
		// A new login each time: only the address limit applies.
		resp := proxiedLogin(t, e, fmt.Sprintf("nobody%02d", i), "wrong-password", http.Header{"X-Forwarded-For": {forwardedFor}})
		return resp.StatusCode
	}
	behind := newEnv(t, func(c *config.Config) { c.Proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	for i := range 20 {
		if s := attempt(behind, i, "203.0.113.5"); s != http.StatusUnauthorized {
			t.Fatalf("attempt %d from one client: %d", i+1, s)
		}
	}
	if s := attempt(behind, 20, "203.0.113.5"); s != http.StatusTooManyRequests {
		t.Fatalf("the 21st attempt from that client: %d, want 429", s)
	}
	if s := attempt(behind, 21, "203.0.113.6"); s != http.StatusUnauthorized {
		t.Fatalf("another client behind the same proxy: %d, want 401 (its own count)", s)
	}

	direct := newEnv(t) // no trusted proxies: the header is the client's own word
	for i := range 20 {
		attempt(direct, i, fmt.Sprintf("198.51.100.%d", i))
	}
	if s := attempt(direct, 20, "198.51.100.99"); s != http.StatusTooManyRequests {
		t.Fatalf("X-Forwarded-For from an untrusted peer changed the address: %d, want 429", s)
	}
}

// Behind a trusted proxy that says the browser came over https, the session
// and CSRF cookies are Secure; the same header from anyone else changes
// nothing.
func TestTrustedProxySchemeMakesCookiesSecure(t *testing.T) {
	login := func(e *env, proto string) []*http.Cookie {
		t.Helper()
		e.user("sam", "")
		resp := proxiedLogin(t, e, "sam", "password-sam", http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {proto}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		return resp.Cookies()
	}
	secure := func(cs []*http.Cookie, name string) bool {
		for _, c := range cs {
			if c.Name == name {
				return c.Secure
			}
		}
		t.Fatalf("no %s cookie set", name)
		return false
	}
	behind := newEnv(t, func(c *config.Config) { c.Proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	if cs := login(behind, "https"); !secure(cs, "lk_session") || !secure(cs, "lk_device") {
		t.Fatal("behind a trusted https proxy the cookies are not Secure")
	}
	if cs := login(newEnv(t), "https"); secure(cs, "lk_session") {
		t.Fatal("an untrusted peer's X-Forwarded-Proto made the cookie Secure")
	}
}

// proxiedLogin submits the login form of a new browser with the headers a
// proxy in front of the server would add, and returns the answer (its body
// closed).
func proxiedLogin(t *testing.T, e *env, login, password string, h http.Header) *http.Response {
	t.Helper()
	b := e.browser()
	b.get(e.URL + "/login")
	vals := b.formWith("password").fields
	vals.Set("login", login)
	vals.Set("password", password)
	req, _ := http.NewRequest("POST", e.URL+"/login", strings.NewReader(vals.Encode()))
	req.Header = h
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
