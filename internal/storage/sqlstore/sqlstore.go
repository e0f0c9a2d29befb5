// Package sqlstore implements storage.Storage over database/sql. The SQL is
// written once, in the dialect shared by SQLite (3.35+) and PostgreSQL:
// numbered $N parameters used in order, RETURNING, ON CONFLICT, partial
// indexes. The sqlite and postgres packages supply the connections, the
// schema and the driver-error mapping.
//
// Times are stored as Unix seconds, 0 meaning "never"; hashes as bytes.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Store is a storage.Storage over a read pool and a write pool, which may be
// the same. SQLite wants a single writer connection; PostgreSQL does not care.
type Store struct {
	r, w pool
	// observe, when set, is told how long each statement and transaction
	// took, by operation ("select tokens", "tx UpdateApp"), for metrics.
	observe func(op string, d time.Duration)
	// tracer, when set, makes each statement and transaction a span.
	tracer trace.Tracer
	ops    sync.Map // query → op
	nops   atomic.Int64
	// mapErr turns a driver error into storage.ErrNotFound, ErrConflict or
	// ErrUnavailable where it means one, and returns other errors unchanged.
	mapErr func(error) error
	// Exclusive, when set, runs fn holding a lock that other processes on
	// the same storage respect (an advisory lock on PostgreSQL). Unset, fn
	// just runs: SQLite serves one process.
	Exclusive func(ctx context.Context, name string, fn func(context.Context) error) (bool, error)
	// Stale, when set, reports an error of a pooled connection that died
	// while idle (its server restarted) before the statement ran: the
	// statement is then tried once more, on another connection.
	Stale func(error) bool
	// ForUpdate is appended to a SELECT that a read-modify-write
	// transaction will update (" FOR UPDATE" on PostgreSQL). SQLite needs
	// none: its write transactions start IMMEDIATE on the single writer.
	ForUpdate string
	// ForKeyShare is appended to a SELECT whose rows must not be locked
	// FOR UPDATE until the statement's transaction ends (" FOR KEY SHARE"
	// on PostgreSQL, the lock a foreign key takes, which many writers share
	// at little cost; SQLite's single writer needs none).
	ForKeyShare string
	// GrantLocks is PostgreSQL's way of refusing a token of a disabled
	// user or a revoked grant: the insert checks (whileLive), and a
	// transaction advisory lock on the family orders it with RevokeGrant.
	// Without it (SQLite) the schema's triggers refuse such a token, and
	// the single writer orders everything.
	GrantLocks bool
	// guarded holds the inserts built with ForKeyShare and GrantLocks (PostgreSQL's), once
	// they are set.
	guarded  guardedInserts
	closed   atomic.Bool
	onClose  func() error
	bulkRows int
}

// Options are what a backend asks of the Store beyond its pools.
type Options struct {
	// CacheStatements prepares each statement once per connection, for a
	// driver that does not cache them itself (pgx does; SQLite's does not).
	CacheStatements bool
	// GroupCommit, when above 0, runs the writes of concurrent callers in
	// shared transactions of up to this many writes (see committer): for a
	// backend with a single writer connection.
	GroupCommit int
	// OnClose, when set, runs after the pools are closed.
	OnClose func() error
	// BetweenBatches, when set with GroupCommit, runs on the writer after
	// each shared transaction, once its callers are answered: the one
	// moment the writer holds no transaction (for a backend's upkeep).
	BetweenBatches func(ctx context.Context, w *sql.DB)
	// BulkRows is how many rows one INSERT of a bulk write carries: many
	// save round trips to a server, but SQLite's driver binds parameters
	// in time quadratic in their number, so there one a statement (1, or
	// 0) is fastest.
	BulkRows int
}

// New returns a Store. mapErr translates the driver's errors.
func New(read, write *sql.DB, mapErr func(error) error, o Options) *Store {
	s := &Store{mapErr: mapErr}
	s.r, s.w = pool{DB: read, s: s}, pool{DB: write, s: s}
	if o.CacheStatements {
		s.r.stmts = &stmts{}
		s.w.stmts = s.r.stmts
		if write != read {
			s.w.stmts = &stmts{}
		}
	}
	if o.GroupCommit > 0 {
		s.w.group = newCommitter(s.w, o.GroupCommit, o.BetweenBatches)
	}
	s.onClose, s.bulkRows = o.OnClose, o.BulkRows
	return s
}

// Write is the pool writes go through (for a backend's own statements).
func (s *Store) Write() *sql.DB { return s.w.DB }

// Observe has every statement and transaction timed by operation and
// reported to fn; call it before the store is used.
func (s *Store) Observe(fn func(op string, d time.Duration)) { s.observe = fn }

