package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// golang.org/x/oauth2's TokenSource refreshes an expired token and gets a
// new refresh token; the spent one is refused afterwards, and presenting it
// revokes the grant: the new access token stops working at the API.
func TestRefreshWithOAuth2Client(t *testing.T) {
	onBothBackends(t, testRefreshWithOAuth2Client, fastAPI)
}

func testRefreshWithOAuth2Client(t *testing.T, e *env) {
	u := e.user("rita", "")
	redirect := "https://rita.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	conf := &oauth2.Config{ClientID: fmt.Sprint(app.ID), ClientSecret: app.ClientSecret, RedirectURL: redirect, Scopes: []string{"friends"},
		Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/access_token", AuthStyle: oauth2.AuthStyleInHeader}}
	ctx := context.Background()
	tok, err := conf.Exchange(ctx, obtainCode(t, e, fmt.Sprint(app.ID), redirect, "rita", nil))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || !strings.HasPrefix(tok.RefreshToken, "lkr1") || tok.Expiry.IsZero() {
		t.Fatalf("code exchange: refresh token %q, expiry %v; want an lkr1 refresh token and an expiry", tok.RefreshToken, tok.Expiry)
	}
	first := *tok
	// Twelve hours on, the access token has expired: the TokenSource refreshes.
	e.Clock.Advance(13 * time.Hour)
	tok.Expiry = time.Now().Add(-time.Minute) // the client's own clock sees it expired too
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == first.AccessToken || fresh.RefreshToken == "" || fresh.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh gave access %q refresh %q; want both new", fresh.AccessToken, fresh.RefreshToken)
	}
	if code, _ := apiError(e.call("account.getAppPermissions", fresh.AccessToken, nil)); code != 0 {
		t.Fatalf("the refreshed token at the API: error %d", code)
	}
	if code, _ := apiError(e.call("account.getAppPermissions", first.AccessToken, nil)); code != 5 {
		t.Fatalf("the expired first token at the API: error %d, want 5", code)
	}

	// The spent refresh token again: refused, and the grant is revoked.
	status, m := e.postForm("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, fmt.Sprint(app.ID), app.ClientSecret)
	if status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("a spent refresh token: %d %v, want 400 invalid_grant", status, m)
	}
	if code, _ := apiError(e.call("account.getAppPermissions", fresh.AccessToken, nil)); code != 5 {
		t.Fatalf("after the reuse, the grant's access token: error %d, want 5", code)
	}
	status, m = e.postForm("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fresh.RefreshToken}}, fmt.Sprint(app.ID), app.ClientSecret)
	if status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("the grant's latest refresh token after the reuse: %d %v, want invalid_grant", status, m)
	}
}

// Six refreshes with one token at once: one spends it, the five others
// are reuses (invalid_grant, never a 500), and a reuse revokes the grant.
// The one that spent it answers with the next pair only if that was stored
// before the grant was revoked; either way nothing of the grant works
// afterwards (no live chain for whoever holds a copy).
func TestConcurrentRefreshesOneWins(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		u := e.user("cora", "")
		redirect := "https://cora.example/cb"
		app := e.app(u.ID, storage.Web, redirect)
		id := fmt.Sprint(app.ID)
		_, m := e.postForm("/access_token", url.Values{"code": {obtainCode(t, e, id, redirect, "cora", nil)}, "redirect_uri": {redirect}}, id, app.ClientSecret)
		rt, _ := m["refresh_token"].(string)
		if rt == "" {
			t.Fatalf("no refresh token: %v", m)
		}
		var wg sync.WaitGroup
		statuses := make([]int, 6)
		answers := make([]map[string]any, 6)
		for i := range statuses {
			wg.Go(func() {
				statuses[i], answers[i] = e.postForm("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, app.ClientSecret)
			})
		}
		wg.Wait()
		wins := 0
		for i, s := range statuses {
			switch s {
			case 200:
				wins++
				if code, _ := apiError(e.call("account.getAppPermissions", answers[i]["access_token"].(string), nil)); code != 5 {
					t.Errorf("the winner's access token after the reuses: error %d, want 5 (the grant is revoked)", code)
				}
				if s, _ := e.postForm("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {answers[i]["refresh_token"].(string)}}, id, app.ClientSecret); s != 400 {
					t.Errorf("the winner's refresh token after the reuses: %d, want 400", s)
				}
			case 400:
			default:
				t.Fatalf("a concurrent refresh answered %d", s)
			}
		}
		if wins > 1 {
			t.Fatalf("%d of %d concurrent refreshes won, want at most 1", wins, len(statuses))
		}
	})
}

