package e2e

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// documentHost serves client ID metadata documents over HTTPS on loopback:
// path → the handler's answer. fetches counts the requests per path.
type documentHost struct {
	srv     *httptest.Server
	fetches map[string]*atomic.Int64
}

func newDocumentHost(t *testing.T, docs map[string]http.HandlerFunc) *documentHost {
	h := &documentHost{fetches: map[string]*atomic.Int64{}}
	mux := http.NewServeMux()
	for path, fn := range docs {
		n := &atomic.Int64{}
		h.fetches[path] = n
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { n.Add(1); fn(w, r) })
	}
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *documentHost) url(path string) string { return h.srv.URL + path }

func (h *documentHost) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.srv.Certificate())
	return p
}

// jsonDocument answers a document with its own URL as client_id, unless
// clientID says otherwise, and the given Cache-Control.
func jsonDocument(clientID func(r *http.Request) string, cacheControl string, extra map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		doc := map[string]any{"client_id": clientID(r), "client_name": "Document client", "redirect_uris": []string{"http://127.0.0.1:41111/cb"},
			"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"}, "response_types": []string{"code"}}
		for k, v := range extra {
			doc[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		json.NewEncoder(w).Encode(doc)
	}
}

func selfURL(r *http.Request) string { return "https://" + r.Host + r.URL.Path }

// A client whose client_id is the URL of its metadata document signs a
// person in and gets a token like any public client; the document is
// fetched once while its Cache-Control says it is fresh and again after.
// Documents too large, too slow, redirecting, naming another client_id,
// holding a secret, not JSON or on a refused address are each refused with
// a clear error, and nothing is stored. On both backends.
func TestClientMetadataDocuments(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testClientMetadataDocuments(t, "") })
	t.Run("postgres", func(t *testing.T) { testClientMetadataDocuments(t, testenv.PostgresDSN(t)) })
}

