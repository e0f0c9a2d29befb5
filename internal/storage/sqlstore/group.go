package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"latchkey/internal/storage"
)

// Tx is a transaction whose statements go through the write pool's
// statement cache and are timed like the pools'. In a shared transaction
// (group commit) a caller's cancellation does not reach its statements: an
// interrupted write would roll back every other caller's writes with it.
type Tx struct {
	tx     *sql.Tx
	p      pool
	shared bool
}

func (t *Tx) ctx(ctx context.Context, query string) (context.Context, func()) {
	if t.shared {
		ctx = context.WithoutCancel(ctx)
	}
	if t.p.s.watched() {
		return t.p.s.begin(ctx, t.p.s.opOf(query))
	}
	return ctx, func() {}
}

// ExecContext runs a statement that returns no rows.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, end := t.ctx(ctx, query)
	defer end()
	if st := t.p.txStmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query that returns rows.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, end := t.ctx(ctx, query)
	defer end()
	if st := t.p.txStmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query that returns at most one row.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx, end := t.ctx(ctx, query)
	defer end()
	if st := t.p.txStmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// stmts caches prepared statements by their text. SQLite's parser is a
// large share of a statement's cost, and the statements are literals, so
// each is prepared once per connection (database/sql re-prepares a cached
// statement on each connection it meets). Statements built with a varying
// number of values are many: the cache keeps the first few hundred and
// the rest are prepared each time.
type stmts struct {
	m sync.Map // query → *sql.Stmt
	n atomic.Int64
	// later are statements first met inside a transaction: preparing one
	// there would wait for the connection the transaction holds, so it
	// runs unprepared and is prepared once the transaction is over.
	mu    sync.Mutex
	later []string
}

const maxCachedStmts = 512

// stmt returns the cached statement of query, preparing it if needed, or
// nil when the pool caches none (or no more).
func (p pool) stmt(ctx context.Context, query string) *sql.Stmt {
	if p.stmts == nil {
		return nil
	}
	if st, ok := p.stmts.m.Load(query); ok {
		return st.(*sql.Stmt)
	}
	if p.stmts.n.Load() >= maxCachedStmts {
		return nil
	}
	st, err := p.DB.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil // the statement runs unprepared and reports its error
	}
	if old, loaded := p.stmts.m.LoadOrStore(query, st); loaded {
		st.Close()
		return old.(*sql.Stmt)
	}
	p.stmts.n.Add(1)
	return st
}

// txStmt is stmt for a statement inside a transaction: the cached one, or
// nil after noting the statement to prepare later.
func (p pool) txStmt(query string) *sql.Stmt {
	if p.stmts == nil {
		return nil
	}
	if st, ok := p.stmts.m.Load(query); ok {
		return st.(*sql.Stmt)
	}
	if p.stmts.n.Load() < maxCachedStmts {
		p.stmts.mu.Lock()
		if len(p.stmts.later) < maxCachedStmts {
			p.stmts.later = append(p.stmts.later, query)
		}
		p.stmts.mu.Unlock()
	}
	return nil
}

// prepareLater prepares the statements txStmt noted, with no transaction
// holding the connection.
func (p pool) prepareLater(ctx context.Context) {
	if p.stmts == nil {
		return
	}
	p.stmts.mu.Lock()
	later := p.stmts.later
	p.stmts.later = nil
	p.stmts.mu.Unlock()
	for _, q := range later {
		p.stmt(ctx, q)
	}
}

// committer runs the writes of concurrent callers in shared transactions
// on the one writer connection: group commit. A write that arrives while a
// transaction commits waits for the next one, with every other write that
// arrived meanwhile, so a busy node pays one commit (and, with
// synchronous=FULL, one fsync) for many writes instead of one each. Nothing
// is delayed on purpose: a lone write commits at once.
//
// Each write runs in a savepoint of its own (a single statement needs none),
// so a write that fails (a conflict, a callback's refusal) is undone alone
// and the others commit; a failure that may have ended the transaction
// (I/O, a full disk) fails the whole batch.
// Every caller is answered only after the transaction holding its write
// committed, or with the error that made it fail: nothing acknowledged can
// be lost. A caller that gives up while its write waits in the queue takes
// it back; one whose write already runs waits for the outcome.
type committer struct {
	p   pool
	max int
	// between runs after each batch (Options.BetweenBatches), or is nil.
	between func(context.Context, *sql.DB)
	queue   chan *groupWrite // unbuffered: a waiting sender is a waiting write
	quit    chan struct{}
	done    chan struct{}
	// batches and writes count the shared transactions and the writes
	// they held, for the average batch size.
	batches, writes atomic.Int64
}