// Within --refresh-grace of its first use, a spent refresh token is a
// retry: a new pair, nothing revoked. Past it, a reuse.
func TestRefreshGraceAllowsARetry(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.RefreshGrace = 10 * time.Second })
	u := e.user("gus", "")
	redirect := "https://gus.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	id := fmt.Sprint(app.ID)
	_, m := e.postForm("/access_token", url.Values{"code": {obtainCode(t, e, id, redirect, "gus", nil)}, "redirect_uri": {redirect}}, id, app.ClientSecret)
	rt := m["refresh_token"].(string)
	refresh := func() (int, map[string]any) {
		return e.postForm("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, app.ClientSecret)
	}
	if s, m := refresh(); s != 200 {
		t.Fatalf("first refresh: %d %v", s, m)
	}
	e.Clock.Advance(5 * time.Second)
	s, retry := refresh()
	if s != 200 {
		t.Fatalf("a retry within the grace period: %d %v, want a new pair", s, retry)
	}
	if code, _ := apiError(e.call("account.getAppPermissions", retry["access_token"].(string), nil)); code != 0 {
		t.Fatalf("the retry's token: error %d", code)
	}
	e.Clock.Advance(10 * time.Second)
	if s, _ := refresh(); s != 400 {
		t.Fatalf("a reuse past the grace period: %d, want 400", s)
	}
	if code, _ := apiError(e.call("account.getAppPermissions", retry["access_token"].(string), nil)); code != 5 {
		t.Fatalf("after the reuse the grant's token: error %d, want 5", code)
	}
}

// A standalone app exchanges and refreshes with PKCE and no secret, through
// a loopback redirect on a port chosen when it runs (RFC 8252); a web app
// without its secret is refused.
func TestPublicClientLoopbackCodeAndRefresh(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		u := e.user("nico", "")
		native := e.app(u.ID, storage.Standalone, "http://127.0.0.1/callback")
		web := e.app(u.ID, storage.Web, "https://web.example/cb")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan url.Values, 1)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.URL.Query(); w.Write([]byte("ok")) })}
		go srv.Serve(ln)
		defer srv.Close()
		redirect := "http://" + ln.Addr().String() + "/callback"

		conf := &oauth2.Config{ClientID: fmt.Sprint(native.ID), RedirectURL: redirect, Scopes: []string{"friends"},
			Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/access_token", AuthStyle: oauth2.AuthStyleInParams}}
		verifier := oauth2.GenerateVerifier()
		b := e.browser()
		b.get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		to := b.login("nico", "password-nico")
		if to == "" {
			to = b.approve()
		}
		if !strings.HasPrefix(to, redirect+"?") {
			t.Fatalf("authorize sent the browser to %q, want the loopback redirect on its port", to)
		}
		resp, err := http.Get(to)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		q := <-got
		if q.Get("iss") != e.URL {
			t.Fatalf("the answer's iss = %q, want %q (RFC 9207)", q.Get("iss"), e.URL)
		}
		ctx := context.Background()
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("public exchange: %v", err)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for the public client")
		}
		tok.Expiry = time.Now().Add(-time.Minute)
		fresh, err := conf.TokenSource(ctx, tok).Token()
		if err != nil || fresh.AccessToken == tok.AccessToken {
			t.Fatalf("public refresh: %v", err)
		}
		// A port is fine, another path or host is not.
		for _, bad := range []string{"http://127.0.0.1:8080/other", "http://localhost:8080/callback", "http://[::1]:8080/callback", "https://127.0.0.1:8080/callback"} {
			b := e.browser()
			b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(native.ID), "redirect_uri": bad}))
			if b.status != 400 {
				t.Errorf("redirect_uri %s: %d, want the error page", bad, b.status)
			}
		}
		// A web app always authenticates; a public client gets no service token.
		status, m := e.postForm("/access_token", url.Values{"client_id": {fmt.Sprint(web.ID)}, "code": {"x"}}, "", "")
		if status != 401 || m["error"] != "invalid_client" {
			t.Fatalf("a web app without its secret: %d %v, want 401 invalid_client", status, m)
		}
		status, m = e.postForm("/access_token", url.Values{"client_id": {fmt.Sprint(native.ID)}, "grant_type": {"client_credentials"}}, "", "")
		if status != 401 || m["error"] != "invalid_client" {
			t.Fatalf("client credentials without a secret: %d %v, want 401", status, m)
		}
	})
}

