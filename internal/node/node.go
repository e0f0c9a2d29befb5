// Package node is Latchkey's composition root: Open builds one node — its
// storage (chosen from the typed storage configuration), the revocation bus
// on PostgreSQL, the token cache, the platform and the HTTP server — in
// one place. The serve command, the load tool and the end-to-end tests all
// build their server through it.
package node

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"

	"latchkey/internal/config"
	"latchkey/internal/metrics"
	"latchkey/internal/password"
	"latchkey/internal/platform"
	"latchkey/internal/server"
	"latchkey/internal/storage"
	"latchkey/internal/storage/postgres"
	_ "latchkey/internal/storage/sqlite" // registers the "sqlite" backend
	"latchkey/internal/token"
	"latchkey/internal/tokencache"
	"latchkey/internal/tracing"
)

// Config is what a node is built from.
type Config struct {
	// Config holds the validated flags; its Storage says where the data is.
	config.Config
	Keys *token.Keyring
	Log  *slog.Logger
	// Now is the clock (time.Now when nil); tests inject theirs.
	Now       func() time.Time
	PublicURL *url.URL
	// Tracing, when set, traces requests and storage calls
	// (tracing.Setup); nil: no tracing.
	Tracing trace.TracerProvider
	// OutboundCAs, when set, are the certificates the server's outbound
	// HTTPS (Callback API, client metadata documents) trusts instead of
	// the system's.
	OutboundCAs *x509.CertPool
}

// revocationPoll is how often a node on SQLite reads the revocation log: a
// revocation made by another process reaches its cache within this.
const revocationPoll = 200 * time.Millisecond

// callbackPoll is how often a node looks for Callback API deliveries that
// came due (retries, 5 s apart at the least); new events wake it at once.
const callbackPoll = time.Second

// Node is one running Latchkey server with its storage.
type Node struct {
	Platform *platform.Platform
	Server   *server.Server
	store    storage.Storage
	bus      *postgres.Bus
	log      *slog.Logger
}

// OpenStorage opens the storage s names with its registered backend,
// applying pending migrations.
func OpenStorage(ctx context.Context, s config.Storage) (storage.Storage, error) {
	if s.Backend == config.SQLite {
		// SQLite says only "unable to open database file" of a file this
		// user may not write: name the file, its owner and what to run.
		for _, f := range []string{s.Path, s.Path + "-wal", s.Path + "-shm"} {
			if fh, err := os.OpenFile(f, os.O_RDWR, 0); errors.Is(err, fs.ErrPermission) {
				return nil, config.OwnedByAnother(f, "open the database file")
			} else if err == nil {
				fh.Close()
			}
		}
	}
	return storage.Open(ctx, storage.Target{Backend: s.Backend, Path: s.Path, URL: s.URL, FullSync: s.Sync == "full"})
}

// What a node asks of its storage beyond storage.Storage, when the backend
// offers it: its statements reported (metrics, spans), and the connection
// pool the PostgreSQL bus notifies through.
type (
	observed interface {
		Observe(func(op string, d time.Duration))
	}
	traced interface{ Trace(trace.Tracer) }
	pooled interface{ Write() *sql.DB }
)

// Open builds the node. Its background work starts with Run; Close
// releases the storage.
func Open(ctx context.Context, c Config) (*Node, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	store, err := OpenStorage(ctx, c.Storage)
	if err != nil {
		return nil, err
	}
	var tracer trace.Tracer
	if c.Tracing != nil {
		tracer = c.Tracing.Tracer(tracing.Name)
		if s, ok := store.(traced); ok {
			s.Trace(tracer)
		}
		c.Log = slog.New(tracing.LogHandler(c.Log.Handler()))
	}
	n := &Node{store: store, log: c.Log}
	var onRevoke func([]token.Hash)
	var onEvent func(int64)
	if db, ok := store.(pooled); ok && c.Storage.Backend == config.Postgres {
		n.bus = &postgres.Bus{DSN: c.Storage.URL, DB: db.Write(), Log: c.Log}
		onRevoke = publish(n.bus, c.Log)
		bus := n.bus
		onEvent = func(id int64) {
			if err := bus.PublishEvent(context.Background(), id); err != nil {
				c.Log.Warn("telling the other nodes of a community event failed: their polls see it at their next request", "err", err)
			}
		}
	}
	cache := tokencache.New(c.CacheSize)
	m := metrics.New(metrics.Sources{PasswordChecks: password.InFlight, TokenCache: cache.Counts})
	if s, ok := store.(observed); ok {
		s.Observe(m.Storage)
	}
	// Until the node follows other processes' revocations (Run), it cannot
	// trust a cache.
	cache.Disable()
	n.Platform = platform.New(platform.Options{Store: store, Keys: c.Keys, Now: c.Now, Log: c.Log, Cache: cache,
		OnIssue: func(k token.Kind) { m.Issued(k.String()) }, OnEvent: onEvent, CallbackAllow: c.CallbackTargets, OutboundCAs: c.OutboundCAs, NoClientDocuments: c.ClientMetadataDocuments == "off", NewClientsPerHour: c.RegistrationRate, OnRevoke: onRevoke, RefreshTTL: c.RefreshTokenTTL, RefreshGrace: c.RefreshGrace, RequireMFA: c.RequireMFA,
		Lifetimes: platform.Lifetimes{Code: c.CodeTokenTTL, Implicit: c.ImplicitTokenTTL}, PublicURL: c.PublicURL})
	n.Server, err = server.New(server.Deps{Config: c.Config, Platform: n.Platform, Metrics: m, Tracer: tracer, Log: c.Log, PublicURL: c.PublicURL})
	if err != nil {
		store.Close()
		return nil, err
	}
	return n, nil
}

