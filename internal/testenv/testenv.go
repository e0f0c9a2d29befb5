// Package testenv gives tests the real parts they need: a fresh PostgreSQL
// database and a headless Chromium. When one is missing, the test skips on a
// developer's machine and fails in CI (CI=true), so CI never counts a skipped
// test as passing.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// StrictEnv, when set (`make test` sets it, as CI=true does), makes a
// missing part fail its test rather than skip it: only `make test-short`
// may skip.
const StrictEnv = "LATCHKEY_TEST_STRICT"

// Missing fails the test under `make test` and in CI, saying what to
// install; elsewhere (`make test-short`, a bare `go test`) it skips it.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" || os.Getenv(StrictEnv) != "" {
		t.Fatalf("%s is required by `make test` but missing: install it (README: Run every test), or run `make test-short`, which skips what needs it", what)
	}
	t.Skipf("%s not available; `make test` requires it", what)
}

var dbSeq atomic.Int64

// PostgresDSN creates an empty database on the server named by
// LATCHKEY_TEST_POSTGRES, drops it when the test ends, and returns its DSN.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("LATCHKEY_TEST_POSTGRES")
	if base == "" {
		Missing(t, "PostgreSQL (LATCHKEY_TEST_POSTGRES)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("lk_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
