package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// RP-Initiated Logout in Chromium: with an id_token_hint and a registered
// post_logout_redirect_uri the browser lands there with state and the
// session is over; an unregistered URI is refused; without a hint the
// person confirms first. The metadata names the endpoint.
func TestBrowserRPInitiatedLogout(t *testing.T) {
	e := newEnv(t)
	dev := e.user("rpdev", "")
	person := e.user("leaver", "")
	bye := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<!doctype html><title>bye</title><p id=bye>bye %s</p>", r.URL.Query().Get("state"))
	}))
	t.Cleanup(bye.Close)
	redirect := "https://rp.example/cb"
	app := e.app(dev.ID, storage.Web, redirect)
	if _, err := e.P.Apps.SetPostLogoutRedirectURIs(t.Context(), platform.CLI, app.ID, []string{bye.URL + "/bye"}); err != nil {
		t.Fatal(err)
	}
	_, meta := e.getJSON(e.URL + "/.well-known/openid-configuration")
	if meta["end_session_endpoint"] != e.URL+"/oauth/logout" {
		t.Fatalf("end_session_endpoint = %v", meta["end_session_endpoint"])
	}
	id := fmt.Sprint(app.ID)
	code := obtainCode(t, e, id, redirect, person.Login, map[string]string{"scope": "openid"})
	status, tok := e.postForm("/access_token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}, id, app.ClientSecret)
	hint, _ := tok["id_token"].(string)
	if status != 200 || hint == "" {
		t.Fatalf("an id_token: %d %v", status, tok)
	}

	ctx := testenv.Browser(t)
	signIn := func() {
		t.Helper()
		e.Clock.Advance(time.Second) // a session after the last sign-out
		if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/login"), chromedp.WaitVisible(`input[name=login]`),
			chromedp.SendKeys(`input[name=login]`, person.Login), chromedp.SendKeys(`input[name=password]`, "password-"+person.Login),
			chromedp.Submit(`input[name=login]`), chromedp.WaitNotPresent(`input[name=password]`)); err != nil {
			t.Fatal(err)
		}
	}
	signedOut := func() bool {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/settings/apps"), chromedp.WaitReady(`body`)); err != nil {
			t.Fatal(err)
		}
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(loc, "/login")
	}
	logout := func(params url.Values) string {
		return e.URL + "/oauth/logout?" + params.Encode()
	}

	// A hint and a registered URI: straight there, with state.
	signIn()
	if signedOut() {
		t.Fatal("not signed in")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(logout(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye.URL + "/bye"}, "state": {"s-42"}})),
		chromedp.WaitVisible(`#bye`)); err != nil {
		t.Fatal(err)
	}
	if text, _ := chromedp.Run(ctx, chromedp.Text(`#bye`)); text != "bye s-42" {
		t.Fatalf("the post-logout page got %q", text)
	}
	if !signedOut() {
		t.Fatal("the session lives on after RP-Initiated Logout")
	}

	// An unregistered URI is refused, and nothing ends.
	signIn()
	if err := chromedp.Do(ctx, chromedp.Navigate(logout(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}})),
		chromedp.WaitVisible(`main`)); err != nil {
		t.Fatal(err)
	}
	if text, _ := chromedp.Run(ctx, chromedp.Text(`main`)); !strings.Contains(text, "not one the app registered") {
		t.Fatalf("an unregistered post_logout_redirect_uri: %q", text)
	}
	if signedOut() {
		t.Fatal("a refused logout request ended the session")
	}

	// Without a hint the person is asked, then signed out.
	if err := chromedp.Do(ctx, chromedp.Navigate(logout(url.Values{"client_id": {id}})), chromedp.WaitVisible(`form.decision button`)); err != nil {
		t.Fatal(err)
	}
	question, _ := chromedp.Run(ctx, chromedp.Text(`main`))
	if !strings.Contains(question, app.Title) {
		t.Fatalf("the question does not name the app: %q", question)
	}
	testenv.Screenshot(t, ctx, "rp-initiated-logout")
	if signedOut() {
		t.Fatal("signed out before confirming")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(logout(url.Values{"client_id": {id}})), chromedp.WaitVisible(`form.decision button`),
		chromedp.Click(`form.decision button`), chromedp.WaitVisible(`#signed-out`)); err != nil {
		t.Fatal(err)
	}
	if text, _ := chromedp.Run(ctx, chromedp.Text(`main`)); !strings.Contains(text, "You are signed out") {
		t.Fatalf("after confirming: %q", text)
	}
	if !signedOut() {
		t.Fatal("the session lives on after confirming")
	}
}
