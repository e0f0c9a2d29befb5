// Package gateway puts Latchkey in front of an API so that the API needs
// no OAuth code: requests to /api/<slug>/… are checked on the same fast
// path as the built-in API (the token's MAC or signature, the cache, the
// token's API, a DPoP proof when bound, the API's route rules and per-token
// rate) and go to the API's upstream, with who is calling in X-Latchkey-*
// headers and the credentials removed. Forward authentication
// (/oauth/check) answers the same question for nginx's auth_request,
// Traefik's ForwardAuth or Envoy's ext_authz.
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"latchkey/internal/httpx"
	"latchkey/internal/metrics"
	"latchkey/internal/platform"
	"latchkey/internal/ratelimit"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// APIs finds the API a request is for (platform.APIs).
type APIs interface {
	Resource(ctx context.Context, identifier string) (*storage.API, error)
	GatewayIdentifier(slug string) string
	ForURL(ctx context.Context, u *url.URL) (*storage.API, error)
}

// Tokens checks the token a request presents (platform.Tokens).
type Tokens interface {
	CheckAccessToken(ctx context.Context, raw string) (storage.Token, error)
	CheckBinding(ctx context.Context, t storage.Token, dpopScheme bool, proof, method, target, raw string) error
	DPoPNonce() string
}

// Gateway serves /api/<slug>/… and /oauth/check.
type Gateway struct {
	APIs   APIs
	Tokens Tokens
	Log    *slog.Logger
	// PublicURL is the server's: a DPoP proof's htu, and where the RFC
	// 9728 metadata a refusal points to lives.
	PublicURL *url.URL
	// UpstreamTimeout bounds the wait for an upstream's answer headers
	// (30 s when 0): then 504.
	UpstreamTimeout time.Duration
	// Now is the clock of the rate limits.
	Now func() time.Time
	// Metrics counts requests per API and times upstreams (nil: none).
	Metrics *metrics.Metrics
	// Tracer makes each upstream call a span (nil: none).
	Tracer trace.Tracer

	limits    *ratelimit.Limiter
	transport http.RoundTripper
	once      sync.Once
}

func (g *Gateway) init() {
	g.once.Do(func() {
		g.limits = ratelimit.New(1 << 16)
		timeout := g.UpstreamTimeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		g.transport = &http.Transport{
			Proxy:                 nil, // the upstream is the operator's, reached directly
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: timeout,
			ForceAttemptHTTP2:     false,
		}
		if g.Now == nil {
			g.Now = time.Now
		}
	})
}

// Caller is who a checked request is from, as the X-Latchkey-* headers
// tell the upstream.
type Caller struct {
	Subject, ClientID, Scope, TokenID string
}

// headers sets the caller's headers on h, after removing every incoming
// X-Latchkey-* and the credentials.
func (c Caller) headers(h http.Header) {
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Latchkey-") {
			delete(h, k)
		}
	}
	h.Del("Authorization")
	h.Del("Dpop")
	h.Set("X-Latchkey-Subject", c.Subject)
	h.Set("X-Latchkey-Client-Id", c.ClientID)
	h.Set("X-Latchkey-Scope", c.Scope)
	h.Set("X-Latchkey-Token-Id", c.TokenID)
}

// refusal is why a request is not let through, as its answer.
type refusal struct {
	status int
	// challenge is the WWW-Authenticate value ("" for none).
	challenge string
	message   string
}

