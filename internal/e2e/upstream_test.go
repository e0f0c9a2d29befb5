package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"latchkey/internal/storage"
)

// tamperIDTokens changes one character of the signature of every id_token
// the server answers at /access_token while on is set.
func tamperIDTokens(on *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !on.Load() || r.URL.Path != "/access_token" {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var body map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &body) == nil {
				if raw, ok := body["id_token"].(string); ok {
					b := []byte(raw)
					if b[len(b)-2] == 'A' {
						b[len(b)-2] = 'B'
					} else {
						b[len(b)-2] = 'A'
					}
					body["id_token"] = string(b)
				}
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			json.NewEncoder(w).Encode(body)
		})
	}
}

// upstreamSignIn runs a sign-in through the upstream corp: b at the
// server, ub at the upstream (logging in as login when asked); edit, when
// set, changes the request sent to the upstream. It returns b's page URL.
func upstreamSignIn(t *testing.T, b, ub *browser, start, login string, edit func(url.Values)) string {
	t.Helper()
	to := b.get(start)
	if to == "" {
		t.Fatalf("not sent to the upstream: %s %d", b.pageURL, b.status)
	}
	if edit != nil {
		u, _ := url.Parse(to)
		q := u.Query()
		edit(q)
		u.RawQuery = q.Encode()
		to = u.String()
	}
	back := ub.get(to)
	if back == "" && strings.Contains(ub.page, `name="password"`) {
		back = ub.login(login, "password-"+login)
	}
	if back == "" {
		back = ub.approve()
	}
	if back == "" {
		t.Fatalf("the upstream did not send the browser back: %s", ub.pageURL)
	}
	b.get(back)
	return b.pageURL
}

