package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/net/websocket"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// upstream is an API behind the gateway: it echoes what reached it, streams
// Server-Sent Events, and echoes WebSocket messages.
func upstream(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "query": r.URL.RawQuery, "method": r.Method, "headers": r.Header})
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			if i < 2 {
				<-r.Context().Done() // the next only when the client has gone: the first must arrive alone
				return
			}
		}
	})
	mux.Handle("/ws", websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// An API behind the gateway needs no OAuth code: a token for it reaches the
// upstream with who is calling in X-Latchkey-* (spoofed ones dropped, the
// credentials removed); a missing, revoked or other API's token is 401
// with the RFC 9728 metadata, a route's missing scope 403, beyond the rate
// 429; Server-Sent Events stream, WebSockets pass; an upstream that is down
// is 502; forward authentication answers the same.
func TestGatewayMode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dev := e.user("gwdev", "")
	up := upstream(t)
	shop, err := e.P.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
		Name: "Shop", Slug: "shop", Upstream: up.URL, Rate: 5,
		Scopes: []platform.ScopeSpec{{Name: "shop:read", EN: "See the shop", RU: "Смотреть магазин"}, {Name: "shop:write", EN: "Order", RU: "Заказывать"}},
		Routes: []storage.APIRoute{{Method: "POST", Prefix: "/orders", Scope: "shop:write"}}}})
	if err != nil {
		t.Fatal(err)
	}
	down, err := e.P.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
		Name: "Down", Slug: "down", Upstream: "http://127.0.0.1:1", Scopes: []platform.ScopeSpec{{Name: "down:read", EN: "Read", RU: "Читать"}}}})
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
	do := func(method, path, tok string, header http.Header) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.URL+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		e.Clock.Advance(time.Second) // the per-token rate, except where a test means it
		return resp
	}
	if shop.Identifier != e.URL+"/api/shop" {
		t.Fatalf("a gateway API's identifier: %s", shop.Identifier)
	}
	read := token(shop, "shop:read")

	resp := do("GET", "/api/shop/echo?x=1&y=2", read, http.Header{"X-Latchkey-Subject": {"1"}, "X-Latchkey-Anything": {"spoofed"}, "Dpop": {"junk"}})
	var echoed struct {
		Path, Query string
		Headers     http.Header
	}
	json.NewDecoder(resp.Body).Decode(&echoed)
	h := echoed.Headers
	if resp.StatusCode != 200 || echoed.Path != "/echo" || echoed.Query != "x=1&y=2" {
		t.Fatalf("through the gateway: %d %+v", resp.StatusCode, echoed)
	}
	if h.Get("X-Latchkey-Client-Id") != fmt.Sprint(app.ID) || h.Get("X-Latchkey-Scope") != "shop:read" || h.Get("X-Latchkey-Subject") != "" ||
		len(h.Get("X-Latchkey-Token-Id")) != 32 || strings.Contains(h.Get("X-Latchkey-Token-Id"), read) {
		t.Fatalf("the caller's headers at the upstream: %v", h)
	}
	if h.Get("Authorization") != "" || h.Get("Dpop") != "" || h.Get("X-Latchkey-Anything") != "" || h.Get("X-Forwarded-Host") == "" {
		t.Fatalf("the upstream saw credentials or spoofed headers: %v", h)
	}

	metadata := `resource_metadata="` + e.URL + `/.well-known/oauth-protected-resource/api/shop"`
	for _, c := range []struct {
		name, method, path, tok string
		status                  int
		challenge               string
	}{
		{"no token", "GET", "/api/shop/echo", "", 401, metadata},
		{"another API's token", "GET", "/api/shop/echo", token(other, "orders:read"), 401, `error="invalid_token"`},
		{"a route's missing scope", "POST", "/api/shop/orders", read, 403, `error="insufficient_scope", scope="shop:write"`},
		{"an encoded slash", "GET", "/api/shop/a%2Fb", read, 400, ""},
		{"no such API", "GET", "/api/nothing/echo", read, 404, ""},
		{"an upper-case slug", "GET", "/api/SHOP/echo", read, 404, ""},
		{"an upstream that is down", "GET", "/api/down/echo", token(down, "down:read"), 502, ""},
	} {
		resp := do(c.method, c.path, c.tok, nil)
		if resp.StatusCode != c.status || !strings.Contains(resp.Header.Get("WWW-Authenticate"), c.challenge) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), c.status, c.challenge)
		}
	}
	if resp := do("POST", "/api/shop/orders", token(shop, "shop:read shop:write"), nil); resp.StatusCode == 403 {
		t.Fatal("a token with the route's scope refused")
	}

	// Server-Sent Events arrive as they are written.
	resp = do("GET", "/api/shop/events", read, nil)
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || first != "data: event 0\n" {
		t.Fatalf("the first event did not arrive alone: %q %v", first, err)
	}
	resp.Body.Close()

	// A WebSocket echo through the gateway.
	wsURL := "ws" + strings.TrimPrefix(e.URL, "http") + "/api/shop/ws"
	cfg, _ := websocket.NewConfig(wsURL, e.URL)
	cfg.Header = http.Header{"Authorization": {"Bearer " + read}}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("a WebSocket through the gateway: %v", err)
	}
	websocket.Message.Send(ws, "ping")
	var back string
	if err := websocket.Message.Receive(ws, &back); err != nil || back != "ping" {
		t.Fatalf("the WebSocket echo: %q %v", back, err)
	}
	ws.Close()

	// Forward authentication, as nginx's auth_request asks.
	check := func(uri, method, tok string) *http.Response {
		u, _ := url.Parse(e.URL)
		return do("GET", "/oauth/check", tok, http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {u.Host}, "X-Original-Uri": {uri}, "X-Original-Method": {method}})
	}
	if resp := check("/api/shop/echo?x=1", "GET", read); resp.StatusCode != 200 || resp.Header.Get("X-Latchkey-Scope") != "shop:read" {
		t.Fatalf("forward authentication of a good token: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := check("/api/shop/orders", "POST", read); resp.StatusCode != 403 {
		t.Fatalf("forward authentication of a route's missing scope: %d", resp.StatusCode)
	}
	if resp := check("/api/shop/echo", "GET", ""); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), metadata) {
		t.Fatalf("forward authentication without a token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Revoked: refused at once on this node.
	if status, _ := e.postForm("/oauth/revoke", url.Values{"token": {read}}, fmt.Sprint(app.ID), app.ClientSecret); status != 200 {
		t.Fatal("revoke")
	}
	if resp := do("GET", "/api/shop/echo", read, nil); resp.StatusCode != 401 {
		t.Fatalf("a revoked token: %d", resp.StatusCode)
	}

	// Beyond the API's rate (5 a second) with one token: 429.
	fresh := token(shop, "shop:read")
	statuses := map[int]int{}
	for range 8 {
		req, _ := http.NewRequest("GET", e.URL+"/api/shop/echo", nil)
		req.Header.Set("Authorization", "Bearer "+fresh)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if statuses[429] == 0 || statuses[200] == 0 {
		t.Fatalf("8 calls at once with a rate of 5: %v, want some 200 then 429", statuses)
	}
}

// Hostile requests at the gateway each get a clear answer, never a 5xx of
// Latchkey's own (502/504 are the upstream's), and nothing leaks: path
// tricks, huge headers, request smuggling, an upstream that never answers
// and one whose answer never ends (it streams, unbuffered).
func TestGatewayHostileRequests(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	dev := e.user("hostile", "")
	var reached atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { reached.Add(1); io.WriteString(w, "ok") })
	mux.HandleFunc("/never", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	shop, err := e.P.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
		Name: "Shop", Slug: "shop", Upstream: up.URL, Rate: 1000, Scopes: []platform.ScopeSpec{{Name: "shop:read", EN: "See", RU: "Смотреть"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
		Name: "Other", Slug: "other", Upstream: up.URL, Scopes: []platform.ScopeSpec{{Name: "other:read", EN: "See", RU: "Смотреть"}}}}); err != nil {
		t.Fatal(err)
	}
	app := e.app(dev.ID, storage.Web, "https://svc.example/cb")
	if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	_, m := e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}, "resource": {shop.Identifier}, "scope": {"shop:read"}},
		fmt.Sprint(app.ID), app.ClientSecret)
	tok := m["access_token"].(string)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(path string, header http.Header) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		req.Header = header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, c := range []struct {
		name, path string
		header     http.Header
		status     int
	}{
		{"a dot-dot out of the API", "/api/shop/../other/echo", nil, http.StatusTemporaryRedirect},
		{"a doubled slash", "/api/shop//echo", nil, http.StatusTemporaryRedirect},
		{"an encoded slash", "/api/shop/%2e%2e%2fother/echo", nil, http.StatusBadRequest},
		{"another API's slug", "/api/other/echo", nil, http.StatusUnauthorized},
		{"an upper-case slug", "/api/Shop/echo", nil, http.StatusNotFound},
		{"a slug alone", "/api/shop", nil, http.StatusNotFound},
		{"huge headers", "/api/shop/echo", http.Header{"X-Huge": {strings.Repeat("a", 2<<20)}}, http.StatusRequestHeaderFieldsTooLarge},
		{"an upstream that never answers", "/api/shop/never", nil, http.StatusGatewayTimeout},
	} {
		before := reached.Load()
		resp := do(c.path, c.header)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.status)
		}
		if c.status != http.StatusOK && reached.Load() != before {
			t.Errorf("%s reached the upstream", c.name)
		}
	}

	// Content-Length with Transfer-Encoding: the body is read as chunked
	// (RFC 9112 §6.3), so what follows it is a request of its own, with
	// no token: nothing is smuggled to the upstream inside the first.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := reached.Load()
	fmt.Fprintf(conn, "POST /api/shop/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/shop/echo HTTP/1.1\r\nHost: x\r\n\r\n", tok)
	br := bufio.NewReader(conn)
	var statuses []int
	for range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answers to a smuggling attempt: %v (got %v)", err, statuses)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != 200 || statuses[1] != 401 || reached.Load()-before != 1 {
		t.Fatalf("a request with Content-Length and Transfer-Encoding: answers %v, the upstream reached %d times; want 200, then 401 for the request that followed, and one request upstream",
			statuses, reached.Load()-before)
	}

	// An answer that never ends streams through: 64 MB read, then gone.
	resp := do("/api/shop/endless", nil)
	n, err := io.CopyN(io.Discard, resp.Body, 64<<20)
	if err != nil || n != 64<<20 || resp.StatusCode != 200 {
		t.Fatalf("an endless answer: %d bytes, %v, status %d", n, err, resp.StatusCode)
	}
	resp.Body.Close()
}