// publish tells the other nodes of revocations over the bus.
func publish(bus *postgres.Bus, log *slog.Logger) func([]token.Hash) {
	return func(hashes []token.Hash) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := bus.Publish(ctx, hashes); err != nil {
			log.Error("publishing a revocation to the other nodes failed", "tokens", len(hashes), "err", err)
		}
	}
}

// Announcer returns how a process that is not a node (the CLI) tells the
// running nodes of the revocations it makes: NOTIFY on PostgreSQL; nil on
// SQLite, where the revocation log, written with every revocation, is what
// the nodes follow.
func Announcer(s config.Storage, store storage.Storage, log *slog.Logger) func([]token.Hash) {
	db, ok := store.(pooled)
	if s.Backend != config.Postgres || !ok {
		return nil
	}
	return publish(&postgres.Bus{DSN: s.URL, DB: db.Write(), Log: log}, log)
}

// ServeHTTP serves every route of the node.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) { n.Server.ServeHTTP(w, r) }

// Close releases the storage.
func (n *Node) Close() error { return n.store.Close() }

// Storage is the node's storage, for the load tool to provision data in
// bulk; everything else goes through the platform.
func (n *Node) Storage() storage.Storage { return n.store }

// Run does the node's background work until ctx ends: it listens for
// other nodes' revocations (on PostgreSQL), writes a heartbeat every second
// (so that the nodes share the API's limits), deletes expired codes and
// tokens every minute, and writes when community tokens were last used
// every 30 seconds and once more at the end.
func (n *Node) Run(ctx context.Context) {
	if n.bus != nil {
		c := n.Platform.Cache
		n.bus.Events = n.Platform.Bots.Notify
		go n.bus.Listen(ctx, c.Invalidate, c.Disable, c.Enable)
	} else {
		// On SQLite, the CLI (or another server on the same file) revokes
		// through the revocation log; this node follows it.
		go n.Platform.FollowRevocations(ctx, revocationPoll)
	}
	go n.Platform.Callbacks.Run(ctx, callbackPoll)
	usage := time.NewTicker(30 * time.Second)
	defer usage.Stop()
	cleanup := time.NewTicker(time.Minute)
	defer cleanup.Stop()
	heartbeat := time.NewTicker(platform.HeartbeatEvery)
	defer heartbeat.Stop()
	beat := func(ctx context.Context) {
		if err := n.Platform.Heartbeat(ctx); err != nil {
			n.log.WarnContext(ctx, "heartbeat failed: the node shares the API limits as it last knew", "err", err)
		}
	}
	beat(ctx)
	flush := func(ctx context.Context) {
		if err := n.Platform.Tokens.FlushUsage(ctx); err != nil {
			n.log.WarnContext(ctx, "writing token usage failed", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			flush(ctx)
			if err := n.Platform.LeaveCluster(ctx); err != nil {
				n.log.WarnContext(ctx, "leaving the cluster failed: the others count this node for a few seconds more", "err", err)
			}
			cancel()
			return
		case <-heartbeat.C:
			beat(ctx)
		case <-usage.C:
			flush(ctx)
		case <-cleanup.C:
			if _, _, err := n.Platform.Cleanup(ctx); err != nil {
				n.log.WarnContext(ctx, "cleanup failed", "err", err)
			}
		}
	}
}
