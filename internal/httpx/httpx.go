// Package httpx holds the middleware both sides of the server share: request
// IDs, structured access logs, panic recovery and Prometheus metrics, done in
// one wrapper so each request pays for one response recorder.
package httpx

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Metrics are the request metrics, registered on a registry of the server's
// own so that several servers can live in one process (tests, benchmarks).
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// routes caches the children of the vectors per route and status, so
	// a request pays for a map read, not two label hashes.
	mu     sync.RWMutex
	routes map[routeStatus]routeMetrics
}

type routeStatus struct {
	route  string
	status int
}

type routeMetrics struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) observe(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	key := routeStatus{route, status}
	m.mu.RLock()
	rm, ok := m.routes[key]
	m.mu.RUnlock()
	if !ok {
		rm = routeMetrics{m.requests.WithLabelValues(route, strconv.Itoa(status)), m.duration.WithLabelValues(route)}
		m.mu.Lock()
		if len(m.routes) < 10_000 { // routes are a fixed set; statuses too
			m.routes[key] = rm
		}
		m.mu.Unlock()
	}
	rm.count.Inc()
	rm.duration.Observe(d.Seconds())
}

// NewMetrics registers the request metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	m.routes = map[routeStatus]routeMetrics{}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// StatusClientClosed is logged for a request whose client went away before
// the answer (nginx's 499): a client's abort, not a server error.
const StatusClientClosed = 499

// ClientGone reports whether err is only the request's own context ending:
// the client closed the connection. Such failures are not the server's and
// are logged as aborts, not errors.
func ClientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// RequestID returns the ID Observe gave the request, from the response's
// X-Request-Id header (handlers log it with their errors).
func RequestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

// Request IDs are a random per-process prefix and a counter: unique, and
// cheap enough for every API call.
var (
	idPrefix = rand.Text()[:10]
	idSeq    atomic.Uint64
)

func newID() string {
	var b [32]byte
	n := copy(b[:], idPrefix)
	b[n] = '-'
	return string(strconv.AppendUint(b[:n+1], idSeq.Add(1), 36))
}

// Observe wraps a mux: it gives each request an ID (kept from a sane
// X-Request-Id header, or new; handlers read it with RequestID), recovers
// panics into a 500, logs one line per request (method, path, route,
// status, duration, id; never the query, which may carry tokens) and
// records metrics by route pattern. Requests on the quiet route patterns
// (the API, tens of thousands a second) are logged at DEBUG unless they fail
// with a 5xx; metrics count every request.
//
// With a tracer, each request is also a span (its name and attributes say
// the route, method, path and status, never the query); a W3C trace
// context (traceparent) is continued only from a trusted proxy
// (TrustProxies), and the span is in the request's context for the
// handlers' own spans and log lines. Without one, nothing of tracing runs.
func Observe(log *slog.Logger, m *Metrics, tracer trace.Tracer, next http.Handler, quiet ...string) http.Handler {
	h := log.Handler()
	quietRoutes := map[string]bool{}
	for _, q := range quiet {
		quietRoutes[withoutMethod(q)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			id = newID()
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		rec.id[0] = id
		w.Header()["X-Request-Id"] = rec.id[:]
		var span trace.Span
		if tracer != nil {
			ctx := r.Context()
			if FromTrustedProxy(r) {
				ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
			}
			ctx, span = tracer.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
				attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
				attribute.String("client.address", ClientIP(r)), attribute.String("latchkey.request_id", id)))
			r = r.WithContext(ctx)
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic serving request", "request_id", id, "path", r.URL.Path, "panic", p)
				if !rec.wrote {
					rec.Header().Set("Content-Type", "text/plain; charset=utf-8")
					rec.WriteHeader(http.StatusInternalServerError)
					rec.Write([]byte("internal server error\n"))
				}
			}
			// The route is the pattern without its method ("/method/{name}"
			// for GET and POST alike): the method is not what tells routes
			// apart on a dashboard.
			route := withoutMethod(r.Pattern)
			if route == "" {
				route = "unmatched"
			}
			if rec.status >= 500 && r.Context().Err() != nil {
				// The client went away, and the failure is that: not ours.
				rec.status = StatusClientClosed
			}
			d := time.Since(start)
			m.observe(route, rec.status, d)
			if span != nil {
				span.SetName("HTTP " + r.Method + " " + route)
				span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", rec.status))
				if rec.status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(rec.status))
				}
				span.End()
			}
			level := slog.LevelInfo
			switch {
			case rec.status >= 500:
				level = slog.LevelError
			case quietRoutes[route]:
				level = slog.LevelDebug
			}
			if !h.Enabled(r.Context(), level) {
				return
			}
			// The record is built directly: no caller lookup per request.
			rcd := slog.NewRecord(start, level, "request", 0)
			rcd.AddAttrs(slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("route", route), slog.Int("status", rec.status), slog.Duration("duration", d),
				slog.String("ip", ClientIP(r)))
			h.Handle(r.Context(), rcd)
		}()
		next.ServeHTTP(rec, r)
	})
}

