package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlite"
	"latchkey/internal/storage/sqlstore"
	"latchkey/internal/token"
)

// BenchmarkCreateToken measures token inserts from 16 concurrent callers,
// each answered after its commit: with group commit (the default) and with
// a transaction per token, at synchronous=NORMAL and FULL.
func BenchmarkCreateToken(b *testing.B) {
	for _, c := range []struct {
		name string
		o    sqlite.Options
	}{
		{"group/normal", sqlite.Options{}},
		{"serial/normal", sqlite.Options{NoGroupCommit: true}},
		{"group/full", sqlite.Options{FullSync: true}},
		{"serial/full", sqlite.Options{FullSync: true, NoGroupCommit: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			s, app, keys := benchStore(b, c.o)
			b.SetParallelism(8) // 16 callers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, h := keys.Mint(token.Service)
					if err := s.CreateToken(ctx, storage.Token{Hash: h, Kind: token.Service, AppID: app, Flow: storage.FlowClientCredentials,
						IssuedAt: time.Now(), SecretHash: &h}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if batches, writes := s.GroupStats(); batches > 0 {
				b.ReportMetric(float64(writes)/float64(batches), "writes/commit")
			}
		})
	}
}

// BenchmarkCreateUserToken is BenchmarkCreateToken for a user's token of a
// grant: the insert that checks, in the same statement, that the user is
// not disabled and the grant not revoked.
func BenchmarkCreateUserToken(b *testing.B) {
	ctx := context.Background()
	s, app, keys := benchStore(b, sqlite.Options{})
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, h := keys.Mint(token.User)
			if err := s.CreateToken(ctx, storage.Token{Hash: h, Kind: token.User, AppID: app, UserID: 1, Flow: storage.FlowCode,
				IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), CodeHash: &h}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if batches, writes := s.GroupStats(); batches > 0 {
		b.ReportMetric(float64(writes)/float64(batches), "writes/commit")
	}
}

// benchStore opens a database of o's for b, closed when b ends, with an
// app to issue tokens to, and the keys to mint them.
func benchStore(b *testing.B, o sqlite.Options) (*sqlstore.Store, int64, *token.Keyring) {
	s, err := sqlite.OpenWith(context.Background(), filepath.Join(b.TempDir(), "bench.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	keys, _ := token.NewKeyring("bench-secret-0123456789abcdef0123456789")
	return s, seedApp(b, s), keys
}

func seedApp(tb testing.TB, s storage.Storage) int64 {
	ctx := context.Background()
	u := &storage.User{Login: fmt.Sprint("bench-", time.Now().UnixNano()), PasswordHash: "x"}
	if err := s.CreateUser(ctx, u); err != nil {
		tb.Fatal(err)
	}
	keys, _ := token.NewKeyring("bench-secret-0123456789abcdef0123456789")
	_, h := keys.Mint(token.Service)
	a := &storage.App{OwnerID: u.ID, Title: "bench", Type: storage.Web, Secret: storage.ClientSecret{Hash: h, Sealed: []byte("x")}, ServiceTokenSealed: []byte("x")}
	if err := s.CreateApp(ctx, a, storage.Token{Hash: h, Kind: token.Service, Flow: storage.FlowServiceToken, IssuedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	return a.ID
}

// BenchmarkGetToken measures the read of a token cache miss: one point
// read by hash among 200,000 tokens, from 16 concurrent callers. The
// tokens are stored once, for every round of the measurement.
func BenchmarkGetToken(b *testing.B) {
	ctx := context.Background()
	s, app, keys := benchStore(b, sqlite.Options{})
	const n = 200_000
	hashes := make([]token.Hash, n)
	batch := make([]storage.Token, 0, 10_000)
	for i := range hashes {
		_, hashes[i] = keys.Mint(token.User)
		code := hashes[i]
		batch = append(batch, storage.Token{Hash: hashes[i], Kind: token.User, AppID: app, UserID: int64(i), Scope: 1 << 16,
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Flow: storage.FlowCode, CodeHash: &code, IP: "192.0.2.1"})
		if len(batch) == cap(batch) {
			if err := s.CreateTokens(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// A request's context can be cancelled, as the token check's is.
	req, cancel := context.WithCancel(ctx)
	defer cancel()
	b.Run("200k", func(b *testing.B) {
		b.SetParallelism(8)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			x := uint64(time.Now().UnixNano())
			for pb.Next() {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				if _, err := s.GetToken(req, hashes[x%n]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCreateTokenAmong is BenchmarkCreateToken's group commit on a
// database that already holds 200,000 tokens, as a node's does after a
// while: the pages a new token is written to are no longer all in the
// writer's cache.
func BenchmarkCreateTokenAmong(b *testing.B) {
	ctx := context.Background()
	s, app, keys := benchStore(b, sqlite.Options{})
	service := func(h token.Hash) storage.Token {
		return storage.Token{Hash: h, Kind: token.Service, AppID: app, Flow: storage.FlowClientCredentials,
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), SecretHash: &h}
	}
	batch := make([]storage.Token, 0, 10_000)
	for range 20 {
		batch = batch[:0]
		for range cap(batch) {
			_, h := keys.Mint(token.Service)
			batch = append(batch, service(h))
		}
		if err := s.CreateTokens(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("200k", func(b *testing.B) {
		b.SetParallelism(8) // 16 callers on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, h := keys.Mint(token.Service)
				if err := s.CreateToken(ctx, service(h)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
