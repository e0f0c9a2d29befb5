package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"latchkey/internal/node"
	"latchkey/internal/tracing"
)

// unlimited is a per-token rate no one reaches.
const unlimited = 1e9

func (e *env) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP server",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := e.cfg.Validate(); err != nil {
				return &UsageError{err}
			}
			return e.serve(cmd.Context())
		},
	}
	e.cfg.BindServe(cmd.Flags())
	return cmd
}

func (e *env) logger() *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(e.cfg.LogLevel)) // checked by Validate
	opts := &slog.HandlerOptions{Level: lvl}
	if e.cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

func (e *env) serve(ctx context.Context) error {
	log := e.logger()
	// The addresses first: a server that cannot listen creates nothing (no
	// secret file, no database).
	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", e.cfg.Addr, err)
	}
	defer ln.Close()
	var adminLn net.Listener
	if e.cfg.AdminAddr != "" {
		if adminLn, err = net.Listen("tcp", e.cfg.AdminAddr); err != nil {
			return fmt.Errorf("listen on %s (--admin-addr): %w", e.cfg.AdminAddr, err)
		}
		defer adminLn.Close()
	}
	keys, err := e.keys()
	if err != nil {
		return err
	}
	public := e.cfg.PublicURL
	if public == "" {
		scheme := "http"
		if e.cfg.Certificate != nil {
			scheme = "https"
		}
		public = scheme + "://" + ln.Addr().String()
	}
	publicURL, _ := url.Parse(public)

	if e.cfg.Demo {
		// A person trying the demo with curl should not meet the per-token
		// limits on the fifth call.
		e.cfg.RateUser, e.cfg.RateCommunity, e.cfg.RateService = unlimited, unlimited, unlimited
	}
	tp, stopTracing, err := tracing.Setup(ctx, e.cfg.OTLPEndpoint, e.getenv, version)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(flushCtx); err != nil {
			log.Warn("tracing: spans not sent", "err", err)
		}
	}()
	n, err := node.Open(ctx, node.Config{Config: e.cfg, Keys: keys, Log: log, Now: e.now, PublicURL: publicURL, Tracing: tp})
	if err != nil {
		return err
	}
	defer n.Close()
	if e.cfg.Demo {
		app, owner, err := seedDemo(ctx, n.Platform, publicURL, e.stdout)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		n.Server.ServeDemo(app, owner)
	}

	hs := &http.Server{
		Handler:           n,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	bgDone := make(chan struct{})
	go func() { n.Run(bgCtx); close(bgDone) }()
	defer func() { stopBackground(); <-bgDone }()

	errc := make(chan error, 2)
	go func() {
		if e.cfg.Certificate != nil {
			// The pair Validate loaded; HTTP/2 included.
			hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*e.cfg.Certificate}}
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	servers := []*http.Server{hs}
	if adminLn != nil {
		as := &http.Server{Handler: n.Server.Admin(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			// A CPU profile or trace runs for its ?seconds=.
			WriteTimeout: 5 * time.Minute, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		servers = append(servers, as)
		go func() { errc <- as.Serve(adminLn) }()
		log.Info("admin listening", "addr", adminLn.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "public_url", public, "storage", e.cfg.Storage.Backend)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}