// withoutMethod is a mux pattern without its method: "GET /x" is "/x".
func withoutMethod(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return pattern[i+1:]
	}
	return pattern
}

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ClientIP is the client's IP address: the peer's, or, behind a trusted
// proxy (TrustProxies), the one the proxy reported.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	// id backs the X-Request-Id header's value: one allocation less.
	id [1]string
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// TrustProxies takes the client's address and scheme from the proxy
// headers of requests whose peer is in trusted, and only then (a header
// from anyone else is what a client says of itself): the address is the
// right-most one of X-Forwarded-For (or Forwarded's for=) that is not
// itself a trusted proxy, and the scheme X-Forwarded-Proto (or Forwarded's
// proto=). With no trusted ranges it is next itself.
func TrustProxies(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !isTrusted(peer.Addr()) {
			next.ServeHTTP(w, r)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), trustedKey{}, true))
		chain, proto := forwarded(r.Header)
		for i := len(chain) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(chain[i])
			if err != nil {
				break // a garbled hop: trust nothing further left
			}
			if !isTrusted(a) || i == 0 {
				r2 := r.Clone(r.Context())
				r2.RemoteAddr = netip.AddrPortFrom(a.Unmap(), 0).String()
				if proto == "https" || proto == "http" {
					r2 = r2.WithContext(context.WithValue(r2.Context(), schemeKey{}, proto))
				}
				r = r2
				break
			}
		}
		next.ServeHTTP(w, r)
	})
}

type schemeKey struct{}

type trustedKey struct{}

// FromTrustedProxy reports whether r came through a trusted proxy, whose
// forwarded headers (the client's address and scheme, the trace context)
// are believed.
func FromTrustedProxy(r *http.Request) bool {
	ok, _ := r.Context().Value(trustedKey{}).(bool)
	return ok
}

// Scheme is the scheme the client used: https over TLS, or as a trusted
// proxy reported it.
func Scheme(r *http.Request) string {
	if s, ok := r.Context().Value(schemeKey{}).(string); ok {
		return s
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// forwarded reads the hops and the scheme of X-Forwarded-For and
// X-Forwarded-Proto, or of Forwarded (RFC 7239) when those are absent.
func forwarded(h http.Header) (chain []string, proto string) {
	for _, v := range h.Values("X-Forwarded-For") {
		for part := range strings.SplitSeq(v, ",") {
			chain = append(chain, strings.TrimSpace(part))
		}
	}
	if len(chain) > 0 {
		p := h.Get("X-Forwarded-Proto")
		if i := strings.IndexByte(p, ','); i >= 0 {
			p = p[i+1:] // the hop nearest us
		}
		return chain, strings.ToLower(strings.TrimSpace(p))
	}
	for _, v := range h.Values("Forwarded") {
		for elem := range strings.SplitSeq(v, ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					continue
				}
				val = strings.Trim(val, `"`)
				switch strings.ToLower(k) {
				case "for":
					if strings.HasPrefix(val, "[") { // [v6]:port
						if end := strings.IndexByte(val, ']'); end > 0 {
							val = val[1:end]
						}
					} else if host, _, err := net.SplitHostPort(val); err == nil {
						val = host
					}
					chain = append(chain, val)
				case "proto":
					proto = strings.ToLower(val)
				}
			}
		}
	}
	return chain, proto
}