// check checks the request's token for api, at the request's target URL
// (the htu of a DPoP proof, made only when one is checked), with the route
// rules for method and path.
func (g *Gateway) check(w http.ResponseWriter, r *http.Request, api *storage.API, target func() string, method, path string) (Caller, *refusal) {
	metadata := g.metadataURL(api)
	raw, dpopScheme := httpx.Credential(r.Header.Get("Authorization"))
	scheme := "Bearer"
	if dpopScheme {
		scheme = "DPoP"
	}
	if raw == "" {
		return Caller{}, &refusal{http.StatusUnauthorized, `Bearer resource_metadata="` + metadata() + `"`, "a token for " + api.Identifier + " is required"}
	}
	invalid := func(why string) *refusal {
		return &refusal{http.StatusUnauthorized, scheme + ` error="invalid_token", error_description="` + why + `", resource_metadata="` + metadata() + `"`, why}
	}
	t, err := g.Tokens.CheckAccessToken(r.Context(), raw)
	switch {
	case platform.Refused(err):
		return Caller{}, invalid("the token is invalid, expired or revoked")
	case err != nil:
		return Caller{}, &refusal{http.StatusServiceUnavailable, "", "the token cannot be checked right now; try again"}
	case t.APIID != api.ID:
		return Caller{}, invalid("the token is not for this API")
	}
	if t.JKT != "" || dpopScheme {
		// The nonce for the client's next proofs (RFC 9449 §9), on the
		// answer whatever it is.
		w.Header().Set("DPoP-Nonce", g.Tokens.DPoPNonce())
		err := g.Tokens.CheckBinding(r.Context(), t, dpopScheme, r.Header.Get("DPoP"), method, target(), raw)
		var be *platform.ErrBinding
		if errors.As(err, &be) && be.UseNonce {
			return Caller{}, &refusal{http.StatusUnauthorized, `DPoP error="use_dpop_nonce", error_description="` + be.Reason + `"`, be.Reason}
		}
		if errors.As(err, &be) {
			return Caller{}, invalid(be.Reason)
		}
		if err != nil {
			return Caller{}, &refusal{http.StatusServiceUnavailable, "", "the token cannot be checked right now; try again"}
		}
	}
	if need, ok := routeScope(api, method, path); ok {
		bit, known := scopeBit(api, need)
		if !known || t.Scope&(1<<bit) == 0 {
			return Caller{}, &refusal{http.StatusForbidden, scheme + ` error="insufficient_scope", scope="` + need + `", resource_metadata="` + metadata() + `"`,
				"this request needs the scope " + need}
		}
	}
	rate := float64(api.Rate)
	if rate <= 0 {
		rate = platform.DefaultAPIRate
	}
	if !g.limits.Allow(t.Hash, rate, max(int(rate), 1), g.Now()) {
		return Caller{}, &refusal{http.StatusTooManyRequests, "", "too many requests with this token: slow down"}
	}
	c := Caller{ClientID: strconv.FormatInt(t.AppID, 10), Scope: strings.Join(platform.ScopeNames(api, t.Scope), " "), TokenID: tokenID(t.Hash)}
	if t.UserID != 0 {
		c.Subject = strconv.FormatInt(t.UserID, 10)
	}
	return c, nil
}

// metadataURL is where api's RFC 9728 metadata is, made when a refusal
// names it.
func (g *Gateway) metadataURL(api *storage.API) func() string {
	return func() string {
		return g.PublicURL.JoinPath("/.well-known/oauth-protected-resource", strings.TrimPrefix(mustPath(api.Identifier), "/")).String()
	}
}

// tokenID is a stable name of a token for the upstream: a hash of its
// storage hash, never the token (nor the key storage keeps it under).
func tokenID(h token.Hash) string {
	sum := sha256.Sum256(append([]byte("latchkey gateway token id\x00"), h[:]...))
	return hex.EncodeToString(sum[:16])
}

