package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlite"
	"latchkey/internal/storage/storagetest"
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
