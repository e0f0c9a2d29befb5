// Package server wires Latchkey's HTTP side together: it builds every
// handler from explicit dependencies and lists every route in routes.go.
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"latchkey/internal/api"
	"latchkey/internal/config"
	"latchkey/internal/httpx"
	"latchkey/internal/methods"
	"latchkey/internal/oauth"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/token"
	"latchkey/internal/tokencache"
	"latchkey/internal/web"
)

// Deps is everything the server needs, passed in by the one place that
// builds it (the serve command, or a test).
type Deps struct {
	Config    config.Config
	Store     storage.Storage
	Keys      *token.Keyring
	Log       *slog.Logger
	Now       func() time.Time
	PublicURL *url.URL
}

// Server is the HTTP side of one Latchkey node.
type Server struct {
	deps     Deps
	platform *platform.Platform
	registry *prometheus.Registry
	issued   *prometheus.CounterVec
	oauth    *oauth.Provider
	api      *api.Dispatcher
	web      *web.Handler
	handler  http.Handler
}

// New builds the server. It fails when an embedded template is broken.
func New(d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{deps: d, registry: prometheus.NewRegistry()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_tokens_issued_total", Help: "Tokens issued, by kind.",
	}, []string{"kind"})
	s.registry.MustRegister(s.issued)
	s.platform = &platform.Platform{
		Store: d.Store, Keys: d.Keys, Now: d.Now, Log: d.Log, Cache: tokencache.New(d.Config.CacheSize),
		OnIssue: func(k token.Kind) { s.issued.WithLabelValues(k.String()).Inc() },
	}
	s.oauth = &oauth.Provider{P: s.platform, Log: d.Log, Cfg: oauth.Config{
		CodeTTL: d.Config.CodeTTL, ImplicitTokenTTL: d.Config.ImplicitTokenTTL, CodeTokenTTL: d.Config.CodeTokenTTL,
		AllowPlainPKCE: d.Config.AllowPlainPKCE, PublicURL: d.PublicURL,
	}}
	s.api = api.New(s.platform, d.Log, api.Limits{User: d.Config.RateUser, Community: d.Config.RateCommunity, Service: d.Config.RateService},
		methods.All(methods.Deps{P: s.platform, PublicURL: d.PublicURL}))
	var err error
	if s.web, err = web.New(s.platform, s.oauth, d.Log, d.PublicURL.Scheme == "https"); err != nil {
		return nil, err
	}
	s.handler = httpx.Observe(d.Log, httpx.NewMetrics(s.registry), s.routes(), apiRoutes...)
	return s, nil
}

// Platform is the domain layer the server uses (for seeding and tests).
func (s *Server) Platform() *platform.Platform { return s.platform }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run does the node's background work until ctx ends: it writes when
// community tokens were last used every 30 seconds, and once more at the end.
func (s *Server) Run(ctx context.Context) {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	flush := func(ctx context.Context) {
		if err := s.platform.FlushUsage(ctx); err != nil {
			s.deps.Log.WarnContext(ctx, "writing token usage failed", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			flush(ctx)
			cancel()
			return
		case <-tick.C:
			flush(ctx)
		}
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Store.Ping(ctx); err != nil {
		s.deps.Log.WarnContext(r.Context(), "storage unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "storage unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
