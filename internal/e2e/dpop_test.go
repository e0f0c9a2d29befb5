package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/dpop"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

func dpopKey(t *testing.T) *dpop.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return dpop.NewSigner(k, jose.ES256)
}

// A DPoP client (a Go client on go-jose) gets a DPoP-bound token, calls
// /method/users.get with it, and is refused when it drops the proof, reuses
// a jti, signs with another key or presents the token as Bearer. Its
// refresh token is bound to its key too. On both backends.
func TestDPoPBoundTokens(t *testing.T) { onBothBackends(t, testDPoP, fastAPI) }

func testDPoP(t *testing.T, e *env) {
	u := e.user("dora", "")
	redirect := "https://dora.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	id := fmt.Sprint(app.ID)
	key, other := dpopKey(t), dpopKey(t)
	jti := 0
	proof := func(k *dpop.Signer, method, target, tok string) string {
		jti++
		p, err := k.Proof(method, target, tok, fmt.Sprint("jti-", jti, "-", time.Now().UnixNano()), e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenRequest := func(vals url.Values, p string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", e.URL+"/access_token", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, url.QueryEscape(app.ClientSecret))
		if p != "" {
			req.Header.Set("DPoP", p)
		}
		return e.doJSON(req)
	}
	code := obtainCode(t, e, id, redirect, "dora", nil)
	status, m := tokenRequest(url.Values{"code": {code}, "redirect_uri": {redirect}, "grant_type": {"authorization_code"}}, proof(key, "POST", e.URL+"/access_token", ""))
	tok, _ := m["access_token"].(string)
	if status != 200 || m["token_type"] != "DPoP" || tok == "" {
		t.Fatalf("token request with a proof: %d %v", status, m)
	}
	if cnf, _ := e.introspect(app, tok)["cnf"].(map[string]any); cnf["jkt"] != key.JKT() {
		t.Fatalf("introspection cnf = %v, want jkt %s", cnf, key.JKT())
	}
	api := e.URL + "/method/users.get"
	call := func(scheme, p string) (int, string) {
		req, _ := http.NewRequest("GET", api+"?v=5.199", nil)
		req.Header.Set("Authorization", scheme+" "+tok)
		if p != "" {
			req.Header.Set("DPoP", p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		m := e.envelope(resp)
		code, msg := apiError(m)
		return code, msg
	}
	if code, msg := call("DPoP", proof(key, "GET", api, tok)); code != 0 {
		t.Fatalf("users.get with the token and a proof: error %d %s", code, msg)
	}
	replayed := proof(key, "GET", api, tok)
	call("DPoP", replayed)
	for name, c := range map[string]struct{ scheme, proof, want string }{
		"without a proof":              {"DPoP", "", "proof"},
		"as a Bearer token":            {"Bearer", proof(key, "GET", api, tok), "DPoP-bound"},
		"with a reused jti":            {"DPoP", replayed, "jti"},
		"with another key's proof":     {"DPoP", proof(other, "GET", api, tok), "another key"},
		"with a proof for another URL": {"DPoP", proof(key, "GET", e.URL+"/method/groups.get", tok), "htu"},
		"with a proof of no ath":       {"DPoP", proof(key, "GET", api, ""), "ath"},
	} {
		if code, msg := call(c.scheme, c.proof); code != 5 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %d %q, want 5 naming %q", name, code, msg, c.want)
		}
	}
	// Every answer to a DPoP call carries this node's nonce (RFC 9449 §9):
	// a proof with it is remembered by the node, in memory, once.
	withNonce := func(jti, nonce string) (int, string, string) {
		p, err := key.ProofWithNonce("GET", api, tok, jti, nonce, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", api+"?v=5.199", nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", p)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		next := resp.Header.Get("DPoP-Nonce")
		code, msg := apiError(e.envelope(resp))
		return code, msg, next
	}
	_, _, nonce := withNonce("nonce-0", "")
	if nonce == "" {
		t.Fatal("a DPoP call's answer has no DPoP-Nonce")
	}
	if code, msg, _ := withNonce("nonce-1", nonce); code != 0 {
		t.Fatalf("a proof with the server's nonce: error %d %s", code, msg)
	}
	if code, msg, again := withNonce("nonce-2", "made-up"); code != 5 || !strings.Contains(msg, "use_dpop_nonce") || again != nonce {
		t.Fatalf("a proof with a made-up nonce: error %d %q, nonce %q", code, msg, again)
	}
	if code, msg, _ := withNonce("nonce-1", nonce); code != 5 || !strings.Contains(msg, "jti") {
		t.Fatalf("a proof with a nonce, again: error %d %q", code, msg)
	}
	// The token endpoint refuses a nonce not its own with use_dpop_nonce
	// and the one to use, which a client sends again (oauth4webapi does).
	stale, err := key.ProofWithNonce("POST", e.URL+"/access_token", "", "nonce-3", "made-up", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.URL+"/access_token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, url.QueryEscape(app.ClientSecret))
	req.Header.Set("DPoP", stale)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("DPoP-Nonce") != nonce {
		t.Fatalf("the token endpoint with a made-up nonce: %d, DPoP-Nonce %q", resp.StatusCode, resp.Header.Get("DPoP-Nonce"))
	}
	// The refresh token is bound to the key as well.
	rt := m["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if status, m := tokenRequest(refresh, ""); status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("refresh without a proof: %d %v", status, m)
	}
	if status, m := tokenRequest(refresh, proof(other, "POST", e.URL+"/access_token", "")); status != 400 {
		t.Fatalf("refresh with another key: %d %v", status, m)
	}
	if status, m := tokenRequest(refresh, proof(key, "POST", e.URL+"/access_token", "")); status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("refresh with the key: %d %v, want a new DPoP pair (a wrong key must not have spent it)", status, m)
	}
	// A bad proof at the token endpoint, and a bearer token presented as DPoP.
	if status, m := tokenRequest(url.Values{"grant_type": {"client_credentials"}}, "not-a-proof"); status != 400 || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("a malformed proof: %d %v", status, m)
	}
	bearer := app.ServiceToken
	req, _ = http.NewRequest("GET", e.URL+"/method/secure.checkToken?v=5.199&token=x", nil)
	req.Header.Set("Authorization", "DPoP "+bearer)
	req.Header.Set("DPoP", proof(key, "GET", e.URL+"/method/secure.checkToken", bearer))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := apiError(e.envelope(resp)); code != 5 || !strings.Contains(msg, "not DPoP-bound") {
		t.Fatalf("a bearer token presented as DPoP: %d %q", code, msg)
	}
}

// Through the gateway, a DPoP-bound token for an API works with a fresh
// proof; every answer carries the node's nonce; a proof with a nonce not
// the node's is refused with use_dpop_nonce and the nonce to use; one with
// it works once.
func TestGatewayDPoPNonces(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dev := e.user("noncedev", "")
	up := upstream(t)
	api, err := e.P.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
		Name: "Bound", Slug: "bound", Upstream: up.URL, Rate: 100, Scopes: []platform.ScopeSpec{{Name: "bound:read", EN: "Read", RU: "Читать"}}}})
	if err != nil {
		t.Fatal(err)
	}
	app := e.app(dev.ID, storage.Web, "https://bound.example/cb")
	if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	key := dpopKey(t)
	proof := func(method, target, tok, jti, nonce string) string {
		t.Helper()
		p, err := key.ProofWithNonce(method, target, tok, jti, nonce, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	req, _ := http.NewRequest("POST", e.URL+"/access_token", strings.NewReader(url.Values{"grant_type": {"client_credentials"},
		"resource": {api.Identifier}, "scope": {"bound:read"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(fmt.Sprint(app.ID), url.QueryEscape(app.ClientSecret))
	req.Header.Set("DPoP", proof("POST", e.URL+"/access_token", "", "token", ""))
	status, m := e.doJSON(req)
	tok, _ := m["access_token"].(string)
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("a DPoP-bound token for the API: %d %v", status, m)
	}
	target := e.URL + "/api/bound/echo"
	call := func(p string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", p)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := call(proof("GET", target, tok, "g-1", ""))
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != 200 || nonce == "" {
		t.Fatalf("a bound call through the gateway: %d, DPoP-Nonce %q", resp.StatusCode, nonce)
	}
	resp = call(proof("GET", target, tok, "g-2", "made-up"))
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || resp.Header.Get("DPoP-Nonce") != nonce {
		t.Fatalf("a made-up nonce: %d %q, DPoP-Nonce %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("DPoP-Nonce"))
	}
	withNonce := proof("GET", target, tok, "g-3", nonce)
	if resp = call(withNonce); resp.StatusCode != 200 {
		t.Fatalf("the node's nonce: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp = call(withNonce); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "jti") {
		t.Fatalf("the same proof again: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