// mustPath is an identifier's path, decoded ("" for none). Identifiers
// are absolute URLs (platform.APIs checks them): the path is what follows
// the authority, read without a parse per request unless it is escaped.
func mustPath(identifier string) string {
	_, rest, ok := strings.Cut(identifier, "://")
	if !ok || strings.Contains(rest, "%") {
		u, err := url.Parse(identifier)
		if err != nil {
			return ""
		}
		return u.Path
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 && rest[i] == '/' {
		path := rest[i:]
		if j := strings.IndexAny(path, "?#"); j >= 0 {
			path = path[:j]
		}
		return path
	}
	return ""
}

// routeScope is the scope the API's route rules ask of a request: the rule
// with the longest prefix matching path, of method or any method.
func routeScope(api *storage.API, method, path string) (string, bool) {
	best, found := -1, ""
	for _, r := range api.Routes {
		if (r.Method == "*" || r.Method == method) && strings.HasPrefix(path, r.Prefix) && len(r.Prefix) > best {
			best, found = len(r.Prefix), r.Scope
		}
	}
	return found, best >= 0
}

func scopeBit(api *storage.API, name string) (int, bool) {
	for _, sc := range api.Scopes {
		if sc.Name == name && !sc.Removed {
			return sc.Bit, true
		}
	}
	return 0, false
}

// refuse answers a refusal: JSON, with its WWW-Authenticate and, for 429,
// Retry-After.
func refuse(w http.ResponseWriter, rf *refusal) {
	if rf.challenge != "" {
		w.Header().Set("WWW-Authenticate", rf.challenge)
	}
	if rf.status == http.StatusTooManyRequests || rf.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	code := map[int]string{401: "invalid_token", 403: "insufficient_scope", 429: "slow_down", 503: "temporarily_unavailable"}[rf.status]
	httpx.WriteJSON(w, rf.status, map[string]string{"error": code, "error_description": rf.message})
}

// ServeHTTP serves /api/<slug>/<rest>: the request, checked, goes to the
// API's upstream + /<rest>, query kept, streamed both ways.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.init()
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/")
	slug, tail, _ := strings.Cut(rest, "/")
	switch {
	case !ok || slug == "" || strings.ContainsAny(slug, "%") || slug != strings.ToLower(slug):
		notFound(w, r.URL.Path)
		return
	case strings.Contains(strings.ToLower(r.URL.EscapedPath()), "%2f"):
		httpx.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "an encoded slash in the path is not passed on"})
		return
	}
	api, err := g.APIs.Resource(r.Context(), g.APIs.GatewayIdentifier(slug))
	if err != nil || api == nil || api.Upstream == "" || api.Slug != slug {
		notFound(w, r.URL.Path)
		return
	}
	status := 0 // the answer's, counted once it is known
	defer func() { g.Metrics.Gateway(api.Identifier, metrics.GatewayProxy, status) }()
	target := func() string { return g.PublicURL.JoinPath(r.URL.Path).String() }
	caller, rf := g.check(w, r, api, target, r.Method, "/"+tail)
	if rf != nil {
		status = rf.status
		refuse(w, rf)
		return
	}
	upstream, err := url.Parse(api.Upstream)
	if err != nil {
		status = http.StatusBadGateway
		httpx.WriteJSON(w, status, map[string]string{"error": "bad_gateway", "error_description": "the API's upstream is not a URL"})
		return
	}
	proxy := &httputil.ReverseProxy{
		// Server-Sent Events and answers of unknown length reach the
		// client write by write (ReverseProxy flushes those at once).
		Transport:  upstreamTrip{g, api.Identifier},
		BufferPool: &copyBuffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.URL.Path = strings.TrimSuffix(upstream.Path, "/") + "/" + tail
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = r.URL.RawQuery
			pr.SetXForwarded()
			caller.headers(pr.Out.Header)
		},
		ModifyResponse: func(resp *http.Response) error {
			status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var ne net.Error
			switch {
			case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
				status = http.StatusGatewayTimeout
				httpx.WriteJSON(w, status, map[string]string{"error": "gateway_timeout", "error_description": "the API did not answer in time"})
			case httpx.ClientGone(r, err):
				status = httpx.StatusClientClosed
				w.WriteHeader(status)
			default:
				g.Log.WarnContext(r.Context(), "gateway: the upstream failed", "api", api.Identifier, "err", err)
				status = http.StatusBadGateway
				httpx.WriteJSON(w, status, map[string]string{"error": "bad_gateway", "error_description": "the API cannot be reached right now"})
			}
		},
	}
	proxy.ServeHTTP(w, r)
}

func notFound(w http.ResponseWriter, path string) {
	httpx.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no API is served at " + path})
}

// copyBuffers are the 32 KiB buffers bodies are copied through, kept
// between requests rather than made for each.
var copyBuffers bufferPool

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// upstreamTrip is the call to one API's upstream: timed per API and, when
// traced, a client span (the API, the method, the upstream's host and
// path; never a header) whose context the upstream receives.
type upstreamTrip struct {
	g   *Gateway
	api string
}

func (u upstreamTrip) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	var span trace.Span
	if u.g.Tracer != nil {
		var ctx context.Context
		ctx, span = u.g.Tracer.Start(req.Context(), "gateway upstream", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("latchkey.api", u.api), attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Host), attribute.String("url.path", req.URL.Path)))
		req = req.Clone(ctx)
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	resp, err := u.g.transport.RoundTrip(req)
	u.g.Metrics.Upstream(u.api, time.Since(start))
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, "the upstream failed")
		} else {
			span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
			if resp.StatusCode >= 500 {
				span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
			}
		}
		span.End()
	}
	return resp, err
}
