package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"latchkey/internal/gateway"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// nginxConfig is the nginx configuration of docs/gateway.md, with
// http://LATCHKEY and http://UPSTREAM replaced: the tests run what the
// documentation shows, and what the console shows an API's owner.
func nginxConfig(t *testing.T, latchkey, upstream string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```nginx\n")
	conf, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/gateway.md has no nginx configuration")
	}
	conf = strings.NewReplacer("http://LATCHKEY", latchkey, "http://UPSTREAM", upstream).Replace(conf)
	if conf != gateway.NginxConfig(latchkey, upstream) {
		t.Fatalf("docs/gateway.md's nginx configuration is not the console's (gateway.NginxConfig):\n%s", conf)
	}
	return conf
}

// A real nginx in front of an API, asking Latchkey with auth_request (the
// configuration of docs/gateway.md): a valid token reaches the API with
// who is calling, spoofed X-Latchkey-* headers never do; a missing,
// revoked or other API's token is 401, a route's missing scope 403, beyond
// the rate 429 with Retry-After; a DPoP-bound token passes with its proof
// of nginx's URL, and not without it.
func TestNginxForwardAuth(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dev := e.user("ngdev", "")
	up := upstream(t)
	base := testenv.Nginx(t, func(int) string { return nginxConfig(t, e.URL, up.URL) })
	orders, err := e.P.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: dev.ID, Identifier: base, APISettings: platform.APISettings{
		Name: "Behind nginx", Rate: 3, Scopes: []platform.ScopeSpec{{Name: "read", EN: "Read", RU: "Читать"}, {Name: "write", EN: "Write", RU: "Писать"}},
		Routes: []storage.APIRoute{{Method: "POST", Prefix: "/echo", Scope: "write"}}}})
	if err != nil {
		t.Fatal(err)
	}
	other := e.api(dev.ID, "https://other.example", storage.TokenOpaque)
	app := e.app(dev.ID, storage.Web, "https://svc.example/cb")
	if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	token := func(api platform.APIView, scope string) string {
		t.Helper()
		status, m := e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}, "resource": {api.Identifier}, "scope": {scope}},
			fmt.Sprint(app.ID), app.ClientSecret)
		if status != 200 {
			t.Fatalf("a token for %s: %d %v", api.Identifier, status, m)
		}
		return m["access_token"].(string)
	}
	// send calls the API through nginx with header and returns the answer's
	// status and the headers the API saw.
	send := func(method string, header http.Header) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/echo?q=1", nil)
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		e.Clock.Advance(time.Second)
		var echoed struct{ Headers http.Header }
		json.NewDecoder(resp.Body).Decode(&echoed)
		return resp.StatusCode, echoed.Headers
	}
	call := func(method, tok string, spoof bool) (int, http.Header) {
		t.Helper()
		h := http.Header{}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
		if spoof {
			for _, k := range []string{"X-Latchkey-Subject", "X-Latchkey-Client-Id", "X-Latchkey-Scope", "X-Latchkey-Token-Id"} {
				h.Set(k, "spoofed")
			}
		}
		return send(method, h)
	}
	read := token(orders, "read")
	status, h := call("GET", read, true)
	if status != 200 || h.Get("X-Latchkey-Client-Id") != fmt.Sprint(app.ID) || h.Get("X-Latchkey-Scope") != "read" || h.Get("Authorization") != "" {
		t.Fatalf("a valid token through nginx: %d %v", status, h)
	}
	for _, k := range []string{"X-Latchkey-Subject", "X-Latchkey-Client-Id", "X-Latchkey-Scope", "X-Latchkey-Token-Id"} {
		if h.Get(k) == "spoofed" {
			t.Fatalf("a spoofed %s reached the API", k)
		}
	}
	for _, c := range []struct {
		name, method, tok string
		status            int
	}{
		{"no token", "GET", "", 401},
		{"another API's token", "GET", token(other, "orders:read"), 401},
		{"a route's missing scope", "POST", read, 403},
		{"a token with the route's scope", "POST", token(orders, "read write"), 200},
	} {
		if status, _ := call(c.method, c.tok, false); status != c.status {
			t.Errorf("%s through nginx: %d, want %d", c.name, status, c.status)
		}
	}
	if status, _ := e.postForm("/oauth/revoke", url.Values{"token": {read}}, fmt.Sprint(app.ID), app.ClientSecret); status != 200 {
		t.Fatal("revoke")
	}
	if status, _ := call("GET", read, false); status != 401 {
		t.Fatalf("a revoked token through nginx: %d", status)
	}

	// Beyond the rate (3 a second) with one token: 429 with Retry-After,
	// not nginx's 500.
	fresh := token(orders, "read")
	statuses := map[int]int{}
	for range 6 {
		req, _ := http.NewRequest("GET", base+"/echo", nil)
		req.Header.Set("Authorization", "Bearer "+fresh)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == 429 && (resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "slow_down")) {
			t.Fatalf("429 through nginx: Retry-After %q, body %s", resp.Header.Get("Retry-After"), body)
		}
	}
	if statuses[200] != 3 || statuses[429] != 3 {
		t.Fatalf("6 calls at once with a rate of 3 through nginx: %v, want 3 × 200 and 3 × 429", statuses)
	}
	e.Clock.Advance(time.Second)

	// A DPoP-bound token: the proof is of nginx's URL, as the client sees it.
	key := dpopKey(t)
	proof := func(method, target, tok string) string {
		p, err := key.Proof(method, target, tok, fmt.Sprint("jti-", time.Now().UnixNano()), e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	req, _ := http.NewRequest("POST", e.URL+"/access_token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "resource": {orders.Identifier}, "scope": {"read"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(fmt.Sprint(app.ID), url.QueryEscape(app.ClientSecret))
	req.Header.Set("DPoP", proof("POST", e.URL+"/access_token", ""))
	status, m := e.doJSON(req)
	bound, _ := m["access_token"].(string)
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("a DPoP-bound token: %d %v", status, m)
	}
	dpopCall := func(scheme, p string) (int, http.Header) {
		t.Helper()
		h := http.Header{"Authorization": {scheme + " " + bound}}
		if p != "" {
			h.Set("DPoP", p)
		}
		return send("GET", h)
	}
	if status, h := dpopCall("DPoP", proof("GET", base+"/echo", bound)); status != 200 || h.Get("X-Latchkey-Scope") != "read" || h.Get("Dpop") != "" || h.Get("Authorization") != "" {
		t.Fatalf("a DPoP-bound token with its proof through nginx: %d %v", status, h)
	}
	for _, c := range []struct{ name, scheme, proof string }{
		{"without a proof", "DPoP", ""},
		{"as a Bearer token", "Bearer", ""},
		{"with a proof of another URL", "DPoP", proof("GET", e.URL+"/echo", bound)},
		{"with a proof of another method", "DPoP", proof("POST", base+"/echo", bound)},
	} {
		if status, _ := dpopCall(c.scheme, c.proof); status != 401 {
			t.Errorf("a DPoP-bound token %s through nginx: %d, want 401", c.name, status)
		}
	}
}
