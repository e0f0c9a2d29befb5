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
	"sync/atomic"
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
	// NoGroupCommit gives every write a transaction of its own, and the
	// writer checkpoints as SQLite does by itself (for measuring what group
	// commit saves).
	NoGroupCommit bool
}

// groupCommit is the most writes one shared transaction holds.
const groupCommit = 256

// The backend is registered as "sqlite" (storage.Open).
func init() {
	storage.Register("sqlite", func(ctx context.Context, t storage.Target) (storage.Storage, error) {
		return OpenWith(ctx, t.Path, Options{FullSync: t.FullSync})
	})
}

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

	// With group commit the writer checkpoints only when the checkpointer
	// asks it to, between two shared transactions (see checkpointer);
	// without (NoGroupCommit), as SQLite does by itself, every 1,000 pages.
	// A WAL grown by a burst is cut back to walLimit when it starts over.
	wdsn := fmt.Sprintf("%s&_pragma=journal_size_limit(%d)", dsn, walLimit)
	if !o.NoGroupCommit {
		wdsn += "&_pragma=wal_autocheckpoint(0)"
	}
	w, err := sql.Open("sqlite", wdsn)
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
	// Statements are prepared once (the driver keeps no cache of its own),
	// and writes share transactions: one writer, one commit for many.
	so := sqlstore.Options{CacheStatements: true}
	if !o.NoGroupCommit {
		cp, err := startCheckpoints(dsn)
		if err != nil {
			w.Close()
			r.Close()
			return nil, err
		}
		so.GroupCommit, so.BetweenBatches, so.OnClose = groupCommit, cp.finish, cp.close
	}
	return sqlstore.New(r, w, mapErr, so), nil
}

// walLimit is the size a WAL file is cut back to when it starts over.
const walLimit = 64 << 20

// checkpointEvery is how often the WAL is copied into the database.
const checkpointEvery = 200 * time.Millisecond

// restartFrames is the length of WAL (in pages) past which the checkpointer
// has the writer finish its checkpoint: SQLite's own checkpoint interval.
const restartFrames = 1000

// checkpointer copies the WAL into the database from a connection of its
// own, with passive checkpoints: they wait for no one and no one waits for
// them, so the writer never stalls on the copying.
//
// But a WAL only starts over from its beginning when a write begins with
// every frame copied, and under a steady stream of writes that never
// happens: each checkpoint finishes after more commits, and the file grows
// as long as the writes go on (by a hundred megabytes a second under the
// load tool). So when a checkpoint leaves a long WAL, the writer is asked to
// run one more itself between two shared transactions (finish): only the
// frames committed since are left to copy, no commit can land meanwhile, and
// the next write starts the WAL over.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	// due is set when the writer should finish a checkpoint.
	due atomic.Bool
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
			if frames, err := checkpoint(context.Background(), c.db, "PASSIVE"); err == nil && frames >= restartFrames {
				c.due.Store(true)
			}
		}
	}
}

// finish runs on the writer between shared transactions: the checkpoint
// that lets the WAL start over, when one is due.
func (c *checkpointer) finish(ctx context.Context, w *sql.DB) {
	if c.due.Swap(false) {
		checkpoint(ctx, w, "PASSIVE")
	}
}

// checkpoint runs a checkpoint of mode on db and returns the WAL's length
// in pages. An error (busy: another process checkpoints) is retried next
// time.
func checkpoint(ctx context.Context, db *sql.DB, mode string) (frames int, err error) {
	var busy, done int
	err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &done)
	return frames, err
}

// close stops the checkpoints after a last one that empties the WAL; the
// store's other connections are closed by then.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	checkpoint(context.Background(), c.db, "TRUNCATE")
	return c.db.Close()
}

func mapErr(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	if live := sqlstore.LiveInsertError(err); live != err {
		return live
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %v", storage.ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: a record it refers to does not exist", storage.ErrNotFound)
	}
	return err
}