func testClientMetadataDocuments(t *testing.T, dsn string) {
	key := newECKey(t, "doc-key")
	var keysURL string
	host := newDocumentHost(t, map[string]http.HandlerFunc{
		"/keys.json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(key.jwks()))
		},
		"/keyed.json": func(w http.ResponseWriter, r *http.Request) {
			jsonDocument(selfURL, "", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": keysURL, "client_name": "Keyed client"})(w, r)
		},
		"/good.json":     jsonDocument(selfURL, "max-age=60", nil),
		"/large.json":    jsonDocument(selfURL, "", map[string]any{"client_uri": "https://x.example/" + strings.Repeat("a", 6000)}),
		"/other.json":    jsonDocument(func(*http.Request) string { return "https://elsewhere.example/client.json" }, "", nil),
		"/secret.json":   jsonDocument(selfURL, "", map[string]any{"client_secret": "s3cret"}),
		"/redirect.json": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/good.json", http.StatusFound) },
		"/text.json":     func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("client_id=x")) },
		"/slow.json": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(8 * time.Second):
			}
		},
	})
	e := start(t, startOptions{dsn: dsn, outboundCAs: host.pool()}, func(c *config.Config) {
		c.CallbackTargets = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	_, meta := e.getJSON(e.URL + "/.well-known/oauth-authorization-server")
	if meta["client_id_metadata_document_supported"] != true {
		t.Fatalf("the metadata does not say documents are supported: %v", meta)
	}
	person := e.user("docuser", "")
	good := host.url("/good.json")
	keysURL = host.url("/keys.json")
	verifier := strings.Repeat("v", 50)
	authorize := func(clientID string) string {
		return e.authorize(map[string]string{"client_id": clientID, "redirect_uri": "http://127.0.0.1:41111/cb", "response_type": "code",
			"code_challenge": challengeOf(verifier), "code_challenge_method": "S256", "state": "st"})
	}

	b := e.browser()
	if to := b.get(authorize(good)); to != "" {
		t.Fatalf("/authorize for a document client went to %s", to)
	}
	b.login(person.Login, "password-"+person.Login)
	if !strings.Contains(b.page, "Not verified") || !strings.Contains(b.page, "Document client") {
		t.Fatalf("the consent dialog for a document client:\n%s", b.page)
	}
	to := b.approve()
	u, _ := url.Parse(to)
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", to)
	}
	status, tok := e.postForm("/access_token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {good},
		"redirect_uri": {"http://127.0.0.1:41111/cb"}, "code_verifier": {verifier}}, "", "")
	if status != 200 || tok["access_token"] == nil {
		t.Fatalf("the token of a document client: %d %v", status, tok)
	}
	if n := host.fetches["/good.json"].Load(); n != 1 {
		t.Fatalf("the document was fetched %d times within its max-age, want once", n)
	}
	b.get(e.URL + "/settings/apps")
	if !strings.Contains(b.page, "Document client") || !strings.Contains(b.page, "not verified") {
		t.Fatalf("the authorized apps page does not mark the document client:\n%s", b.page)
	}
	e.Clock.Advance(2 * time.Minute)
	if to := b.get(authorize(good)); to == "" {
		t.Fatalf("a second authorization did not go straight back: %d %s", b.status, b.page)
	}
	if n := host.fetches["/good.json"].Load(); n != 2 {
		t.Fatalf("the document was fetched %d times after its max-age passed, want twice", n)
	}
	if status, _ := e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}, "client_id": {good}, "client_secret": {"x"}}, "", ""); status == 200 {
		t.Fatal("a document client authenticated with a secret")
	}

	// A document client that authenticates with private_key_jwt and the
	// keys at its jwks_uri.
	keyed := host.url("/keyed.json")
	to = b.get(authorize(keyed))
	if to == "" {
		to = b.approve()
	}
	u, _ = url.Parse(to)
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "client_id": {keyed},
		"redirect_uri": {"http://127.0.0.1:41111/cb"}, "code_verifier": {verifier}}
	if status, m := e.postForm("/access_token", exchange, "", ""); status != 401 {
		t.Fatalf("a keyed document client without its assertion: %d %v", status, m)
	}
	if status, m := e.postForm("/access_token", withAssertion(exchange, key.assertion(t, keyed, e.URL, e.Clock.Now(), nil)), "", ""); status != 200 || m["access_token"] == nil {
		t.Fatalf("a keyed document client with its assertion: %d %v", status, m)
	}

	before := e.appCount()
	for _, c := range []struct{ name, path, why string }{
		{"too large", "/large.json", "larger than 5 KB"},
		{"naming another client_id", "/other.json", "client_id is not its own URL"},
		{"holding a secret", "/secret.json", "client_secret"},
		{"redirecting", "/redirect.json", "answered 302"},
		{"not JSON", "/text.json", "not JSON"},
		{"too slow", "/slow.json", "did not arrive within 5s"},
	} {
		b := e.browser()
		b.get(authorize(host.url(c.path)))
		if b.status != http.StatusBadRequest && b.status != http.StatusUnauthorized || !strings.Contains(b.page, c.why) {
			t.Errorf("a document %s: %d, the page lacks %q", c.name, b.status, c.why)
		}
	}
	if after := e.appCount(); after != before {
		t.Fatalf("refused documents stored %d apps", after-before)
	}

	// Without --callback-allow, a document on loopback is not fetched.
	strict := start(t, startOptions{outboundCAs: host.pool()})
	fetched := host.fetches["/good.json"].Load()
	sb := strict.browser()
	sb.get(strict.authorize(map[string]string{"client_id": good, "redirect_uri": "http://127.0.0.1:41111/cb", "response_type": "code",
		"code_challenge": challengeOf(verifier), "code_challenge_method": "S256"}))
	if !strings.Contains(sb.page, "not reachable from this server") || host.fetches["/good.json"].Load() != fetched {
		t.Fatalf("a document on loopback without --callback-allow: %d %s", sb.status, sb.page)
	}
}

