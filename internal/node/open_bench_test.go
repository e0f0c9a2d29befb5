package node

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"

	"latchkey/internal/config"
	"latchkey/internal/token"
)

// BenchmarkOpen measures what a node does before it can serve: the storage
// opened (migrations checked), the platform and every route built.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	st, err := config.ParseStorage("sqlite:" + filepath.Join(b.TempDir(), "open.db"))
	if err != nil {
		b.Fatal(err)
	}
	keys, err := token.NewKeyring("0123456789abcdef0123456789abcdef0123")
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Storage = st
	public, _ := url.Parse("http://127.0.0.1:8080")
	c := Config{Config: cfg, Keys: keys, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PublicURL: public}
	first, err := Open(ctx, c) // creates and migrates the database
	if err != nil {
		b.Fatal(err)
	}
	first.Close()
	b.ReportAllocs()
	for b.Loop() {
		n, err := Open(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		n.Close()
	}
}
