package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/internal/dpop"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// The FAPI 2.0 profile end to end: PAR, PKCE S256, private_key_jwt and
// DPoP-bound tokens, a refresh token that stays bound to its key without
// rotating; and each forbidden variation refused with the RFC error and
// why: a request not pushed, no PKCE, the implicit flow, no DPoP proof, a
// client secret, a code older than 60 seconds, another key at refresh.
// On both backends.
func TestFAPI2Profile(t *testing.T) { onBothBackends(t, testFAPI2) }

func testFAPI2(t *testing.T, e *env) {
	ctx := t.Context()
	dev := e.user("fapidev", "")
	person := e.user("fapiuser", "")
	redirect := "https://fapi.example/cb"
	app := e.app(dev.ID, storage.Web, redirect)
	key := newRSAKey(t, "fapi-key")
	if _, err := e.P.Apps.SetProfile(ctx, platform.CLI, app.ID, platform.ProfileFAPI2); err == nil {
		t.Fatal("FAPI 2.0 set on an app without private_key_jwt")
	}
	if _, err := e.P.Apps.SetAuth(ctx, platform.CLI, app.ID, platform.ClientAuth{Method: platform.AuthPrivateKey, JWKS: key.jwks()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.Apps.SetProfile(ctx, platform.CLI, app.ID, platform.ProfileFAPI2); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprint(app.ID)
	holder, thief := dpopKey(t), dpopKey(t)
	proof := func(k *dpop.Signer, path string) string {
		p, err := k.Proof("POST", e.URL+path, "", fmt.Sprint("jti-", time.Now().UnixNano()), e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	verifier := strings.Repeat("f", 50)
	// post sends a form to path, authenticated by a fresh assertion (and
	// a DPoP proof of k when k is set).
	post := func(path string, vals url.Values, k *dpop.Signer) (int, map[string]any) {
		t.Helper()
		withAssertion(vals, key.assertion(t, id, e.URL, e.Clock.Now(), nil))
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if k != nil {
			req.Header.Set("DPoP", proof(k, path))
		}
		return e.doJSON(req)
	}
	push := func(params url.Values) string {
		t.Helper()
		status, m := post("/oauth/par", params, nil)
		if status != 201 && status != 200 {
			t.Fatalf("PAR: %d %v", status, m)
		}
		return m["request_uri"].(string)
	}
	codeParams := func() url.Values {
		return url.Values{"response_type": {"code"}, "redirect_uri": {redirect}, "scope": {"openid"}, "state": {"st"},
			"code_challenge": {challengeOf(verifier)}, "code_challenge_method": {"S256"}}
	}
	// authorize signs the person in through /authorize with params and
	// returns where the browser was sent.
	b := e.browser()
	first := true
	authorize := func(params map[string]string) *url.URL {
		t.Helper()
		to := b.get(e.authorize(params))
		if first && to == "" {
			if to = b.login(person.Login, "password-"+person.Login); to == "" {
				to = b.approve()
			}
			first = false
		}
		u, err := url.Parse(to)
		if err != nil || to == "" {
			t.Fatalf("/authorize ended on a page: %d %s", b.status, b.page)
		}
		return u
	}

	// The whole flow.
	u := authorize(map[string]string{"client_id": id, "request_uri": push(codeParams())})
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", u)
	}
	status, tok := post("/access_token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, holder)
	if status != 200 || tok["token_type"] != "DPoP" || tok["refresh_token"] == nil || tok["id_token"] == nil {
		t.Fatalf("the FAPI 2.0 code exchange: %d %v", status, tok)
	}
	refresh := tok["refresh_token"].(string)
	for i := range 2 {
		status, m := post("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, holder)
		if status != 200 || m["refresh_token"] != refresh || m["token_type"] != "DPoP" {
			t.Fatalf("refresh %d: %d %v, want the same refresh token back", i+1, status, m)
		}
	}

	// Forbidden variations.
	refusedAt := func(name string, u *url.URL, code, why string) {
		t.Helper()
		answer := u.Query()
		if u.Fragment != "" { // the implicit flow's errors travel in the fragment
			answer, _ = url.ParseQuery(u.Fragment)
		}
		if answer.Get("error") != code || !strings.Contains(answer.Get("error_description"), why) {
			t.Errorf("%s: %s, want %s (%s)", name, u, code, why)
		}
	}
	plain := map[string]string{"client_id": id, "response_type": "code", "redirect_uri": redirect, "scope": "openid",
		"code_challenge": challengeOf(verifier), "code_challenge_method": "S256"}
	refusedAt("a request not pushed", authorize(plain), "invalid_request", "PAR")
	noPKCE := codeParams()
	noPKCE.Del("code_challenge")
	noPKCE.Del("code_challenge_method")
	refusedAt("a pushed request without PKCE", authorize(map[string]string{"client_id": id, "request_uri": push(noPKCE)}), "invalid_request", "S256")
	implicit := codeParams()
	implicit.Set("response_type", "token")
	implicit.Del("code_challenge")
	implicit.Del("code_challenge_method")
	refusedAt("the implicit flow", authorize(map[string]string{"client_id": id, "request_uri": push(implicit)}), "unsupported_response_type", "code only")

	// The dialog's answer counts as the pushed request's only with its
	// parameters unchanged: the person changing one is refused too.
	asked := codeParams()
	asked.Set("prompt", "consent")
	if to := b.get(e.authorize(map[string]string{"client_id": id, "request_uri": push(asked)})); to != "" {
		t.Fatalf("prompt=consent did not show the dialog: %s", to)
	}
	dialog := b.formWith("decision")
	if dialog.fields.Get("pushed") == "" {
		t.Fatal("the dialog of a pushed request does not vouch for it")
	}
	to, _ := url.Parse(b.submit(dialog, map[string]string{"scope": "openid email"}, "decision", "allow"))
	refusedAt("a dialog's answer with a parameter changed", to, "invalid_request", "PAR")

	exchange := func(k *dpop.Signer) (int, map[string]any) {
		u := authorize(map[string]string{"client_id": id, "request_uri": push(codeParams())})
		return post("/access_token", url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, k)
	}
	if status, m := exchange(nil); status != 400 || m["error"] != "invalid_request" || !strings.Contains(fmt.Sprint(m["error_description"]), "DPoP") {
		t.Errorf("a code exchange without DPoP: %d %v", status, m)
	}
	late := authorize(map[string]string{"client_id": id, "request_uri": push(codeParams())}).Query().Get("code")
	e.Clock.Advance(61 * time.Second)
	if status, m := post("/access_token", url.Values{"grant_type": {"authorization_code"}, "code": {late}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, holder); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("a code 61 seconds old: %d %v", status, m)
	}
	if status, m := post("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, thief); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("a refresh with another key: %d %v", status, m)
	}
	req, _ := http.NewRequest("POST", e.URL+"/access_token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, app.ClientSecret)
	req.Header.Set("DPoP", proof(holder, "/access_token"))
	if status, m := e.doJSON(req); status != 401 || m["error"] != "invalid_client" {
		t.Errorf("the client secret of a FAPI 2.0 app: %d %v", status, m)
	}
	req, _ = http.NewRequest("POST", e.URL+"/access_token", strings.NewReader(withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}},
		key.assertion(t, id, e.URL, e.Clock.Now(), nil)).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", "not-a-proof")
	if status, m := e.doJSON(req); status != 400 || m["error"] != "invalid_dpop_proof" {
		t.Errorf("a malformed DPoP proof: %d %v", status, m)
	}
}
