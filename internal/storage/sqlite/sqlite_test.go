package sqlite_test

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlite"
	"latchkey/internal/storage/storagetest"
	"latchkey/internal/token"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "latchkey.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsDataAndSkipsAppliedMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	u := storage.User{Login: "kept", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetUserByLogin(ctx, "kept"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestOpenMissingDirectoryFails(t *testing.T) {
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"))
	if err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}

// The database holds every record, so it and its WAL are created readable
// by their owner only, whatever the umask.
func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u := storage.User{Login: "mode", PasswordHash: "x"}
	if err := s.CreateUser(context.Background(), &u); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: others can read it", filepath.Base(f), info.Mode().Perm())
		}
	}
}

// FullSync is SQLite's synchronous=FULL on the connection that writes;
// the default is NORMAL.
func TestFullSyncIsTheWritersSetting(t *testing.T) {
	for _, c := range []struct {
		o    sqlite.Options
		want int
	}{{sqlite.Options{}, 1}, {sqlite.Options{FullSync: true}, 2}} {
		s, err := sqlite.OpenWith(context.Background(), filepath.Join(t.TempDir(), "sync.db"), c.o)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := s.Write().QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got != c.want {
			t.Fatalf("%+v: synchronous = %d, want %d", c.o, got, c.want)
		}
	}
}

// TestWALStartsOverUnderSteadyWrites: writes that never pause still let
// the WAL start over from its beginning, again and again, instead of the
// file growing for as long as they go on. Each start over increments the
// WAL header's first salt (the WAL file format, bytes 16–19).
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	app := seedApp(t, s)
	keys, _ := token.NewKeyring("test-secret-0123456789abcdef0123456789ab")

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, h := keys.Mint(token.Service)
				err := s.CreateToken(ctx, storage.Token{Hash: h, Kind: token.Service, AppID: app, Flow: storage.FlowClientCredentials,
					IssuedAt: time.Now(), SecretHash: &h})
				if err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	first, starts := walSalt(t, path+"-wal"), 0
	for deadline := time.Now().Add(20 * time.Second); starts < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			st, _ := os.Stat(path + "-wal")
			t.Fatalf("the WAL started over %d times in 20 s of steady writes; it holds %d bytes", starts, st.Size())
		}
		starts = int(walSalt(t, path+"-wal") - first)
	}
}

func walSalt(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		t.Fatalf("reading the WAL header: %v", err)
	}
	return binary.BigEndian.Uint32(h[16:])
}
