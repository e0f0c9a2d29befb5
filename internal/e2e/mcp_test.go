package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// nodeLine waits for the next JSON line a Node script prints.
func nodeLine(t *testing.T, next func() bool, text func() []byte) map[string]any {
	t.Helper()
	done := make(chan bool, 1)
	go func() { done <- next() }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the Node script stopped")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the Node script said nothing for 60 s")
	}
	var m map[string]any
	if err := json.Unmarshal(text(), &m); err != nil {
		t.Fatalf("the Node script printed %q", text())
	}
	return m
}

// signInAndAllow has a person sign in and allow at authorize in a real
// headless Chromium, and returns the consent dialog's text.
func signInAndAllow(t *testing.T, authorize, login string) string {
	t.Helper()
	ctx := testenv.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(authorize), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, login), chromedp.SendKeys(`input[name=password]`, "password-"+login),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`button[name=decision][value=allow]`)); err != nil {
		t.Fatal(err)
	}
	consent, err := chromedp.Run(ctx, chromedp.Text(`main`))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Screenshot(t, ctx, "consent-registered-client")
	if err := chromedp.Do(ctx, chromedp.Click(`button[name=decision][value=allow]`), chromedp.WaitVisible(`body`)); err != nil {
		t.Fatal(err)
	}
	return consent
}

// The official MCP SDK, end to end: an MCP client registers itself at
// Latchkey (RFC 7591), a person signs in and allows in Chromium (the dialog
// marks the client not verified and names where the answer goes), the
// client gets a token for the MCP server (RFC 8707 resource) and calls its
// tool — (a) a server that verifies Latchkey's JWTs itself with jose and
// serves its own RFC 9728 metadata, (b) the same server behind Latchkey's
// gateway, knowing the caller from the X-Latchkey-* headers.
func TestMCPAgents(t *testing.T) {
	e := newEnv(t, registrationMode("open"))
	dev := e.user("mcpdev", "")
	person := e.user("agentuser", "")

	t.Run("a server verifying JWTs with jose", func(t *testing.T) {
		_, srvLines, _ := nodeClient(t, "mcp-server.mjs", "jose", e.URL)
		server := nodeLine(t, srvLines.Scan, srvLines.Bytes)["url"].(string)
		if _, err := e.P.APIs.CreateAPI(t.Context(), platform.CLI, platform.NewAPI{OwnerID: dev.ID, Identifier: server, APISettings: platform.APISettings{
			Name: "Test MCP server", TokenFormat: storage.TokenJWT, Scopes: []platform.ScopeSpec{{Name: "mcp:tools", EN: "Use the server's tools", RU: "Пользоваться инструментами сервера"}}}}); err != nil {
			t.Fatal(err)
		}
		got := runMCPClient(t, e, server, person.Login)
		result := got["result"].(map[string]any)
		if result["verified_by"] != "jose" || result["sub"] != fmt.Sprint(person.ID) || result["aud"] != server || result["scope"] != "mcp:tools" {
			t.Fatalf("the tool saw %v", result)
		}
	})

	t.Run("the same server behind the gateway", func(t *testing.T) {
		_, srvLines, _ := nodeClient(t, "mcp-server.mjs", "gateway")
		upstream := strings.TrimSuffix(nodeLine(t, srvLines.Scan, srvLines.Bytes)["url"].(string), "/mcp")
		api, err := e.P.APIs.CreateAPI(t.Context(), platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
			Name: "Test MCP server behind the gateway", Slug: "mcp", Upstream: upstream, Rate: 1000,
			Scopes: []platform.ScopeSpec{{Name: "mcp:tools", EN: "Use the server's tools", RU: "Пользоваться инструментами сервера"}}}})
		if err != nil {
			t.Fatal(err)
		}
		got := runMCPClient(t, e, api.Identifier+"/mcp", person.Login)
		result := got["result"].(map[string]any)
		if result["verified_by"] != "gateway" || result["sub"] != fmt.Sprint(person.ID) || result["scope"] != "mcp:tools" || result["saw_authorization"] != false {
			t.Fatalf("the tool saw %v", result)
		}
	})
}

// runMCPClient runs the SDK's client against server, has login sign in and
// allow, and returns what the client printed once the tool answered.
func runMCPClient(t *testing.T, e *env, server, login string) map[string]any {
	t.Helper()
	_, lines, _ := nodeClient(t, "mcp-client.mjs", server)
	authorize := nodeLine(t, lines.Scan, lines.Bytes)["authorize"].(string)
	if !strings.HasPrefix(authorize, e.URL+"/authorize?") || !strings.Contains(authorize, "resource=") || !strings.Contains(authorize, "code_challenge=") {
		t.Fatalf("the client's authorization URL: %s", authorize)
	}
	consent := signInAndAllow(t, authorize, login)
	if !strings.Contains(consent, "Not verified") || !strings.Contains(consent, "127.0.0.1:") || !strings.Contains(consent, "Use the server's tools") {
		t.Errorf("the consent dialog for a registered client:\n%s", consent)
	}
	got := nodeLine(t, lines.Scan, lines.Bytes)
	client := got["client"].(map[string]any)
	if client["registered"] != true || got["iss"] != e.URL || fmt.Sprint(got["tools"]) != "[whoami]" {
		t.Fatalf("the client printed %v", got)
	}
	app, err := e.P.Apps.LookupApp(t.Context(), parseID(t, client["client_id"]))
	if err != nil || app.OwnerID != 0 || app.Title != "MCP test client" || app.Type != storage.Standalone {
		t.Fatalf("the registered client's app: %+v %v", app, err)
	}
	return got
}
