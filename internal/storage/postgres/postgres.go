// Package postgres is the storage backend for several Latchkey nodes on one
// PostgreSQL server, through pgx's database/sql driver.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the embedded schema.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// migrationLock is the advisory lock key that serialises nodes migrating at once.
const migrationLock = 0x6c61_7463_686b_6579 // "latchkey"

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
	return sqlstore.New(db, db, mapErr), nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	if err := sqlstore.Migrate(ctx, conn, Migrations()); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

func mapErr(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		return fmt.Errorf("%w: %s", storage.ErrConflict, pe.ConstraintName)
	case "23503": // foreign_key_violation
		return fmt.Errorf("%w: a record it refers to does not exist", storage.ErrNotFound)
	}
	return err
}
