package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// A person signs up, logs in and approves in each display layout, in a real
// headless Chromium; the app receives a working token each time.
func TestBrowserSignupLoginApproveInEveryLayout(t *testing.T) {
	e := newEnv(t)
	dev := e.user("developer", "")
	app := e.app(dev.ID, storage.Standalone)

	layouts := []struct {
		display       string
		width, height int64
		signup        bool
	}{
		{"page", 1280, 800, true},
		{"popup", 655, 450, false},
		{"mobile", 390, 844, false},
	}
	for _, l := range layouts {
		t.Run(l.display, func(t *testing.T) {
			ctx := testenv.Browser(t)
			auth := e.authorize(map[string]string{"client_id": fmt.Sprint(app.ID), "redirect_uri": e.blank(), "response_type": "token",
				"scope": "friends,photos,email", "display": l.display, "state": "st-" + l.display, "revoke": "1"})
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(l.width, l.height), chromedp.Navigate(auth), chromedp.WaitVisible(`input[name=login]`)); err != nil {
				t.Fatal(err)
			}
			if l.signup {
				if err := chromedp.Do(ctx, chromedp.Click(`a[href^="/signup"]`), chromedp.WaitVisible(`input[name=first_name]`)); err != nil {
					t.Fatal(err)
				}
				testenv.Screenshot(t, ctx, "signup-"+l.display)
				if err := chromedp.Do(ctx,
					chromedp.SendKeys(`input[name=login]`, "kate"),
					chromedp.SendKeys(`input[name=password]`, "kate-password"),
					chromedp.SendKeys(`input[name=first_name]`, "Kate"),
					chromedp.SendKeys(`input[name=last_name]`, "Lee"),
					chromedp.SendKeys(`input[name=email]`, "kate@example.com"),
					chromedp.Submit(`input[name=login]`),
				); err != nil {
					t.Fatal(err)
				}
			} else {
				testenv.Screenshot(t, ctx, "login-"+l.display)
				if err := chromedp.Do(ctx,
					chromedp.SendKeys(`input[name=login]`, "kate"),
					chromedp.SendKeys(`input[name=password]`, "kate-password"),
					chromedp.Submit(`input[name=login]`),
				); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(`button[name=decision][value=allow]`)); err != nil {
				t.Fatal(err)
			}
			consent, err := chromedp.Run(ctx, chromedp.Text(`main`))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{app.Title, "Access your photos", "See your email address", "Kate Lee"} {
				if !strings.Contains(consent, want) {
					t.Errorf("%s consent page lacks %q", l.display, want)
				}
			}
			class, err := chromedp.Run(ctx, chromedp.AttributeValue(`body`, "class"))
			if err != nil || class.Value != "display-"+l.display {
				t.Errorf("body class %q (%v), want display-%s", class.Value, err, l.display)
			}
			testenv.Screenshot(t, ctx, "consent-"+l.display)

			if err := chromedp.Do(ctx, chromedp.Click(`button[name=decision][value=allow]`), chromedp.WaitReady(`#blank`)); err != nil {
				t.Fatal(err)
			}
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(loc, e.blank()+"#") {
				t.Fatalf("after Allow the browser is at %s", loc)
			}
			u, _ := url.Parse(loc)
			f, _ := url.ParseQuery(u.Fragment)
			if f.Get("state") != "st-"+l.display || f.Get("email") != "kate@example.com" || !active(e.introspect(app, f.Get("access_token"))) {
				t.Fatalf("fragment %v: want state, email and an active token", f)
			}
		})
	}
}
