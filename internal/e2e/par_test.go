package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"latchkey/internal/storage"
)

// An app's server pushes its authorization request (RFC 9126) and the
// browser carries only the request_uri: the flow completes, the request_uri
// works once and for its app only, and a bad pushed request is refused as
// JSON at the push.
func TestPushedAuthorizationRequests(t *testing.T) { onBothBackends(t, testPAR) }

func testPAR(t *testing.T, e *env) {
	u := e.user("paula", "")
	redirect := "https://paula.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	other := e.app(u.ID, storage.Web, "https://other.example/cb")
	id := fmt.Sprint(app.ID)
	push := func(vals url.Values) (int, map[string]any) {
		return e.postForm("/oauth/par", vals, id, app.ClientSecret)
	}
	status, m := push(url.Values{"redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"friends"}, "state": {"pushed"}})
	uri, _ := m["request_uri"].(string)
	if status != 201 || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || m["expires_in"] != float64(60) {
		t.Fatalf("push: %d %v", status, m)
	}
	b := e.browser()
	b.get(e.URL + "/authorize?" + url.Values{"client_id": {id}, "request_uri": {uri}}.Encode())
	to := b.login("paula", "password-paula")
	if to == "" {
		to = b.approve()
	}
	q := query(t, to)
	if !strings.HasPrefix(to, redirect+"?") || q.Get("state") != "pushed" || q.Get("code") == "" {
		t.Fatalf("the pushed request answered %q", to)
	}
	if status, m := e.postForm("/access_token", url.Values{"code": {q.Get("code")}, "redirect_uri": {redirect}}, id, app.ClientSecret); status != 200 {
		t.Fatalf("exchange: %d %v", status, m)
	}
	// Once only.
	again := e.browser()
	again.get(e.URL + "/authorize?" + url.Values{"client_id": {id}, "request_uri": {uri}}.Encode())
	if again.status != 400 {
		t.Fatalf("a used request_uri: %d, want 400", again.status)
	}
	// Another app's client_id does not open it.
	_, m = push(url.Values{"redirect_uri": {redirect}, "scope": {"friends"}})
	stolen := e.browser()
	stolen.get(e.URL + "/authorize?" + url.Values{"client_id": {fmt.Sprint(other.ID)}, "request_uri": {m["request_uri"].(string)}}.Encode())
	if stolen.status != 400 {
		t.Fatalf("another app's request_uri: %d, want 400", stolen.status)
	}
	// Bad pushes.
	for name, vals := range map[string]url.Values{
		"an unregistered redirect URI": {"redirect_uri": {"https://evil.example/cb"}},
		"an unknown scope":             {"redirect_uri": {redirect}, "scope": {"root"}},
		"a request_uri inside":         {"redirect_uri": {redirect}, "request_uri": {uri}},
		"a duplicated parameter":       {"redirect_uri": {redirect, redirect}},
	} {
		if status, m := push(vals); status != 400 || m["error"] == nil {
			t.Errorf("push with %s: %d %v, want 400 with an error", name, status, m)
		}
	}
	if status, _ := e.postForm("/oauth/par", url.Values{"redirect_uri": {redirect}}, id, "wrong"); status != 401 {
		t.Fatalf("push with a wrong secret: %d, want 401", status)
	}
}
