package bench

import (
	"context"
	"fmt"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkAPIHandler measures one API call through the whole server handler
// (middleware, dispatcher, token check, rate limiter, envelope), without the
// network.
func BenchmarkAPIHandler(b *testing.B) { benchAPIHandler(b, Options{}) }

// BenchmarkAPIHandlerTraced is the same call with tracing on: every
// request sampled, its spans batched to an exporter that drops them.
func BenchmarkAPIHandlerTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	benchAPIHandler(b, Options{Tracing: tp})
}

func benchAPIHandler(b *testing.B, o Options) {
	o.Tokens, o.Duration, o.Concurrency = 1, time.Second, 1
	t, err := newTarget(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	h := t.srv.Handler
	req := httptest.NewRequest("GET", "/method/account.getAppPermissions?v=5.199&access_token="+t.tokens[0], nil)
	b.ReportAllocs()
	for b.Loop() {
		r := req.Clone(context.Background())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkTokenHandler measures one token request through the whole
// server handler, one at a time (so ns/op is about the server's CPU per
// token): client credentials for the built-in API, and for an API with
// opaque and with JWT (RS256) tokens; and an API's introspection of one of
// its tokens.
func BenchmarkTokenHandler(b *testing.B) {
	t, err := newTarget(context.Background(), Options{Tokens: 1, Duration: time.Second, Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	form := func(extra url.Values) string {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {fmt.Sprint(t.app.ID)}, "client_secret": {t.app.ClientSecret}}
		for k, vs := range extra {
			v[k] = vs
		}
		return v.Encode()
	}
	opaque := t.apis[storage.TokenOpaque]
	issued, err := t.p.Issuer.ClientCredentials(context.Background(), t.app.App, t.app.Secret.Hash, "", &opaque.API, 1, "")
	if err != nil {
		b.Fatal(err)
	}
	jwtForm := form(url.Values{"resource": {t.apis[storage.TokenJWT].Identifier}, "scope": {"load:read"}})
	for _, c := range []struct{ name, path, body string }{
		{"client-credentials", "/access_token", form(nil)},
		{"api-opaque", "/access_token", form(url.Values{"resource": {opaque.Identifier}, "scope": {"load:read"}})},
		{"api-jwt-rs256", "/access_token", jwtForm},
		{"api-jwt-es256", "/access_token", jwtForm},
		{"api-introspection", "/oauth/introspect", url.Values{"token": {issued.Access}, "client_id": {opaque.IntrospectionClientID},
			"client_secret": {opaque.IntrospectionSecret}}.Encode()},
	} {
		if c.name == "api-jwt-es256" {
			if _, err := t.p.Signing.RotateAlg(context.Background(), platform.CLI, "ES256"); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", c.path, strings.NewReader(c.body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				w := httptest.NewRecorder()
				t.srv.Handler.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkGatewayHandler measures one proxied call through the whole
// server handler with its token check, beside a bare httputil.ReverseProxy
// to the same upstream (its Transport keeping idle connections as the
// gateway's does); and /oauth/check beside a bare handler writing the same
// answer. One call at a time: the difference of two ns/op is the CPU the
// gateway adds.
func BenchmarkGatewayHandler(b *testing.B) {
	t, err := newTarget(context.Background(), Options{Tokens: 1, Duration: time.Second, Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"items":[1,2,3]}`)) }))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	api, err := t.p.APIs.CreateAPI(context.Background(), platform.CLI, platform.NewAPI{OwnerID: t.user.ID, APISettings: platform.APISettings{
		Name: "Bench gateway", Slug: "bench", Upstream: up.URL, Rate: 1_000_000, Scopes: []platform.ScopeSpec{{Name: "load:read", EN: "Read", RU: "Читать"}}}})
	if err != nil {
		b.Fatal(err)
	}
	issued, err := t.p.Issuer.ClientCredentials(context.Background(), t.app.App, t.app.Secret.Hash, "", &api.API, 1, "")
	if err != nil {
		b.Fatal(err)
	}
	bare := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	bareCheck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"X-Latchkey-Subject", "X-Latchkey-Client-Id", "X-Latchkey-Scope", "X-Latchkey-Token-Id"} {
			w.Header().Set(k, "x")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"subject":"","client_id":"1","scope":"load:read"}`))
	})
	host := strings.TrimPrefix(t.base, "http://")
	for _, c := range []struct {
		name, path string
		h          http.Handler
	}{
		{"proxy-bare", "/items", bare},
		{"gateway", "/api/bench/items", t.srv.Handler},
		{"check-bare", "/oauth/check", bareCheck},
		{"check", "/oauth/check", t.srv.Handler},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", c.path, nil)
				r.Host = host
				r.Header.Set("Authorization", "Bearer "+issued.Access)
				r.Header.Set("X-Forwarded-Host", host)
				r.Header.Set("X-Forwarded-Proto", "http")
				r.Header.Set("X-Original-Uri", "/api/bench/items")
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