type groupWrite struct {
	ctx context.Context
	fn  func(*Tx) error
	// single: fn runs one statement, which needs no savepoint.
	single bool
	state  atomic.Int32 // queued, running or abandoned
	err    error
	done   chan struct{}
}

const (
	queued int32 = iota
	running
	abandoned
)

// errClosed answers writes that reach a store being closed.
var errClosed = errors.New("sqlstore: storage is closed")

func newCommitter(p pool, max int, between func(context.Context, *sql.DB)) *committer {
	c := &committer{p: p, max: max, between: between, queue: make(chan *groupWrite), quit: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// do runs fn in a shared transaction and returns once that transaction has
// committed (fn's error, or the transaction's).
func (c *committer) do(ctx context.Context, single bool, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &groupWrite{ctx: ctx, fn: fn, single: single, done: make(chan struct{})}
	select {
	case c.queue <- w:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return errClosed
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		if w.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		<-w.done
		return w.err
	}
}

func (c *committer) close() {
	close(c.quit)
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	batch := make([]*groupWrite, 0, c.max)
	for {
		select {
		case w := <-c.queue:
			batch = append(batch[:0], w)
		case <-c.quit:
			return
		}
	fill:
		for len(batch) < c.max {
			select {
			case w := <-c.queue:
				batch = append(batch, w)
			default:
				break fill
			}
		}
		c.commit(batch)
		for _, w := range batch {
			close(w.done)
		}
		clear(batch)
		c.p.prepareLater(context.Background())
		if c.between != nil {
			c.between(context.Background(), c.p.DB)
		}
	}
}

// commit runs batch in one transaction.
func (c *committer) commit(batch []*groupWrite) {
	live := batch[:0:0]
	for _, w := range batch {
		if w.state.CompareAndSwap(queued, running) {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return
	}
	c.batches.Add(1)
	c.writes.Add(int64(len(live)))
	fail := func(err error) {
		for _, w := range live {
			if w.err == nil {
				w.err = err
			}
		}
	}
	ctx := context.WithoutCancel(live[0].ctx)
	tx, err := c.p.DB.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	t := &Tx{tx: tx, p: c.p, shared: true}
	for _, w := range live {
		// A lone write needs no savepoint (the transaction is one), nor
		// does one statement: a statement that fails on a constraint is
		// undone alone.
		saved := len(live) > 1 && !w.single
		if saved {
			if _, err := t.ExecContext(ctx, `SAVEPOINT w`); err != nil {
				tx.Rollback()
				fail(err)
				return
			}
		}
		w.err = w.fn(t)
		switch {
		case w.err == nil || len(live) == 1:
		case saved:
			if _, err := t.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
				tx.Rollback() // the failure took the transaction with it
				fail(err)
				return
			}
		case !c.p.s.statementError(w.err):
			// Any other failure (I/O, a full disk) may have ended the
			// transaction: every write of the batch fails with it.
			tx.Rollback()
			fail(w.err)
			return
		}
		if saved {
			if _, err := t.ExecContext(ctx, `RELEASE w`); err != nil {
				tx.Rollback()
				fail(err)
				return
			}
		}
	}
	if len(live) == 1 && live[0].err != nil {
		tx.Rollback()
		return
	}
	start := time.Now()
	err = tx.Commit()
	if c.p.s.observe != nil {
		c.p.s.observe("commit", time.Since(start))
	}
	if err != nil {
		fail(err)
	}
}

// statementError reports whether err, from one statement, undid that
// statement alone: no row, a constraint (a conflict, a missing reference).
func (s *Store) statementError(err error) bool {
	if errors.Is(err, sql.ErrNoRows) {
		return true
	}
	err = s.mapErr(err)
	return errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) ||
		errors.Is(err, storage.ErrUserDisabled) || errors.Is(err, storage.ErrGrantRevoked)
}

// GroupStats are the shared transactions committed so far and the writes
// they held.
func (s *Store) GroupStats() (batches, writes int64) {
	if s.w.group == nil {
		return 0, 0
	}
	return s.w.group.batches.Load(), s.w.group.writes.Load()
}

// writeRow runs a write that returns one row (INSERT … RETURNING, UPDATE …
// RETURNING) and scans it before its transaction ends.
func (s *Store) writeRow(ctx context.Context, scan func(scanner) error, query string, args ...any) error {
	if s.w.group == nil {
		return scan(s.w.QueryRowContext(ctx, query, args...))
	}
	return s.w.group.do(ctx, true, func(tx *Tx) error { return scan(tx.QueryRowContext(ctx, query, args...)) })
}