// Revoking a refresh token (RFC 7009) ends its grant; "Remove access" ends
// every grant of the user and app: their refresh tokens stop working.
func TestRefreshTokensDieWithTheirGrant(t *testing.T) {
	e := newEnv(t, fastAPI)
	u := e.user("rene", "")
	redirect := "https://rene.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	id := fmt.Sprint(app.ID)
	grant := func() (access, refresh string) {
		_, m := e.postForm("/access_token", url.Values{"code": {obtainCode(t, e, id, redirect, "rene", nil)}, "redirect_uri": {redirect}}, id, app.ClientSecret)
		return m["access_token"].(string), m["refresh_token"].(string)
	}
	refreshes := func(rt string) bool {
		s, _ := e.postForm("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, app.ClientSecret)
		return s == 200
	}
	access, rt := grant()
	if s, _ := e.postForm("/oauth/revoke", url.Values{"token": {rt}}, id, app.ClientSecret); s != 200 {
		t.Fatalf("revoke: %d", s)
	}
	if refreshes(rt) {
		t.Fatal("a revoked refresh token still refreshes")
	}
	if code, _ := apiError(e.call("account.getAppPermissions", access, nil)); code != 5 {
		t.Fatalf("the grant's access token after revoking its refresh token: error %d, want 5", code)
	}
	_, rt = grant()
	if err := e.P.Tokens.RemoveAppAccess(t.Context(), platform.Actor{UserID: u.ID}, u.ID, app.ID); err != nil {
		t.Fatal(err)
	}
	if refreshes(rt) {
		t.Fatal("after Remove access the refresh token still refreshes")
	}
}

// Token exchange (RFC 8693): an app's server trades a user token for a
// narrower one, never a broader one, and the new token dies with the
// original's grant.
func TestTokenExchangeNarrows(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		u := e.user("xena", "")
		redirect := "https://xena.example/cb"
		app := e.app(u.ID, storage.Web, redirect)
		other := e.app(u.ID, storage.Web, "https://other.example/cb")
		id := fmt.Sprint(app.ID)
		code := obtainCode(t, e, id, redirect, "xena", map[string]string{"scope": "friends,photos"})
		_, m := e.postForm("/access_token", url.Values{"code": {code}, "redirect_uri": {redirect}}, id, app.ClientSecret)
		subject, refresh := m["access_token"].(string), m["refresh_token"].(string)
		exchange := func(client string, secret string, extra url.Values) (int, map[string]any) {
			vals := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
			for k, v := range extra {
				vals[k] = v
			}
			return e.postForm("/access_token", vals, client, secret)
		}
		status, m := exchange(id, app.ClientSecret, url.Values{"scope": {"friends"}})
		narrow, _ := m["access_token"].(string)
		if status != 200 || narrow == "" || m["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || m["scope"] != "friends" {
			t.Fatalf("exchange: %d %v", status, m)
		}
		if exp, _ := m["expires_in"].(float64); exp <= 0 || exp > 43200 {
			t.Fatalf("exchanged lifetime %v, want no longer than the original's", m["expires_in"])
		}
		perms := e.call("account.getAppPermissions", narrow, nil)
		if perms["response"] != float64(2) {
			t.Fatalf("the narrow token's permissions: %v, want friends (2) only", perms)
		}
		for name, c := range map[string]struct {
			client, secret string
			extra          url.Values
			status         int
			err            string
		}{
			"widening":                   {id, app.ClientSecret, url.Values{"scope": {"friends,photos,messages"}}, 400, "invalid_scope"},
			"another app's token":        {fmt.Sprint(other.ID), other.ClientSecret, nil, 400, "invalid_grant"},
			"without the app's secret":   {id, "", nil, 401, "invalid_client"},
			"another audience":           {id, app.ClientSecret, url.Values{"audience": {fmt.Sprint(other.ID)}}, 400, "invalid_target"},
			"a wrong subject_token_type": {id, app.ClientSecret, url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}, 400, "invalid_request"},
		} {
			if status, m := exchange(c.client, c.secret, c.extra); status != c.status || m["error"] != c.err {
				t.Errorf("%s: %d %v, want %d %s", name, status, m, c.status, c.err)
			}
		}
		// Revoking the grant (the refresh token) takes the exchanged token too.
		if s, _ := e.postForm("/oauth/revoke", url.Values{"token": {refresh}}, id, app.ClientSecret); s != 200 {
			t.Fatalf("revoke: %d", s)
		}
		if code, _ := apiError(e.call("account.getAppPermissions", narrow, nil)); code != 5 {
			t.Fatalf("the exchanged token after its grant was revoked: error %d, want 5", code)
		}
	}, fastAPI)
}
