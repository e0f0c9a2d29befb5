package httpx

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A request the client aborted fails with its context's error: that is
// logged as a client abort (499) at INFO, not as a server error at ERROR.
func TestClientAbortIsNotAServerError(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := Observe(log, NewMetrics(prometheus.NewRegistry()), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the storage call fails with context.Canceled
		if ClientGone(r, r.Context().Err()) {
			w.WriteHeader(http.StatusInternalServerError) // what a careless handler would answer
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/apps", nil))
	line := logs.String()
	if !strings.Contains(line, "status=499") || !strings.Contains(line, "level=INFO") || strings.Contains(line, "level=ERROR") {
		t.Fatalf("access log: %s", line)
	}

	logs.Reset()
	h = Observe(log, NewMetrics(prometheus.NewRegistry()), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/apps", nil))
	if line := logs.String(); !strings.Contains(line, "status=500") || !strings.Contains(line, "level=ERROR") {
		t.Fatalf("a real failure: %s", line)
	}
}

func TestClientGone(t *testing.T) {
	live := httptest.NewRequest("GET", "/", nil)
	if ClientGone(live, context.Canceled) {
		t.Fatal("a live request's failure blamed on its client")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	if !ClientGone(gone, context.Canceled) || ClientGone(gone, http.ErrServerClosed) {
		t.Fatal("ClientGone misjudged")
	}
}

func TestTrustProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	var gotIP, gotScheme string
	h := TrustProxies(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gotIP, gotScheme = ClientIP(r), Scheme(r) }))
	tests := []struct {
		name, peer string
		header     map[string]string
		ip, scheme string
	}{
		{"a trusted proxy's client", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}, "203.0.113.7", "https"},
		{"the right-most untrusted hop", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.9.9.9"}, "203.0.113.7", "http"},
		{"an untrusted peer's header is ignored", "192.0.2.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}, "192.0.2.1", "http"},
		{"Forwarded, RFC 7239", "[::1]:5000", map[string]string{"Forwarded": `for="[2001:db8::1]:4711";proto=https`}, "2001:db8::1", "https"},
		{"a garbled hop trusts nothing left of it", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "203.0.113.7, garbage"}, "10.1.2.3", "http"},
		{"no header", "10.1.2.3:5000", nil, "10.1.2.3", "http"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		for k, v := range tc.header {
			r.Header.Set(k, v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if gotIP != tc.ip || gotScheme != tc.scheme {
			t.Errorf("%s: client %s %s, want %s %s", tc.name, gotIP, gotScheme, tc.ip, tc.scheme)
		}
	}
}

// WriteJSON keeps a Content-Type the caller chose, forbids caching, and
// does not escape what is not HTML.
func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusTeapot, map[string]string{"u": "a&b<c>"})
	if rec.Code != http.StatusTeapot || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if got := rec.Body.String(); got != `{"u":"a&b<c>"}`+"\n" {
		t.Fatalf("body %q", got)
	}
	rec = httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/problem+json")
	WriteJSON(rec, http.StatusBadRequest, struct{}{})
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("the caller's Content-Type became %q", ct)
	}
}