// A second Latchkey is the upstream OpenID Provider: the first sign-in
// makes a user linked to the upstream person, the second finds that user,
// a local user with the same e-mail is never linked by it, a tampered
// id_token or a wrong nonce signs nobody in, and a signed-in person links
// and unlinks an upstream account on /account/security.
func TestUpstreamOpenIDProvider(t *testing.T) {
	var tamper atomic.Bool
	up := start(t, startOptions{wrap: tamperIDTokens(&tamper)})
	e := newEnv(t, allowLoopback)
	ctx := context.Background()
	ursula := up.user("ursula", "ursula@corp.example")
	vic := up.user("vic", "")
	app := up.app(ursula.ID, storage.Web, e.URL+"/login/upstream/corp/callback")
	runCLI(t, "sqlite:"+e.DB, "upstream", "add", "--name", "corp", "--issuer", up.URL, "--client-id", fmt.Sprint(app.ID),
		"--client-secret", app.ClientSecret, "--callback-allow", "127.0.0.0/8", "--public-url", e.URL)
	ups, err := e.P.Upstreams.All(ctx)
	if err != nil || len(ups) != 1 || ups[0].RedirectURI != e.URL+"/login/upstream/corp/callback" || ups[0].ClientID != fmt.Sprint(app.ID) {
		t.Fatalf("upstreams: %+v %v", ups, err)
	}
	local := e.user("ursula", "ursula@corp.example") // the same login and e-mail, someone else

	b := e.browser()
	b.get(e.URL + "/login")
	if !strings.Contains(b.page, `href="/login/upstream/corp?next=%2f"`) || !strings.Contains(b.page, "Sign in with corp") {
		t.Fatalf("no upstream button on the login page:\n%s", b.page)
	}
	ub := up.browser()
	if at := upstreamSignIn(t, b, ub, e.URL+"/login/upstream/corp?next=%2Fsettings%2Fprofile", "ursula", nil); !strings.HasSuffix(at, "/settings/profile") {
		t.Fatalf("after the first upstream sign-in: %s %d\n%s", at, b.status, b.page)
	}
	users, err := e.Store.ListUsers(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	corp, err := e.Store.UpstreamByName(ctx, "corp")
	if err != nil {
		t.Fatal(err)
	}
	made, err := e.Store.LinkedUser(ctx, corp.ID, fmt.Sprint(ursula.ID)) // the upstream's sub
	if err != nil || made.ID == 0 || made.ID == local.ID || made.FirstName != "Ursula" || made.Email != "" || made.PasswordHash != "" || made.Login == "ursula" {
		t.Fatalf("the user made for the upstream person: %+v %v (local %d)", made, err, local.ID)
	}
	if !strings.Contains(b.page, "Ursula") {
		t.Fatal("the profile page does not show the new user")
	}

	// The second sign-in, in another browser, finds the same user.
	b2 := e.browser()
	if at := upstreamSignIn(t, b2, ub, e.URL+"/login/upstream/corp?next=%2Fsettings%2Fprofile", "ursula", nil); !strings.HasSuffix(at, "/settings/profile") {
		t.Fatalf("the second sign-in: %s", at)
	}
	if again, _ := e.Store.ListUsers(ctx, 0, 100); len(again) != len(users) {
		t.Fatalf("the second sign-in made another user: %d users, were %d", len(again), len(users))
	}

	// A wrong nonce, a tampered id_token: nobody signed in.
	for name, tc := range map[string]struct {
		edit func(url.Values)
		on   bool
	}{
		"a wrong nonce":       {edit: func(q url.Values) { q.Set("nonce", "not-the-one") }},
		"a tampered id_token": {on: true},
	} {
		tamper.Store(tc.on)
		bx := e.browser()
		at := upstreamSignIn(t, bx, ub, e.URL+"/login/upstream/corp", "ursula", tc.edit)
		tamper.Store(false)
		if bx.status != http.StatusUnauthorized || !strings.Contains(bx.page, "could not be confirmed") {
			t.Fatalf("%s: %s %d", name, at, bx.status)
		}
		if bx.get(e.URL + "/settings/profile"); !strings.Contains(bx.pageURL, "/login") {
			t.Fatalf("%s signed someone in", name)
		}
	}
	// A callback without the browser's flow is refused.
	bx := e.browser()
	bx.get(e.URL + "/login/upstream/corp/callback?state=x&code=y")
	if bx.status != http.StatusUnauthorized {
		t.Fatalf("a callback from nowhere: %d", bx.status)
	}

	// The local ursula links vic's upstream account, signs in with it, and
	// unlinks it.
	lb := e.browser()
	lb.get(e.URL + "/login")
	lb.login("ursula", "password-ursula")
	lb.get(e.URL + "/account/security")
	var link form
	for _, f := range lb.forms() {
		if strings.HasSuffix(f.action, "/upstreams/corp/link") {
			link = f
		}
	}
	to := lb.submit(link, nil)
	vb := up.browser()
	back := vb.get(to)
	if back == "" {
		back = vb.login("vic", "password-vic")
	}
	if back == "" {
		back = vb.approve()
	}
	lb.get(back)
	if !strings.Contains(lb.pageURL, "/account/security") || !strings.Contains(lb.page, "Account linked") {
		t.Fatalf("after linking: %s\n%s", lb.pageURL, lb.page)
	}
	b3 := e.browser()
	upstreamSignIn(t, b3, vb, e.URL+"/login/upstream/corp?next=%2Fsettings%2Fprofile", "vic", nil)
	if !strings.Contains(b3.page, `value="Ursula"`) && !strings.Contains(b3.page, "Ursula Tester") {
		t.Fatalf("vic's upstream account did not sign in as the local ursula:\n%s", b3.page)
	}
	lb.get(e.URL + "/account/security")
	for _, f := range lb.forms() {
		if strings.HasSuffix(f.action, "/upstreams/corp/unlink") {
			link = f
		}
	}
	lb.submit(link, nil)
	if !strings.Contains(lb.page, "Account unlinked") {
		t.Fatalf("after unlinking: %s", lb.pageURL)
	}
	_ = vic
	runCLI(t, "sqlite:"+e.DB, "upstream", "remove", "--name", "corp")
	if ups, _ := e.P.Upstreams.All(ctx); len(ups) != 0 {
		t.Fatalf("after remove: %+v", ups)
	}
	if _, err := e.Store.GetUser(ctx, made.ID); err != nil {
		t.Fatalf("the upstream's user went with it: %v", err)
	}
}