// The official MCP SDK's client with a clientMetadataUrl uses it as its
// client_id instead of registering, and calls the tool.
func TestMCPClientWithAMetadataDocument(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	host := newDocumentHost(t, map[string]http.HandlerFunc{
		"/mcp-client.json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"client_id": selfURL(r), "client_name": "MCP document client",
				"redirect_uris": []string{fmt.Sprintf("http://127.0.0.1:%d/callback", port)}, "token_endpoint_auth_method": "none",
				"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}})
		},
	})
	e := start(t, startOptions{outboundCAs: host.pool()}, registrationMode("off"), func(c *config.Config) {
		c.CallbackTargets = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	dev := e.user("docdev", "")
	person := e.user("docagent", "")
	_, srvLines, _ := nodeClient(t, "mcp-server.mjs", "jose", e.URL)
	server := nodeLine(t, srvLines.Scan, srvLines.Bytes)["url"].(string)
	if _, err := e.P.APIs.CreateAPI(t.Context(), platform.CLI, platform.NewAPI{OwnerID: dev.ID, Identifier: server, APISettings: platform.APISettings{
		Name: "Test MCP server", TokenFormat: storage.TokenJWT, Scopes: []platform.ScopeSpec{{Name: "mcp:tools", EN: "Use the server's tools", RU: "Пользоваться инструментами сервера"}}}}); err != nil {
		t.Fatal(err)
	}
	_, lines, _ := nodeClient(t, "mcp-client.mjs", server, host.url("/mcp-client.json"), fmt.Sprint(port))
	authorize := nodeLine(t, lines.Scan, lines.Bytes)["authorize"].(string)
	if !strings.Contains(authorize, "client_id="+url.QueryEscape(host.url("/mcp-client.json"))) {
		t.Fatalf("the client did not use its document's URL as client_id: %s", authorize)
	}
	consent := signInAndAllow(t, authorize, person.Login)
	if !strings.Contains(consent, "Not verified") || !strings.Contains(consent, "MCP document client") {
		t.Errorf("the consent dialog:\n%s", consent)
	}
	got := nodeLine(t, lines.Scan, lines.Bytes)
	result := got["result"].(map[string]any)
	if result["verified_by"] != "jose" || result["sub"] != fmt.Sprint(person.ID) || got["client"].(map[string]any)["client_id"] != host.url("/mcp-client.json") {
		t.Fatalf("the client printed %v", got)
	}
}

// New metadata documents are fetched for one client address at most
// --registration-rate times an hour (each becomes an app); documents
// already known are not counted.
func TestNewClientDocumentsAreThrottledPerAddress(t *testing.T) {
	host := newDocumentHost(t, map[string]http.HandlerFunc{"/doc/": jsonDocument(selfURL, "max-age=3600", nil)})
	e := start(t, startOptions{outboundCAs: host.pool()}, func(c *config.Config) {
		c.CallbackTargets = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.RegistrationRate = 2
	})
	try := func(path string) int {
		b := e.browser()
		b.get(e.authorize(map[string]string{"client_id": host.url(path), "redirect_uri": "http://127.0.0.1:41111/cb", "response_type": "code",
			"code_challenge": challengeOf(strings.Repeat("v", 50)), "code_challenge_method": "S256"}))
		if strings.Contains(b.page, "too many new client metadata documents") {
			return http.StatusTooManyRequests
		}
		return b.status
	}
	for _, path := range []string{"/doc/a.json", "/doc/b.json", "/doc/a.json"} {
		if status := try(path); status != http.StatusOK {
			t.Fatalf("%s: %d, want the login page", path, status)
		}
	}
	if status := try("/doc/c.json"); status != http.StatusTooManyRequests {
		t.Fatalf("a third new document within the hour: %d, want refused", status)
	}
	if n := host.fetches["/doc/"].Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (the refused one is not fetched)", n)
	}
}