// Requests for an API are counted per API, mode and answer, its upstream
// timed, and the upstream call is a span the upstream continues; the token
// is in neither.
func TestGatewayMetricsAndSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	e := start(t, startOptions{tracing: tp})
	dev := e.user("metered", "")
	var traceparent atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent.Store(r.Header.Get("Traceparent"))
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	shop, err := e.P.APIs.CreateAPI(t.Context(), platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
		Name: "Shop", Slug: "shop", Upstream: up.URL, Scopes: []platform.ScopeSpec{{Name: "shop:read", EN: "See", RU: "Смотреть"}}}})
	if err != nil {
		t.Fatal(err)
	}
	app := e.app(dev.ID, storage.Web, "https://svc.example/cb")
	if _, err := e.P.Apps.SetClientCredentials(t.Context(), platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	_, m := e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}, "resource": {shop.Identifier}, "scope": {"shop:read"}},
		fmt.Sprint(app.ID), app.ClientSecret)
	tok := m["access_token"].(string)
	get := func(path string, header http.Header) int {
		t.Helper()
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	exp.Reset()
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	u, _ := url.Parse(e.URL)
	statuses := []int{
		get("/api/shop/items", bearer),
		get("/api/shop/items", nil),
		get("/oauth/check", http.Header{"Authorization": {"Bearer " + tok}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {u.Host}, "X-Original-Uri": {"/api/shop/items"}}),
	}
	if statuses[0] != 200 || statuses[1] != 401 || statuses[2] != 200 {
		t.Fatalf("answers %v, want 200 401 200", statuses)
	}

	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metricsText := string(body)
	api := `api="` + shop.Identifier + `"`
	for _, want := range []string{
		`latchkey_gateway_requests_total{` + api + `,mode="proxy",status="200"} 1`,
		`latchkey_gateway_requests_total{` + api + `,mode="proxy",status="401"} 1`,
		`latchkey_gateway_requests_total{` + api + `,mode="check",status="200"} 1`,
		`latchkey_gateway_upstream_duration_seconds_count{` + api + `} 1`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s\n%s", want, grepLines(metricsText, "latchkey_gateway"))
		}
	}
	if strings.Contains(metricsText, tok) {
		t.Error("/metrics shows the token")
	}

	var upstreamSpan *tracetest.SpanStub
	spans := exp.GetSpans()
	byID := map[string]tracetest.SpanStub{}
	for i, s := range spans {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.String(), tok) {
				t.Errorf("span %q has the token in %s", s.Name, a.Key)
			}
		}
		byID[s.SpanContext.SpanID().String()] = s
		if s.Name == "gateway upstream" {
			upstreamSpan = &spans[i]
		}
	}
	if upstreamSpan == nil {
		t.Fatalf("no upstream span among %d", len(spans))
	}
	if parent := byID[upstreamSpan.Parent.SpanID().String()]; parent.Name != "HTTP GET /api/" {
		t.Errorf("the upstream span's parent is %q, not the request's span", parent.Name)
	}
	seen, _ := traceparent.Load().(string)
	if !strings.Contains(seen, upstreamSpan.SpanContext.TraceID().String()) || !strings.Contains(seen, upstreamSpan.SpanContext.SpanID().String()) {
		t.Errorf("the upstream got traceparent %q, not the upstream span's", seen)
	}
}

