package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// nginxConfig is the nginx configuration of docs/gateway.md, with
// LATCHKEY and UPSTREAM replaced: the tests run what the documentation
// shows.
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
	return strings.NewReplacer("LATCHKEY", strings.TrimPrefix(latchkey, "http://"), "UPSTREAM", strings.TrimPrefix(upstream, "http://")).Replace(conf)
}

// A real nginx in front of an API, asking Latchkey with auth_request (the
// configuration of docs/gateway.md): a valid token reaches the API with
// who is calling, spoofed X-Latchkey-* headers never do; a missing,
// revoked or other API's token is 401, a route's missing scope 403.
func TestNginxForwardAuth(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dev := e.user("ngdev", "")
	up := upstream(t)
	base := testenv.Nginx(t, func(int) string { return nginxConfig(t, e.URL, up.URL) })
	orders, err := e.P.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: dev.ID, Identifier: base, APISettings: platform.APISettings{
		Name: "Behind nginx", Scopes: []platform.ScopeSpec{{Name: "read", EN: "Read", RU: "Читать"}, {Name: "write", EN: "Write", RU: "Писать"}},
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
	call := func(method, tok string, spoof bool) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/echo?q=1", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if spoof {
			for _, h := range []string{"X-Latchkey-Subject", "X-Latchkey-Client-Id", "X-Latchkey-Scope", "X-Latchkey-Token-Id"} {
				req.Header.Set(h, "spoofed")
			}
		}
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
}
