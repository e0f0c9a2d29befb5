package platform_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlite"
	"latchkey/internal/token"
	"latchkey/internal/tokencache"
)

// newPlatform is a platform on a real SQLite file with a token cache, an
// app and its owner.
func newPlatform(tb testing.TB) (*platform.Platform, platform.AppView) {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "bench.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	keys, err := token.NewKeyring("benchmark-secret-0123456789abcdefghijkl")
	if err != nil {
		tb.Fatal(err)
	}
	p := platform.New(platform.Options{Store: s, Keys: keys, Now: time.Now, Cache: tokencache.New(100_000)})
	u, err := p.Users.CreateUser(context.Background(), platform.NewUser{Login: "bench", Password: "bench-password"})
	if err != nil {
		tb.Fatal(err)
	}
	app, err := p.Apps.CreateApp(context.Background(), platform.CLI, platform.NewApp{OwnerID: u.ID, Title: "Bench", Type: storage.Standalone})
	if err != nil {
		tb.Fatal(err)
	}
	return p, app
}

func TestCheckTokenUsesCacheAndSeesRevocation(t *testing.T) {
	p, app := newPlatform(t)
	ctx := context.Background()
	raw, rec, err := p.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: app.ID, UserID: app.OwnerID, Flow: storage.FlowImplicit}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Tokens.CheckToken(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := p.Cache.Get(rec.Hash); !ok {
		t.Fatal("a checked token is not cached")
	}
	if err := p.Tokens.RevokeToken(ctx, platform.CLI, app.ID, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Tokens.CheckToken(ctx, raw); !errors.Is(err, platform.ErrTokenRevoked) {
		t.Fatalf("after revocation: %v, want ErrTokenRevoked", err)
	}
	if _, err := p.Tokens.CheckToken(ctx, "lku1"+raw[4:len(raw)-1]+"x"); !errors.Is(err, platform.ErrTokenInvalid) {
		t.Fatalf("malformed token: %v", err)
	}
}

// BenchmarkCheckToken measures the token check of every API call.
func BenchmarkCheckToken(b *testing.B) {
	p, app := newPlatform(b)
	ctx := context.Background()
	valid, _, err := p.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: app.ID, UserID: app.OwnerID, Flow: storage.FlowImplicit}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	forged, _ := mustKeys(b, "another-secret-0123456789abcdefghijklmnop").Mint(token.User)
	unknown, _ := p.Keys.Mint(token.User) // well-formed, signed, never stored

	b.Run("valid_cached", func(b *testing.B) {
		p.Tokens.CheckToken(ctx, valid)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Tokens.CheckToken(ctx, valid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("forged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Tokens.CheckToken(ctx, forged); !errors.Is(err, platform.ErrTokenInvalid) {
				b.Fatal(err)
			}
		}
	})
	b.Run("unknown", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Tokens.CheckToken(ctx, unknown); !errors.Is(err, platform.ErrTokenInvalid) {
				b.Fatal(err)
			}
		}
	})
}

func mustKeys(tb testing.TB, s string) *token.Keyring {
	k, err := token.NewKeyring(s)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