// Trace makes every statement and transaction a span of t, a child of the
// span in its context; call it before the store is used.
func (s *Store) Trace(t trace.Tracer) { s.tracer = t }

// watched reports whether statements are timed or traced.
func (s *Store) watched() bool { return s.observe != nil || s.tracer != nil }

// begin starts watching op: the returned context carries its span, and end
// records its time and ends the span.
func (s *Store) begin(ctx context.Context, op string) (context.Context, func()) {
	start := time.Now()
	var span trace.Span
	if s.tracer != nil {
		ctx, span = s.tracer.Start(ctx, "storage "+op, trace.WithSpanKind(trace.SpanKindClient))
	}
	return ctx, func() {
		if s.observe != nil {
			s.observe(op, time.Since(start))
		}
		if span != nil {
			span.End()
		}
	}
}

// pool is a connection pool whose statements are timed when the store
// observes them, and prepared once when it caches statements. The write
// pool of a store with group commit runs its writes in shared
// transactions.
type pool struct {
	*sql.DB
	s     *Store
	stmts *stmts
	group *committer
}

// ExecContext runs a statement; with group commit, in the next shared
// transaction.
func (p pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if p.group != nil {
		var res sql.Result
		err := p.group.do(ctx, true, func(tx *Tx) error {
			var err error
			res, err = tx.ExecContext(ctx, query, args...)
			return err
		})
		return res, err
	}
	if p.s.watched() {
		var end func()
		ctx, end = p.s.begin(ctx, p.s.opOf(query))
		defer end()
	}
	// A cached statement is SQLite's, whose connections never go stale:
	// only the uncached run is tried again.
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	res, err := p.DB.ExecContext(ctx, query, args...)
	if p.s.stale(err) {
		res, err = p.DB.ExecContext(ctx, query, args...)
	}
	return res, err
}

func (p pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if p.s.watched() {
		var end func()
		ctx, end = p.s.begin(ctx, p.s.opOf(query))
		defer end()
	}
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	rows, err := p.DB.QueryContext(ctx, query, args...)
	if p.s.stale(err) {
		rows, err = p.DB.QueryContext(ctx, query, args...)
	}
	return rows, err
}

func (p pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if p.s.watched() {
		var end func()
		ctx, end = p.s.begin(ctx, p.s.opOf(query))
		defer end()
	}
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	row := p.DB.QueryRowContext(ctx, query, args...)
	if p.s.stale(row.Err()) {
		row = p.DB.QueryRowContext(ctx, query, args...)
	}
	return row
}

func (s *Store) stale(err error) bool { return err != nil && s.Stale != nil && s.Stale(err) }

// opOf names a statement by its verb and first table: "select tokens",
// "insert codes". Statements are literals, so the names are few; each is
// worked out once.
func (s *Store) opOf(query string) string {
	if op, ok := s.ops.Load(query); ok {
		return op.(string)
	}
	words := strings.Fields(strings.ToLower(query))
	op := "other"
	if len(words) > 0 {
		op = words[0]
		after := map[string]string{"select": "from", "delete": "from", "insert": "into", "update": "update"}[op]
		for i, w := range words {
			if w == after && i+1 < len(words) {
				op += " " + strings.Trim(words[i+1], "(),;")
				break
			}
		}
	}
	// Statements built with a varying number of values are many: the
	// cache keeps the first few hundred and works the rest out each time.
	if s.nops.Add(1) <= 512 {
		s.ops.Store(query, op)
	}
	return op
}

func (s *Store) RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	if s.Exclusive == nil {
		return true, fn(ctx)
	}
	ran, err := s.Exclusive(ctx, name, fn)
	return ran, s.err(err)
}

