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
	// Bus, when set, carries revocations to the other nodes (PostgreSQL
	// LISTEN/NOTIFY). Without it the node is alone with its storage.
	Bus Bus
}

// Bus carries revocations between nodes.
type Bus interface {
	Publish(ctx context.Context, hashes []token.Hash) error
	Listen(ctx context.Context, revoke func([]token.Hash), down, up func())
}

// Expired tokens are deleted a day after they expire, so that until then
// the API can still answer "access_token has expired" rather than "invalid".
const expiredTokenRetention = 24 * time.Hour

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
	if d.Bus != nil {
		// Until the node listens for other nodes' revocations, it cannot
		// trust a cache.
		s.platform.Cache.Disable()
		s.platform.OnRevoke = func(hashes []token.Hash) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := d.Bus.Publish(ctx, hashes); err != nil {
				d.Log.Error("publishing a revocation to the other nodes failed", "tokens", len(hashes), "err", err)
			}
		}
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

// Run does the node's background work until ctx ends: it listens for
// other nodes' revocations (with a bus), deletes expired codes and tokens
// every minute, and writes when community tokens were last used every 30
// seconds and once more at the end.
func (s *Server) Run(ctx context.Context) {
	if s.deps.Bus != nil {
		c := s.platform.Cache
		go s.deps.Bus.Listen(ctx, c.Invalidate, c.Disable, c.Enable)
	}
	usage := time.NewTicker(30 * time.Second)
	defer usage.Stop()
	cleanup := time.NewTicker(time.Minute)
	defer cleanup.Stop()
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
		case <-usage.C:
			flush(ctx)
		case <-cleanup.C:
			if _, _, err := s.Cleanup(ctx); err != nil {
				s.deps.Log.WarnContext(ctx, "cleanup failed", "err", err)
			}
		}
	}
}

// Cleanup deletes expired codes and tokens in batches, bounded per run, on
// one node at a time (an advisory lock on PostgreSQL). It returns how many
// of each it deleted.
func (s *Server) Cleanup(ctx context.Context) (codes, tokens int64, err error) {
	const batch, maxBatches = 1000, 100
	_, err = s.deps.Store.RunExclusive(ctx, "cleanup", func(ctx context.Context) error {
		for range maxBatches {
			now := s.deps.Now()
			c, t, err := s.deps.Store.DeleteExpired(ctx, now, now.Add(-expiredTokenRetention), batch)
			codes, tokens = codes+c, tokens+t
			if err != nil {
				return err
			}
			if c < batch && t < batch {
				break
			}
			select { // let the requests in between batches
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	})
	if codes+tokens > 0 {
		s.deps.Log.InfoContext(ctx, "deleted expired credentials", "codes", codes, "tokens", tokens)
	}
	return codes, tokens, err
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
