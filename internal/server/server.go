// Package server is the HTTP side of one Latchkey node: it builds every
// handler from explicit dependencies and lists every route in routes.go.
// The node (internal/node) builds the platform it serves.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"latchkey/internal/api"
	"latchkey/internal/config"
	"latchkey/internal/gateway"
	"latchkey/internal/httpx"
	"latchkey/internal/methods"
	"latchkey/internal/metrics"
	"latchkey/internal/oauth"
	"latchkey/internal/platform"
	"latchkey/internal/registration"
	"latchkey/internal/web"
	"latchkey/internal/web/account"
	"latchkey/internal/web/authorize"
	"latchkey/internal/web/communities"
	"latchkey/internal/web/console"
	"latchkey/internal/web/demo"
	"latchkey/internal/web/embed"
	"latchkey/internal/web/i18n"
)

// Deps is everything the server needs, passed in by the node.
type Deps struct {
	Config   config.Config
	Platform *platform.Platform
	Metrics  *metrics.Metrics
	// Tracer makes each request a span; nil: no tracing.
	Tracer    trace.Tracer
	Log       *slog.Logger
	PublicURL *url.URL
}

// Server is the HTTP side of one Latchkey node.
type Server struct {
	deps        Deps
	oauth       *oauth.Provider
	api         *api.Dispatcher
	account     *account.Handler
	device      *authorize.DevicePage
	authorize   *authorize.Handler
	console     *console.Handler
	communities *communities.Handler
	gateway     *gateway.Gateway
	// registration serves RFC 7591 registration and RFC 7592 management.
	registration *registration.Handler
	embed        *embed.Handler
	kit          *web.Kit
	admin        http.Handler
	demo         atomic.Pointer[demo.Handler]
	handler      http.Handler
}

// New builds the server. It fails when an embedded template is broken.
func New(d Deps) (*Server, error) {
	p, cfg := d.Platform, d.Config
	s := &Server{deps: d}
	s.oauth = oauth.New(oauth.Deps{Platform: oauthServices{p.Apps, p.Users, p.Communities, p.Tokens, p.Pushed}, Issuer: p.Issuer, APIs: p.APIs, Consents: p.Consents, Codes: p.Codes, Refreshes: p.Refreshes, Signer: p.Signing, Devices: p.Devices, Documents: p.Documents, Assertions: p.Assertions, Now: p.Now, Log: d.Log, Config: oauth.Config{
		CodeTTL: cfg.CodeTTL, AllowPlainPKCE: cfg.AllowPlainPKCE, PublicURL: d.PublicURL, Registration: cfg.Registration,
		ClientDocuments: cfg.ClientMetadataDocuments == "on",
	}})
	s.registration = registration.New(p.Registrations, cfg.Registration, cfg.RegistrationRate, web.NewThrottle(p.Users, "registration", p.Now, time.Hour), d.Log)
	s.api = api.New(apiServices{p.Tokens, p.Consents, p}, p.Now, d.Log, api.Limits{User: cfg.RateUser, Community: cfg.RateCommunity, Service: cfg.RateService},
		methods.All(methods.Deps{P: methodsServices{p.Users, p.Communities, p.Tokens, p.Messages}, Bots: p.Bots, Callbacks: p.Callbacks, PublicURL: d.PublicURL}))
	s.api.PublicURL = strings.TrimSuffix(d.PublicURL.String(), "/")
	s.api.Metrics, s.oauth.Metrics = d.Metrics, d.Metrics
	kit, err := web.NewKit(p.Keys, p.Now, d.Log, d.PublicURL.Scheme == "https", kitServices{p.Users, p.Sessions})
	if err != nil {
		return nil, err
	}
	if l, ok := i18n.Parse(cfg.Lang); ok {
		kit.Lang = l
	}
	s.kit = kit
	kit.Metrics = d.Metrics
	s.account = account.New(kit, accountServices{p.Users, p.Consents, p.Tokens, p.Messages, p.Issuer, p.Apps, p.Sessions, p.Factors, p.Upstreams}, p.Now)
	s.authorize = authorize.New(kit, s.oauth, authorizeServices{p.Factors, p.Sessions})
	s.device = authorize.NewDevicePage(kit, p.Devices, p.Apps, p.APIs, p.Now)
	s.console = console.New(kit, p.Apps, p.APIs, s.oauth.BlankURL(), d.PublicURL.JoinPath("/.well-known/openid-configuration").String())
	s.communities = communities.New(kit, communitiesServices{p.Communities, p.Apps, p.Bots, p.Messages}, communitiesServices{p.Communities, p.Apps, p.Bots, p.Messages})
	s.embed = embed.New(kit, p.Apps, p.Consents, cfg.ImplicitTokenTTL, d.PublicURL)
	s.gateway = &gateway.Gateway{APIs: p.APIs, Tokens: p.Tokens, Log: d.Log, PublicURL: d.PublicURL, Now: p.Now, UpstreamTimeout: cfg.UpstreamTimeout,
		Metrics: d.Metrics, Tracer: d.Tracer}
	s.handler = httpx.TrustProxies(cfg.Proxies, httpx.Observe(d.Log, httpx.NewMetrics(d.Metrics.Registry), d.Tracer, s.routes(), apiRoutes...))
	s.admin = httpx.Observe(d.Log, nil, d.Tracer, s.adminRoutes()) // logged, not counted: /metrics is the main listener's traffic
	return s, nil
}

// ServeDemo serves the demo web app's callback page (serve --demo) for
// app, owned by owner.
func (s *Server) ServeDemo(app, owner int64) {
	s.demo.Store(demo.New(s.kit, s.deps.Platform.Apps, app, owner, s, s.deps.PublicURL))
}

// demoCallback is the demo's page, once ServeDemo named the app; not found
// otherwise.
func (s *Server) demoCallback(w http.ResponseWriter, r *http.Request) {
	h := s.demo.Load()
	if h == nil {
		s.kit.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such page.", "")
		return
	}
	h.Callback(w, r)
}

// CheckPages renders every page with an empty view (web.Kit.CheckPages).
func (s *Server) CheckPages() error {
	s.ServeDemo(0, 0) // the demo's page too
	defer s.demo.Store(nil)
	return s.kit.CheckPages()
}

// Admin is the admin listener's handler (--admin-addr): /metrics,
// /debug/pprof/ and the admin API /admin/v1/, with request logs and
// metrics like the main listener's.
func (s *Server) Admin() http.Handler { return s.admin }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Platform.Ping(ctx); err != nil {
		s.deps.Log.WarnContext(r.Context(), "storage unreachable", "err", err)
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "storage unreachable"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics() http.Handler {
	return promhttp.HandlerFor(s.deps.Metrics.Registry, promhttp.HandlerOpts{})
}
