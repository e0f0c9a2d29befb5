package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"latchkey/internal/platform"
	"latchkey/internal/testenv"
)

// stashSubmit makes the page's forms keep what they would post (a passkey
// ceremony's state and answer) in sessionStorage instead of posting it.
const stashSubmit = `HTMLFormElement.prototype.submit = function () {
	sessionStorage.setItem('sent', JSON.stringify({state: this.elements.state.value, answer: this.elements.answer.value}));
}; true`

// sent is a ceremony's state and answer, as stashSubmit kept them.
type sent struct {
	State  string `json:"state"`
	Answer string `json:"answer"`
}

// postFrom posts fields to path from the page in ctx, with the page's
// CSRF token, and returns the status (0: a redirect, a success here) and
// whether the page says the passkey was not accepted.
func postFrom(t *testing.T, ctx context.Context, path string, fields map[string]string) (int, bool) {
	t.Helper()
	type result struct {
		Status  int
		Refused bool
	}
	js := fmt.Sprintf(`(() => {
		const body = new URLSearchParams(%s);
		body.set('csrf', document.querySelector('input[name=csrf]').value);
		return fetch(%q, {method: 'POST', body, redirect: 'manual', credentials: 'same-origin'})
			.then(r => r.text().then(text => ({Status: r.status, Refused: text.includes('was not accepted')})));
	})()`, jsonOf(t, fields), path)
	r, err := chromedp.Run(ctx, chromedp.Evaluate[result](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return r.Status, r.Refused
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return v
}

// Passkeys in Chromium with the DevTools virtual authenticator: one is
// added on the security page, signs in without a login name (the
// id_token, verified with go-oidc, says phr), serves as the second factor
// after a password, and stops working once removed; forged, replayed,
// another person's and another browser's answers are refused.
func TestPasskeys(t *testing.T) {
	e := start(t, startOptions{localhost: true})
	pia := e.user("pia", "")
	quinn := e.user("quinn", "")
	rp := e.oidcClientTo(pia.ID, e.blank())
	ctx := testenv.Browser(t)
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	location := func(prefix string) string {
		t.Helper()
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
			if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil && strings.HasPrefix(loc, prefix) {
				return loc
			}
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("the browser is at %s, not %s", loc, prefix)
		return ""
	}
	login := func(name string) {
		t.Helper()
		run(chromedp.Navigate(e.URL+"/login"), chromedp.WaitVisible(`input[name=login]`),
			chromedp.SendKeys(`input[name=login]`, name), chromedp.SendKeys(`input[name=password]`, "password-"+name),
			chromedp.Submit(`input[name=login]`))
	}
	logout := func() {
		t.Helper()
		run(chromedp.Navigate(e.URL+"/logout"), chromedp.WaitVisible(`main form button`), chromedp.Click(`main form button`),
			chromedp.WaitVisible(`input[name=login]`))
	}
	addPasskey := func(name string) {
		t.Helper()
		run(chromedp.Navigate(e.URL+"/account/security"), chromedp.WaitVisible(`#passkey-add`),
			chromedp.SendKeys(`form.passkey input[name=name]`, name), chromedp.Click(`#passkey-add`), chromedp.WaitVisible(`#recovery-codes`))
	}

	run(chromedp.Navigate(e.URL + "/login"))
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	authenticator, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
	if err != nil {
		t.Fatal(err)
	}

	// Pia adds a passkey, named; the page shows her recovery codes.
	login("pia")
	run(chromedp.WaitVisible(`header.top nav`))
	addPasskey("Laptop")
	testenv.Screenshot(t, ctx, "security-passkey-added")
	st, err := e.P.Factors.Status(context.Background(), pia.ID)
	if err != nil || len(st.Passkeys) != 1 || st.Passkeys[0].Name != "Laptop" || st.RecoveryLeft != platform.RecoveryCodes {
		t.Fatalf("pia's factors: %+v %v", st, err)
	}
	if !strings.Contains(text(`main`), "Laptop") {
		t.Fatal("the security page does not list the passkey")
	}
	logout()

	// Signed in with the passkey alone, through an OpenID Connect flow
	// asking for a phishing-resistant sign-in.
	run(chromedp.Navigate(rp.authorize(e, map[string]string{"acr_values": platform.ACRPhishingResistant})), chromedp.WaitVisible(`#passkey-login`))
	testenv.Screenshot(t, ctx, "login-with-passkey")
	run(chromedp.Click(`#passkey-login`), chromedp.WaitVisible(`button[name=decision][value=allow]`), chromedp.Click(`button[name=decision][value=allow]`))
	cl := rp.redeem(t, location(e.blank()))
	if cl.ACR != platform.ACRPhishingResistant || !slices.Equal(cl.AMR, []string{"hwk", "user", "mfa"}) {
		t.Fatalf("id_token after a passkey: %+v", cl)
	}
	logout()

	// An answer kept, not posted: from another browser (a session of its
	// own) it is refused; forged, refused; from this browser it signs in,
	// once.
	run(chromedp.Navigate(e.URL+"/login"), chromedp.WaitVisible(`#passkey-login`))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](stashSubmit)); err != nil {
		t.Fatal(err)
	}
	run(chromedp.Click(`#passkey-login`))
	var kept sent
	for start := time.Now(); kept.Answer == ""; time.Sleep(50 * time.Millisecond) {
		raw, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('sent') || ''`))
		if raw != "" {
			kept = decodeJSON[sent](t, raw)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the passkey answered nothing")
		}
	}
	other := e.browser()
	other.get(e.URL + "/login")
	other.submit(other.formWith("answer"), map[string]string{"state": kept.State, "answer": kept.Answer})
	if other.status != 401 || !strings.Contains(other.page, "was not accepted") {
		t.Fatalf("another browser's answer: %d", other.status)
	}
	forged := strings.Replace(kept.Answer, `"signature":"`, `"signature":"AAAA`, 1)
	if status, refused := postFrom(t, ctx, "/login/passkey", map[string]string{"state": kept.State, "answer": forged}); status != 401 || !refused {
		t.Fatalf("a forged answer: %d", status)
	}
	if status, _ := postFrom(t, ctx, "/login/passkey", map[string]string{"state": kept.State, "answer": kept.Answer}); status != 0 {
		t.Fatalf("the kept answer from its own browser: %d, want a redirect (signed in)", status)
	}
	if status, refused := postFrom(t, ctx, "/login/passkey", map[string]string{"state": kept.State, "answer": kept.Answer}); status != 401 || !refused {
		t.Fatalf("the answer replayed: %d", status)
	}
	run(chromedp.Navigate(e.URL + "/"))
	logout()

	// Quinn has a password and a passkey: the passkey is his second step.
	login("quinn")
	run(chromedp.WaitVisible(`header.top nav`))
	addPasskey("Phone")
	logout()
	rq := e.oidcClientTo(quinn.ID, e.blank())
	run(chromedp.Navigate(rq.authorize(e, nil)), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "quinn"), chromedp.SendKeys(`input[name=password]`, "password-quinn"),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`#passkey-factor`))
	// Pia's passkey cannot be quinn's second step, even for his challenge.
	piaCred := base64.RawURLEncoding.EncodeToString(st.Passkeys[0].CredentialID)
	type result struct{ Status int }
	r, err := chromedp.Run(ctx, chromedp.Evaluate[result](fmt.Sprintf(`(() => {
		const form = document.querySelector('#passkey-factor').form;
		const b64 = s => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length %% 4) %% 4)), c => c.charCodeAt(0));
		const txt = b => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
		return fetch('/login/factor/passkey/options', {method: 'POST', body: new URLSearchParams(new FormData(form))}).then(r => r.json()).then(c => {
			const o = c.options;
			o.challenge = b64(o.challenge);
			o.allowCredentials = [{type: 'public-key', id: b64(%q)}];
			return navigator.credentials.get({publicKey: o}).then(cred => {
				const answer = {id: cred.id, rawId: txt(cred.rawId), type: cred.type, clientExtensionResults: {}, response: {
					clientDataJSON: txt(cred.response.clientDataJSON), authenticatorData: txt(cred.response.authenticatorData),
					signature: txt(cred.response.signature), userHandle: txt(cred.response.userHandle)}};
				const body = new URLSearchParams(new FormData(form));
				body.set('state', c.state);
				body.set('answer', JSON.stringify(answer));
				return fetch('/login/factor/passkey', {method: 'POST', body, redirect: 'manual'}).then(r => ({Status: r.status}));
			});
		});
	})()`, piaCred), chromedp.EvalAwaitPromise))
	if err != nil || r.Status != 401 {
		t.Fatalf("pia's passkey as quinn's second step: %+v %v", r, err)
	}
	run(chromedp.Click(`#passkey-factor`), chromedp.WaitVisible(`button[name=decision][value=allow]`), chromedp.Click(`button[name=decision][value=allow]`))
	cl = rq.redeem(t, location(e.blank()))
	if cl.ACR != platform.ACRPhishingResistant || !slices.Equal(cl.AMR, []string{"pwd", "hwk", "user", "mfa"}) {
		t.Fatalf("id_token after password and passkey: %+v", cl)
	}
	logout()

	// Pia removes her passkey: it no longer signs her in.
	login("pia")
	run(chromedp.WaitVisible(`#passkey-factor`), chromedp.Click(`#passkey-factor`), chromedp.WaitVisible(`header.top nav`),
		chromedp.Navigate(e.URL+"/account/security"), chromedp.WaitVisible(`#passkey-add`),
		chromedp.Click(`table.list button.danger`), chromedp.WaitVisible(`p.notice`))
	if st, _ := e.P.Factors.Status(context.Background(), pia.ID); len(st.Passkeys) != 0 {
		t.Fatalf("after removing: %+v", st)
	}
	logout()
	// With quinn's passkey gone from the authenticator, pia's removed one
	// is the one it offers.
	qs, _ := e.P.Factors.Status(context.Background(), quinn.ID)
	if _, err := chromedp.Call(ctx, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: authenticator.AuthenticatorID,
		CredentialID: qs.Passkeys[0].CredentialID}); err != nil {
		t.Fatal(err)
	}
	run(chromedp.WaitVisible(`#passkey-login`), chromedp.Click(`#passkey-login`), chromedp.WaitVisible(`p.error[role=alert]`))
	if msg := text(`p.error[role=alert]`); !strings.Contains(msg, "was not accepted") {
		t.Fatalf("a removed passkey: %q", msg)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("a removed passkey signed in: %s", loc)
	}
}