// Forward authentication finds a URL's API in memory: checks of URLs no API
// serves, each with many path segments, read no API from storage (where
// trying each prefix in storage would read 17 per check).
func TestForwardAuthOfUnknownURLsReadsNoStorage(t *testing.T) {
	e := newEnv(t)
	dev := e.user("prefixes", "")
	e.api(dev.ID, "https://shop.example/v1", storage.TokenOpaque)
	apiReads := func() int {
		t.Helper()
		resp, err := http.Get(e.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for l := range strings.Lines(string(body)) {
			if rest, ok := strings.CutPrefix(l, `latchkey_storage_duration_seconds_count{op="select apis"} `); ok {
				var n int
				fmt.Sscan(rest, &n)
				return n
			}
		}
		return 0
	}
	check := func(host, uri string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", e.URL+"/oauth/check", nil)
		req.Header = http.Header{"Authorization": {"Bearer lku1nonsense"}, "X-Forwarded-Host": {host}, "X-Original-Uri": {uri}}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := check("shop.example", "/v1/orders"); status != 401 {
		t.Fatalf("a bad token for a known API: %d", status)
	}
	before := apiReads()
	deep := strings.Repeat("/segment", 30)
	for i := range 50 {
		if status := check(fmt.Sprintf("unknown%d.example", i), deep); status != 401 {
			t.Fatalf("a URL no API serves: %d", status)
		}
	}
	if reads := apiReads() - before; reads > 2 {
		t.Fatalf("50 checks of URLs no API serves read APIs from storage %d times", reads)
	}
}