func (s *Store) DeleteExpired(ctx context.Context, codesBefore, tokensBefore, revokedBefore time.Time, limit int) (int64, int64, error) {
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM codes WHERE hash IN (SELECT hash FROM codes WHERE expires_at < $1 LIMIT $2)`, ts(codesBefore), limit)
	if err != nil {
		return 0, 0, s.err(err)
	}
	codes, _ := res.RowsAffected()
	var tokens int64
	for _, q := range []struct {
		sql    string
		before time.Time
	}{
		{`DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE expires_at <> 0 AND expires_at < $1 LIMIT $2)`, tokensBefore},
		{`DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE revoked_at <> 0 AND revoked_at < $1 LIMIT $2)`, revokedBefore},
		{`DELETE FROM refresh_tokens WHERE hash IN (SELECT hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)`, tokensBefore},
		{`DELETE FROM pushed_requests WHERE hash IN (SELECT hash FROM pushed_requests WHERE expires_at < $1 LIMIT $2)`, codesBefore},
		{`DELETE FROM device_codes WHERE hash IN (SELECT hash FROM device_codes WHERE expires_at < $1 LIMIT $2)`, tokensBefore},
		{`DELETE FROM dpop_proofs WHERE hash IN (SELECT hash FROM dpop_proofs WHERE expires_at < $1 LIMIT $2)`, codesBefore},
	} {
		res, err = s.w.ExecContext(ctx, q.sql, ts(q.before), limit)
		if err != nil {
			return codes, tokens, s.err(err)
		}
		n, _ := res.RowsAffected()
		tokens += n
	}
	// A revoked grant's record outlives the writes it could race (they
	// take milliseconds) by as long as revoked tokens are kept.
	_, err = s.w.ExecContext(ctx, `DELETE FROM revoked_grants WHERE family IN (SELECT family FROM revoked_grants WHERE revoked_at < $1 LIMIT $2)`, ts(revokedBefore), limit)
	if err != nil {
		return codes, tokens, s.err(err)
	}
	for _, q := range []struct {
		sql    string
		before time.Time
	}{
		// Sessions that ended, kept as long as revoked tokens are; those
		// never ended are over SessionLifetime after they began.
		{`DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE ended_at <> 0 AND ended_at < $1 LIMIT $2)`, revokedBefore},
		{`DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE created_at < $1 LIMIT $2)`, codesBefore.Add(-storage.SessionLifetime)},
		// Deliveries done with (delivered or given up on).
		{`DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE status <> 'pending' AND updated_at < $1 LIMIT $2)`, revokedBefore},
	} {
		if _, err := s.w.ExecContext(ctx, q.sql, ts(q.before), limit); err != nil {
			return codes, tokens, s.err(err)
		}
	}
	// The apps of sessions no longer kept.
	_, err = s.w.ExecContext(ctx, `DELETE FROM session_apps WHERE sid IN (SELECT sa.sid FROM session_apps sa
		WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.sid = sa.sid) LIMIT $1)`, limit)
	return codes, tokens, s.err(err)
}

var _ storage.Storage = (*Store)(nil)

func (s *Store) err(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
	}
	return s.mapErr(err)
}

func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return err
	}
	return s.w.PingContext(ctx)
}

// Close closes the pools; a second Close does nothing.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if s.w.group != nil {
		s.w.group.close()
	}
	err := s.r.Close()
	if s.w.DB != s.r.DB {
		err = errors.Join(err, s.w.Close())
	}
	if s.onClose != nil {
		err = errors.Join(err, s.onClose())
	}
	return err
}

// tx runs fn in a transaction (a shared one, with group commit): the
// read-modify-write callbacks and the multi-record writes.
func (s *Store) tx(ctx context.Context, name string, fn func(*Tx) error) error {
	return s.transact(ctx, name, false, fn)
}

// failFirst is tx for an fn whose statements, when one fails, fail before
// any of them has written (each statement is undone alone when it fails):
// with group commit it needs no savepoint of its own, whose journal SQLite
// writes page by page.
func (s *Store) failFirst(ctx context.Context, name string, fn func(*Tx) error) error {
	return s.transact(ctx, name, true, fn)
}

func (s *Store) transact(ctx context.Context, name string, single bool, fn func(*Tx) error) error {
	if s.watched() {
		var end func()
		ctx, end = s.begin(ctx, "tx "+name)
		defer end()
	}
	if s.w.group != nil {
		return s.err(s.w.group.do(ctx, single, fn))
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if s.stale(err) {
		tx, err = s.w.BeginTx(ctx, nil)
	}
	if err != nil {
		return s.err(err)
	}
	defer s.w.prepareLater(context.WithoutCancel(ctx))
	if err := fn(&Tx{tx: tx, p: s.w}); err != nil {
		tx.Rollback()
		return s.err(err)
	}
	return s.err(tx.Commit())
}

// ts and at convert between time.Time and the stored Unix seconds
// (storage.UnixSeconds), under names short enough for the many columns.
func ts(t time.Time) int64 { return storage.UnixSeconds(t) }

func at(n int64) time.Time { return storage.FromUnixSeconds(n) }

func hashOf(b []byte) token.Hash {
	var h token.Hash
	copy(h[:], b)
	return h
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// words splits a space-separated list ("" is none).
func words(s string) []string { return strings.Fields(s) }

type scanner interface{ Scan(...any) error }

func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) affected(res sql.Result, err error) error {
	if err != nil {
		return s.err(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.err(err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func scanHash(row scanner) (token.Hash, error) {
	var b []byte
	err := row.Scan(&b)
	return hashOf(b), err
}
