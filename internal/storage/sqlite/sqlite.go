// Package sqlite is the embedded storage backend: one SQLite file through the
// pure-Go modernc.org/sqlite driver, in WAL mode with foreign keys on and a
// busy timeout. Writes go through a single connection (SQLite has one writer
// at a time; queuing in the pool is cheaper than lock retries), and the
// writes of concurrent requests share transactions (group commit); reads use
// a pool of their own.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlstore"
)

// Options tune a database beyond its path.
type Options struct {
	// FullSync syncs the WAL at every commit (synchronous=FULL), so that a
	// commit survives power loss, not only the process being killed.
	FullSync bool
	// NoGroupCommit gives every write a transaction of its own (for
	// measuring what group commit saves).
	NoGroupCommit bool
}

// groupCommit is the most writes one shared transaction holds.
const groupCommit = 256

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*sqlstore.Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	// A new database is created readable by its owner only: it holds
	// everything but the server secret. SQLite creates the WAL and
	// shared-memory files with the database file's permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	q := url.Values{}
	sync := "synchronous(NORMAL)"
	if o.FullSync {
		sync = "synchronous(FULL)"
	}
	for _, p := range []string{"foreign_keys(1)", "busy_timeout(10000)", "journal_mode(WAL)", sync} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()

	// The writer never checkpoints: a checkpoint copies the WAL into the
	// database and syncs both, and every write would wait for it. The
	// checkpointer does that beside the writer.
	w, err := sql.Open("sqlite", dsn+"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	conn, err := w.Conn(ctx)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	err = sqlstore.Migrate(ctx, conn, sqlstore.SQLite)
	conn.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	cp, err := startCheckpoints(dsn)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	// Statements are prepared once (the driver keeps no cache of its own),
	// and writes share transactions: one writer, one commit for many.
	so := sqlstore.Options{CacheStatements: true, GroupCommit: groupCommit, OnClose: cp.close}
	if o.NoGroupCommit {
		so.GroupCommit = 0
	}
	return sqlstore.New(r, w, mapErr, so), nil
}

// checkpointEvery is how often the WAL is copied into the database.
const checkpointEvery = 200 * time.Millisecond

// checkpointer runs passive checkpoints on a connection of its own: they
// wait for no one and no one waits for them (readers and the writer go on
// meanwhile), so the WAL stays small without stalling writes.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

func startCheckpoints(dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.checkpoint("PASSIVE")
		}
	}
}

func (c *checkpointer) checkpoint(mode string) {
	var busy, log, done int
	// An error (busy: another process checkpoints) is retried next time.
	c.db.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done)
}

// close stops the checkpoints after a last one that empties the WAL; the
// store's other connections are closed by then.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	c.checkpoint("TRUNCATE")
	return c.db.Close()
}

func mapErr(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %v", storage.ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: a record it refers to does not exist", storage.ErrNotFound)
	}
	return err
}
