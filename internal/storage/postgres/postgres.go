// Package postgres is the storage backend for several Latchkey nodes on one
// PostgreSQL server, through pgx's database/sql driver.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlstore"
)

// migrationLock is the advisory lock key that serialises nodes migrating at once.
const migrationLock = 0x6c61_7463_686b_6579 // "latchkey"

// The backend is registered as "postgres" (storage.Open).
func init() {
	storage.Register("postgres", func(ctx context.Context, t storage.Target) (storage.Storage, error) {
		return Open(ctx, t.URL)
	})
}

// Open connects to the database at dsn (a postgres:// URL) and applies
// pending migrations, holding an advisory lock so that nodes starting
// together migrate one at a time.
func Open(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	s := sqlstore.New(db, db, mapErr, sqlstore.Options{BulkRows: 500}) // 8,500 values a statement, under the limit of 65,535
	s.Exclusive = exclusive(db)
	s.Stale = stale
	s.ForUpdate = " FOR UPDATE"
	s.ForKeyShare = " FOR KEY SHARE"
	s.GrantLocks = true
	return s, nil
}

// connectError says in one line why no connection was made: pgx names
// each address it tried on a line of its own, often with the same reason.
func connectError(err error) error {
	lines := strings.Split(err.Error(), "\n")
	var why []string
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if _, reason, ok := strings.Cut(l, ": "); ok {
			l = reason // "127.0.0.1:1 (127.0.0.1): dial error: …" → the reason
		}
		if l != "" && !slices.Contains(why, l) {
			why = append(why, l)
		}
	}
	first := strings.TrimSuffix(strings.TrimSpace(lines[0]), ":")
	if len(why) == 0 {
		return fmt.Errorf("postgres: %s", first)
	}
	return fmt.Errorf("postgres: %s: %s", first, strings.Join(why, "; "))
}

func migrate(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return connectError(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	if err := sqlstore.Migrate(ctx, conn, sqlstore.Postgres); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// stale reports the error of a pooled connection whose server shut it down
// while it idled (a restart): the backend is gone, so the statement never
// ran and may be sent again on a new connection.
func stale(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57P01" // admin_shutdown
}

func mapErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return fmt.Errorf("%w: %s", storage.ErrConflict, pe.ConstraintName)
		case pe.Code == "23503": // foreign_key_violation
			return fmt.Errorf("%w: a record it refers to does not exist", storage.ErrNotFound)
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, crash, cannot connect now
			return fmt.Errorf("%w: %s", storage.ErrUnavailable, pe.Message)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
	}
	return err
}

// exclusive runs fn holding a session advisory lock derived from name on a
// connection of its own, or returns false at once if another node holds it.
func exclusive(db *sql.DB) func(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	return func(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
		conn, err := db.Conn(ctx)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		var got bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, "latchkey:"+name).Scan(&got); err != nil || !got {
			return false, err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, "latchkey:"+name)
		return true, fn(ctx)
	}
}
