package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

var (
	secretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	codesRE  = regexp.MustCompile(`<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>`)
)

// codeOf is the authenticator app's code for secret now, by the server's clock.
func (e *env) codeOf(secret string) string {
	e.t.Helper()
	c, err := totp.GenerateCode(secret, e.Clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// wrongCode is a code that is not the right one now.
func (e *env) wrongCode(secret string) string {
	c := []byte(e.codeOf(secret))
	c[0] = '0' + (c[0]-'0'+1)%10
	return string(c)
}

// enrolApp adds an authenticator app on the security page of b's person
// and returns its secret and the recovery codes shown.
func (e *env) enrolApp(b *browser) (string, []string) {
	e.t.Helper()
	if to := b.get(e.URL + "/account/security/app"); to != "" || b.status != http.StatusOK {
		e.t.Fatalf("the enrolment page: %s %d", to, b.status)
	}
	m := secretRE.FindStringSubmatch(b.page)
	if m == nil || !strings.Contains(b.page, `src="data:image/png;base64,`) {
		e.t.Fatalf("no secret or QR code on the enrolment page:\n%s", b.page)
	}
	b.submit(b.formWith("otp"), map[string]string{"otp": e.codeOf(m[1]), "name": "Phone"})
	var codes []string
	for _, c := range codesRE.FindAllStringSubmatch(b.page, -1) {
		codes = append(codes, c[1])
	}
	if b.status != http.StatusOK || len(codes) != platform.RecoveryCodes {
		e.t.Fatalf("after enrolling: %d, %d recovery codes:\n%s", b.status, len(codes), b.page)
	}
	return m[1], codes
}

// oidcClient is an OpenID Connect web app of owner with its x/oauth2
// configuration and go-oidc verifier.
type oidcClient struct {
	id       string
	redirect string
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (e *env) oidcClient(owner int64) oidcClient {
	return e.oidcClientTo(owner, "https://rp.example/cb")
}

// oidcClientTo is oidcClient with its redirect URI.
func (e *env) oidcClientTo(owner int64, redirect string) oidcClient {
	e.t.Helper()
	app := e.app(owner, storage.Web, redirect)
	provider, err := oidc.NewProvider(context.Background(), e.URL)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		ACR         []string `json:"acr_values_supported"`
		Claims      []string `json:"claims_supported"`
		Backchannel bool     `json:"backchannel_logout_supported"`
		Session     bool     `json:"backchannel_logout_session_supported"`
	}
	if err := provider.Claims(&meta); err != nil || !slices.Equal(meta.ACR, platform.ACRValues) || !slices.Contains(meta.Claims, "amr") || !meta.Backchannel || !meta.Session {
		e.t.Fatalf("discovery's acr_values_supported %v, claims %v (%v)", meta.ACR, meta.Claims, err)
	}
	id := fmt.Sprint(app.ID)
	return oidcClient{id: id, redirect: redirect, verifier: provider.Verifier(&oidc.Config{ClientID: id}),
		conf: &oauth2.Config{ClientID: id, ClientSecret: app.ClientSecret, RedirectURL: redirect, Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID}}}
}

func (c oidcClient) authorize(e *env, extra map[string]string) string {
	p := map[string]string{"client_id": c.id, "redirect_uri": c.redirect, "response_type": "code", "scope": "openid", "nonce": "n1", "state": "s1"}
	for k, v := range extra {
		p[k] = v
	}
	return e.authorize(p)
}

// signInClaims are what these tests read of an id_token.
type signInClaims struct {
	AuthTime int64    `json:"auth_time"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	SID      string   `json:"sid"`
}

// redeem exchanges the code in the redirect to and verifies the id_token
// with go-oidc.
func (c oidcClient) redeem(t *testing.T, to string) signInClaims {
	t.Helper()
	q := query(t, to)
	if q.Get("code") == "" || !strings.HasPrefix(to, c.redirect) {
		t.Fatalf("no code: %s", to)
	}
	tok, err := c.conf.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var cl signInClaims
	if err := idt.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// An authenticator app, with real codes from pquerna/otp: enrolled by a
// code (a wrong one enrols nothing), then asked after the password; the
// id_token says pwd and otp; a code is accepted once; wrong codes are
// throttled; a recovery code works once.
func TestAuthenticatorApp(t *testing.T) { onBothBackends(t, testAuthenticatorApp) }

func testAuthenticatorApp(t *testing.T, e *env) {
	ctx := context.Background()
	u := e.user("tess", "")
	rp := e.oidcClient(u.ID)
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("tess", "password-tess")

	// A wrong code enrols nothing.
	b.get(e.URL + "/account/security/app")
	secret := secretRE.FindStringSubmatch(b.page)[1]
	b.submit(b.formWith("otp"), map[string]string{"otp": e.wrongCode(secret)})
	if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "The code is wrong") || !strings.Contains(b.page, secret) {
		t.Fatalf("a wrong enrolment code: %d\n%s", b.status, b.page)
	}
	if st, _ := e.P.Factors.Status(ctx, u.ID); st.Any() {
		t.Fatalf("enrolled by a wrong code: %+v", st)
	}
	secret, codes := e.enrolApp(b)
	enrolled := e.codeOf(secret)

	// Password, then the code: the enrolment's code is spent already.
	b2 := e.browser()
	b2.get(rp.authorize(e, nil))
	if to := b2.login("tess", "password-tess"); to != "" || !strings.Contains(b2.pageURL, "/login/factor") {
		t.Fatalf("after the password: %s %s", to, b2.pageURL)
	}
	b2.submit(b2.formWith("otp"), map[string]string{"otp": enrolled})
	if b2.status != http.StatusUnauthorized || !strings.Contains(b2.page, "wrong or was used") {
		t.Fatalf("the enrolment's code again: %d\n%s", b2.status, b2.page)
	}
	if b2.get(e.URL + "/settings/profile"); !strings.Contains(b2.pageURL, "/login") {
		t.Fatalf("signed in without the second factor: %s", b2.pageURL)
	}
	e.Clock.Advance(30 * time.Second)
	b2.get(rp.authorize(e, nil))
	b2.login("tess", "password-tess")
	to := b2.submit(b2.formWith("otp"), map[string]string{"otp": e.codeOf(secret)})
	if to == "" {
		to = b2.approve()
	}
	cl := rp.redeem(t, to)
	if cl.ACR != platform.ACRMultiFactor || !slices.Equal(cl.AMR, []string{"pwd", "otp", "mfa"}) || cl.SID == "" || cl.AuthTime != e.Clock.Now().Unix() {
		t.Fatalf("id_token after password and code: %+v", cl)
	}

	// A 10 KB code is refused plainly, and wrong codes are counted: the
	// sixth is refused whatever it is.
	b3 := e.browser()
	b3.get(e.URL + "/login")
	b3.login("tess", "password-tess")
	b3.submit(b3.formWith("otp"), map[string]string{"otp": strings.Repeat("1", 10<<10)})
	if b3.status != http.StatusUnauthorized || !strings.Contains(b3.page, "The code is wrong") {
		t.Fatalf("a 10 KB code: %d", b3.status)
	}
	for i := range 5 {
		b3.submit(b3.formWith("otp"), map[string]string{"otp": e.wrongCode(secret)})
		if b3.status != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d", i+1, b3.status)
		}
	}
	e.Clock.Advance(30 * time.Second)
	b3.submit(b3.formWith("otp"), map[string]string{"otp": e.codeOf(secret)})
	if b3.status != http.StatusTooManyRequests || !strings.Contains(b3.page, "Too many wrong codes") {
		t.Fatalf("the sixth code: %d, want 429", b3.status)
	}
	if b3.get(e.URL + "/settings/profile"); !strings.Contains(b3.pageURL, "/login") {
		t.Fatal("signed in while throttled")
	}

	// A recovery code works once.
	e.Clock.Advance(16 * time.Minute)
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		b4 := e.browser()
		b4.get(e.URL + "/login")
		b4.login("tess", "password-tess")
		b4.submit(b4.formWith("otp"), map[string]string{"otp": strings.ToUpper(codes[0])})
		signedIn := !strings.Contains(b4.pageURL, "/login")
		if signedIn != (want == http.StatusSeeOther) {
			t.Fatalf("recovery code, use %d: on %s (%d)", i+1, b4.pageURL, b4.status)
		}
	}
	if st, _ := e.P.Factors.Status(ctx, u.ID); st.RecoveryLeft != platform.RecoveryCodes-1 {
		t.Fatalf("recovery codes left: %d", st.RecoveryLeft)
	}
	// A session signed in 17 minutes ago may look, not change: turning the
	// app off asks for a new sign-in first.
	b.get(e.URL + "/account/security")
	if !strings.Contains(b.page, "sign in again first") {
		t.Fatalf("a stale session's security page:\n%s", b.page)
	}
	b.submit(b.formWith("csrf"), nil)
	if !strings.Contains(b.pageURL, "/login") {
		t.Fatalf("a change from a stale session went to %s", b.pageURL)
	}
	if st, _ := e.P.Factors.Status(ctx, u.ID); st.App == nil {
		t.Fatal("a stale session turned the authenticator app off")
	}
	events, err := e.P.Admin.Audit(ctx, storage.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[storage.AuditAction]bool{}
	for _, ev := range events {
		seen[ev.Action] = true
	}
	for _, a := range []storage.AuditAction{storage.AuditFactorAdd, storage.AuditFactorUse, storage.AuditRecoveryCodes, storage.AuditRecoveryCodeUse} {
		if !seen[a] {
			t.Errorf("no audit entry %s", a)
		}
	}
}

// Step-up at /authorize: prompt=none without a session or consent,
// max_age, acr_values over a password-only session, and second factors
// required per user (the CLI) and for everyone (--require-mfa).
func TestStepUp(t *testing.T) {
	e := newEnv(t)
	u := e.user("stella", "")
	rp := e.oidcClient(u.ID)
	b := e.browser()
	if q := query(t, b.get(rp.authorize(e, map[string]string{"prompt": "none"}))); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none signed out: %v", q)
	}
	// login_hint fills the login form.
	if b.get(rp.authorize(e, map[string]string{"login_hint": "stella"})); !strings.Contains(b.page, `name="login" value="stella"`) {
		t.Fatalf("login_hint did not fill the form:\n%s", b.page)
	}
	b.get(e.URL + "/login")
	b.login("stella", "password-stella")
	if q := query(t, b.get(rp.authorize(e, map[string]string{"prompt": "none"}))); q.Get("error") != "consent_required" || q.Get("state") != "s1" {
		t.Fatalf("prompt=none without consent: %v", q)
	}
	b.get(rp.authorize(e, nil))
	cl := rp.redeem(t, b.approve())
	if cl.ACR != platform.ACRPassword || !slices.Equal(cl.AMR, []string{"pwd"}) || cl.AuthTime != e.Clock.Now().Unix() {
		t.Fatalf("a password sign-in: %+v", cl)
	}

	// max_age: a sign-in older than it asks for the password again.
	e.Clock.Advance(5 * time.Minute)
	if to := b.get(rp.authorize(e, map[string]string{"max_age": "600"})); to == "" {
		t.Fatalf("max_age=600 asked again after 5 minutes: %s", b.pageURL)
	}
	if q := query(t, b.get(rp.authorize(e, map[string]string{"max_age": "60", "prompt": "none"}))); q.Get("error") != "login_required" {
		t.Fatalf("max_age=60, prompt=none, 5 minutes on: %v", q)
	}
	if to := b.get(rp.authorize(e, map[string]string{"max_age": "60"})); to != "" || !strings.Contains(b.page, `name="password"`) {
		t.Fatalf("max_age=60 after 5 minutes: %s", to)
	}
	cl = rp.redeem(t, b.login("stella", "password-stella"))
	if cl.AuthTime != e.Clock.Now().Unix() {
		t.Fatalf("auth_time after signing in again: %d, want %d", cl.AuthTime, e.Clock.Now().Unix())
	}
	if q := query(t, b.get(rp.authorize(e, map[string]string{"max_age": "0", "prompt": "none"}))); q.Get("code") == "" {
		t.Fatalf("max_age=0 right after signing in: %v", q)
	}

	// acr_values asking for a second factor: without one, enrol first.
	mfa := map[string]string{"acr_values": "urn:latchkey:acr:mfa urn:example:unknown"}
	if to := b.get(rp.authorize(e, mfa)); to != "" || !strings.Contains(b.pageURL, "/account/security") || !strings.Contains(b.page, "needs a second sign-in step") {
		t.Fatalf("acr mfa without a factor: %s %s", to, b.pageURL)
	}
	secret, _ := e.enrolApp(b)
	// Enrolling does not raise this session: prompt=none cannot, and
	// without it the code is asked.
	if q := query(t, b.get(rp.authorize(e, map[string]string{"acr_values": mfa["acr_values"], "prompt": "none"}))); q.Get("error") != "interaction_required" {
		t.Fatalf("acr mfa, prompt=none, password session: %v", q)
	}
	// The request pushed (RFC 9126) asks the same.
	status, pushed := e.postForm("/oauth/par", url.Values{"redirect_uri": {rp.redirect}, "response_type": {"code"}, "scope": {"openid"},
		"nonce": {"n1"}, "acr_values": {mfa["acr_values"]}}, rp.id, rp.conf.ClientSecret)
	if status != http.StatusCreated {
		t.Fatalf("push: %d %v", status, pushed)
	}
	if to := b.get(e.URL + "/authorize?" + url.Values{"client_id": {rp.id}, "request_uri": {pushed["request_uri"].(string)}}.Encode()); to != "" || !strings.Contains(b.pageURL, "/login/factor") {
		t.Fatalf("acr mfa over a password session: %s %s", to, b.pageURL)
	}
	e.Clock.Advance(30 * time.Second)
	cl = rp.redeem(t, b.submit(b.formWith("otp"), map[string]string{"otp": e.codeOf(secret)}))
	if cl.ACR != platform.ACRMultiFactor || !slices.Contains(cl.AMR, "otp") || !slices.Contains(cl.AMR, "pwd") {
		t.Fatalf("after stepping up: %+v", cl)
	}
	// A JWT access token for an API says the same (RFC 9068).
	orders := e.api(u.ID, "https://orders.example/api", storage.TokenJWT)
	to := b.get(rp.authorize(e, map[string]string{"resource": orders.Identifier, "scope": "openid orders:read"}))
	if to == "" {
		to = b.approve()
	}
	tok, err := rp.conf.Exchange(context.Background(), query(t, to).Get("code"), oauth2.SetAuthURLParam("resource", orders.Identifier))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok.AccessToken)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if at := decodeJSON[signInClaims](t, string(payload)); at.ACR != platform.ACRMultiFactor || !slices.Contains(at.AMR, "otp") || at.AuthTime != e.Clock.Now().Unix() {
		t.Fatalf("the JWT access token's sign-in claims: %s", payload)
	}
	// A request for less than the session has is answered at once.
	if q := query(t, b.get(rp.authorize(e, map[string]string{"acr_values": platform.ACRPassword, "prompt": "none"}))); q.Get("code") == "" {
		t.Fatalf("acr pwd over an mfa session: %v", q)
	}

	// A second factor required of one person (the CLI): sent to enrol
	// before any consent.
	r := e.user("rhea", "")
	runCLI(t, "sqlite:"+e.DB, "user", "require-mfa", "--user", "rhea", "on")
	rb := e.browser()
	rb.get(rp.authorize(e, nil))
	if to := rb.login("rhea", "password-rhea"); to != "" || !strings.Contains(rb.pageURL, "/account/security") || strings.Contains(rb.page, `name="decision"`) {
		t.Fatalf("rhea, required, no factor: %s %s", to, rb.pageURL)
	}
	if got, _ := e.P.Users.User(context.Background(), r.ID); !got.RequireMFA {
		t.Fatal("require-mfa not kept")
	}
	// An operator resets a lost authenticator.
	runCLI(t, "sqlite:"+e.DB, "user", "reset-factors", "--user", fmt.Sprint(u.ID))
	if st, _ := e.P.Factors.Status(context.Background(), u.ID); st.Any() || st.RecoveryLeft != 0 {
		t.Fatalf("after reset-factors: %+v", st)
	}

	// --require-mfa: everyone.
	all := newEnv(t, func(c *config.Config) { c.RequireMFA = true })
	v := all.user("vera", "")
	rp2 := all.oidcClient(v.ID)
	vb := all.browser()
	vb.get(rp2.authorize(all, nil))
	if to := vb.login("vera", "password-vera"); to != "" || !strings.Contains(vb.pageURL, "/account/security") {
		t.Fatalf("--require-mfa, no factor: %s %s", to, vb.pageURL)
	}
	// The codes page leads on to the second step and then the consent.
	vsecret, _ := all.enrolApp(vb)
	all.Clock.Advance(30 * time.Second)
	vb.get(all.URL + "/login/factor?next=" + url.QueryEscape(strings.TrimPrefix(rp2.authorize(all, nil), all.URL)))
	to = vb.submit(vb.formWith("otp"), map[string]string{"otp": all.codeOf(vsecret)})
	if to == "" {
		to = vb.approve()
	}
	if cl := rp2.redeem(t, to); cl.ACR != platform.ACRMultiFactor {
		t.Fatalf("--require-mfa after enrolling: %+v", cl)
	}
}
