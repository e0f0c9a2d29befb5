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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"latchkey/internal/scope"
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
	// ForShare is appended to a SELECT whose rows must not change until
	// the statement's transaction ends (" FOR SHARE" on PostgreSQL, where
	// a concurrent update then waits; SQLite's single writer needs none).
	ForShare string
	// GrantLocks, on PostgreSQL, serialises RevokeGrant with the inserts
	// into the grant it revokes, by a transaction advisory lock on the
	// family: an insert under way when the grant is revoked is either
	// revoked with it or refused. SQLite's single writer needs none.
	GrantLocks bool
	// guarded holds the inserts built with ForShare and GrantLocks, once
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
	if s.watched() {
		var end func()
		ctx, end = s.begin(ctx, "tx "+name)
		defer end()
	}
	if s.w.group != nil {
		return s.err(s.w.group.do(ctx, false, fn))
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

type scanner interface{ Scan(...any) error }

// ---- users

const userCols = `id, login, password_hash, first_name, last_name, email, created_at, sessions_after, disabled_at`

func scanUser(row scanner) (storage.User, error) {
	var u storage.User
	var created, sessionsAfter, disabled int64
	err := row.Scan(&u.ID, &u.Login, &u.PasswordHash, &u.FirstName, &u.LastName, &u.Email, &created, &sessionsAfter, &disabled)
	u.CreatedAt, u.DisabledAt = at(created), at(disabled)
	if sessionsAfter != 0 {
		u.SessionsAfter = time.UnixMilli(sessionsAfter).UTC()
	}
	return u, err
}

func (s *Store) EndSessions(ctx context.Context, userID int64, when time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET sessions_after = $1 WHERE id = $2`, when.UnixMilli(), userID)
	return s.affected(res, err)
}

func (s *Store) CreateUser(ctx context.Context, u *storage.User) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&u.ID) },
		`INSERT INTO users (login, password_hash, first_name, last_name, email, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		u.Login, u.PasswordHash, u.FirstName, u.LastName, u.Email, ts(u.CreatedAt))
	return s.err(err)
}

func (s *Store) GetUser(ctx context.Context, id int64) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	return u, s.err(err)
}

func (s *Store) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE login = $1`, login))
	return u, s.err(err)
}

func (s *Store) GetUsers(ctx context.Context, ids []int64) ([]storage.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE id IN (`+placeholders(1, len(ids))+`)`, args...)
	if err != nil {
		return nil, s.err(err)
	}
	found, err := collect(rows, scanUser)
	if err != nil {
		return nil, s.err(err)
	}
	byID := make(map[int64]storage.User, len(found))
	for _, u := range found {
		byID[u.ID] = u
	}
	out := make([]storage.User, 0, len(found))
	for _, id := range ids {
		if u, ok := byID[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
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

// ---- apps

const appCols = `id, owner_id, title, description, type, redirect_uris, iframe_url, iframe_scope,
	secret_hash, secret_sealed, secret_created_at, old_secret_hash, old_secret_sealed,
	old_secret_created_at, old_secret_expires_at, service_token_sealed, client_credentials, created_at`

func scanApp(row scanner) (storage.App, error) {
	var a storage.App
	var uris string
	var secretHash, oldHash, oldSealed []byte
	var secretCreated, oldCreated, oldExpires, created int64
	err := row.Scan(&a.ID, &a.OwnerID, &a.Title, &a.Description, &a.Type, &uris, &a.IFrameURL, &a.IFrameScope,
		&secretHash, &a.Secret.Sealed, &secretCreated, &oldHash, &oldSealed,
		&oldCreated, &oldExpires, &a.ServiceTokenSealed, &a.ClientCredentials, &created)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(uris), &a.RedirectURIs); err != nil {
		return a, fmt.Errorf("app %d: redirect_uris: %w", a.ID, err)
	}
	a.Secret.Hash = hashOf(secretHash)
	a.Secret.CreatedAt = at(secretCreated)
	if oldHash != nil {
		a.OldSecret = &storage.ClientSecret{Hash: hashOf(oldHash), Sealed: oldSealed, CreatedAt: at(oldCreated), ExpiresAt: at(oldExpires)}
	}
	a.CreatedAt = at(created)
	return a, nil
}

// appArgs are the mutable columns, in the order of appCols after owner_id.
func appArgs(a *storage.App) []any {
	uris := a.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	var oldHash, oldSealed []byte
	var oldCreated, oldExpires int64
	if a.OldSecret != nil {
		oldHash, oldSealed = a.OldSecret.Hash[:], a.OldSecret.Sealed
		oldCreated, oldExpires = ts(a.OldSecret.CreatedAt), ts(a.OldSecret.ExpiresAt)
	}
	return []any{a.Title, a.Description, string(a.Type), jsonText(uris), a.IFrameURL, int64(a.IFrameScope),
		a.Secret.Hash[:], a.Secret.Sealed, ts(a.Secret.CreatedAt), oldHash, oldSealed,
		oldCreated, oldExpires, a.ServiceTokenSealed, a.ClientCredentials}
}

func (s *Store) CreateApp(ctx context.Context, a *storage.App, serviceToken storage.Token) error {
	args := append([]any{a.OwnerID}, appArgs(a)...)
	args = append(args, ts(a.CreatedAt))
	return s.tx(ctx, "CreateApp", func(tx *Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO apps (owner_id, title, description, type, redirect_uris, iframe_url, iframe_scope,
				secret_hash, secret_sealed, secret_created_at, old_secret_hash, old_secret_sealed,
				old_secret_created_at, old_secret_expires_at, service_token_sealed, client_credentials, created_at)
			 VALUES (`+placeholders(1, len(args))+`) RETURNING id`, args...).Scan(&a.ID)
		if err != nil {
			return err
		}
		serviceToken.AppID = a.ID
		return insertToken(ctx, tx, serviceToken)
	})
}

func (s *Store) GetApp(ctx context.Context, id int64) (storage.App, error) {
	a, err := scanApp(s.r.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE id = $1`, id))
	return a, s.err(err)
}

func (s *Store) UpdateApp(ctx context.Context, id int64, update func(*storage.App) error) (storage.App, error) {
	var a storage.App
	var updateErr error
	err := s.tx(ctx, "UpdateApp", func(tx *Tx) error {
		var err error
		a, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE id = $1`+s.ForUpdate, id))
		if err != nil {
			return err
		}
		if updateErr = update(&a); updateErr != nil {
			return updateErr
		}
		a.ID = id
		res, err := tx.ExecContext(ctx,
			`UPDATE apps SET title = $1, description = $2, type = $3, redirect_uris = $4, iframe_url = $5, iframe_scope = $6,
				secret_hash = $7, secret_sealed = $8, secret_created_at = $9, old_secret_hash = $10,
				old_secret_sealed = $11, old_secret_created_at = $12, old_secret_expires_at = $13,
				service_token_sealed = $14, client_credentials = $15
			 WHERE id = $16`, append(appArgs(&a), id)...)
		return s.affected(res, err)
	})
	if updateErr != nil {
		return a, updateErr
	}
	return a, err
}

func (s *Store) ReplaceServiceToken(ctx context.Context, t storage.Token, sealed []byte) ([]token.Hash, error) {
	var revoked []token.Hash
	err := s.tx(ctx, "ReplaceServiceToken", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE apps SET service_token_sealed = $1 WHERE id = $2`, sealed, t.AppID)
		if err := s.affected(res, err); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx,
			`UPDATE tokens SET revoked_at = $1, revoke_reason = $2
			 WHERE app_id = $3 AND kind = $4 AND flow = $5 AND revoked_at = 0 RETURNING hash`,
			ts(t.IssuedAt), string(storage.RevokedReplaced), t.AppID, string(token.Service), string(storage.FlowServiceToken))
		if err != nil {
			return err
		}
		if revoked, err = collect(rows, scanHash); err != nil {
			return err
		}
		if err := logRevoked(ctx, tx, revoked, t.IssuedAt); err != nil {
			return err
		}
		return insertToken(ctx, tx, t)
	})
	return revoked, err
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

func (s *Store) ListApps(ctx context.Context, f storage.AppFilter) ([]storage.App, error) {
	conds, args := []string{"id > $1"}, []any{f.After}
	if f.OwnerID != 0 {
		args = append(args, f.OwnerID)
		conds = append(conds, fmt.Sprintf("owner_id = $%d", len(args)))
	}
	if f.Type != "" {
		args = append(args, string(f.Type))
		conds = append(conds, fmt.Sprintf("type = $%d", len(args)))
	}
	limit := ""
	if f.Limit > 0 {
		limit = " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+appCols+` FROM apps WHERE `+strings.Join(conds, " AND ")+` ORDER BY id`+limit, args...)
	if err != nil {
		return nil, s.err(err)
	}
	apps, err := collect(rows, scanApp)
	return apps, s.err(err)
}

func (s *Store) DeleteApp(ctx context.Context, id int64) ([]token.Hash, error) {
	var hashes []token.Hash
	err := s.tx(ctx, "DeleteApp", func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT hash FROM tokens WHERE app_id = $1 AND revoked_at = 0`, id)
		if err != nil {
			return err
		}
		if hashes, err = collect(rows, scanHash); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE id = $1`, id)
		if err := s.affected(res, err); err != nil {
			return err
		}
		return logRevoked(ctx, tx, hashes, time.Now())
	})
	return hashes, err
}

func scanHash(row scanner) (token.Hash, error) {
	var b []byte
	err := row.Scan(&b)
	return hashOf(b), err
}

// ---- communities

func (s *Store) CreateCommunity(ctx context.Context, c *storage.Community, ownerID int64) error {
	return s.tx(ctx, "CreateCommunity", func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO communities (name, created_at) VALUES ($1, $2) RETURNING id`,
			c.Name, ts(c.CreatedAt)).Scan(&c.ID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO community_admins (community_id, user_id, added_at) VALUES ($1, $2, $3)`,
			c.ID, ownerID, ts(c.CreatedAt))
		return err
	})
}

func scanCommunity(row scanner) (storage.Community, error) {
	var c storage.Community
	var created int64
	err := row.Scan(&c.ID, &c.Name, &created)
	c.CreatedAt = at(created)
	return c, err
}

func (s *Store) GetCommunity(ctx context.Context, id int64) (storage.Community, error) {
	c, err := scanCommunity(s.r.QueryRowContext(ctx, `SELECT id, name, created_at FROM communities WHERE id = $1`, id))
	return c, s.err(err)
}

func (s *Store) AddCommunityAdmin(ctx context.Context, communityID, userID int64, when time.Time) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO community_admins (community_id, user_id, added_at) VALUES ($1, $2, $3)
		 ON CONFLICT (community_id, user_id) DO NOTHING`, communityID, userID, ts(when))
	return s.err(err)
}

func (s *Store) RemoveCommunityAdmin(ctx context.Context, communityID, userID int64) error {
	return s.tx(ctx, "RemoveCommunityAdmin", func(tx *Tx) error {
		// Touching the community row serialises concurrent removals on
		// PostgreSQL, so two admins cannot remove each other and leave none.
		res, err := tx.ExecContext(ctx, `UPDATE communities SET id = id WHERE id = $1`, communityID)
		if err := s.affected(res, err); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM community_admins WHERE community_id = $1`, communityID).Scan(&n); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM community_admins WHERE community_id = $1 AND user_id = $2`, communityID, userID)
		if err := s.affected(res, err); err != nil {
			return err
		}
		if n <= 1 {
			return storage.ErrConflict // rolls back the delete
		}
		return nil
	})
}

func (s *Store) ListCommunityAdmins(ctx context.Context, communityID int64) ([]storage.User, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT u.id, u.login, u.password_hash, u.first_name, u.last_name, u.email, u.created_at, u.sessions_after, u.disabled_at
		 FROM users u JOIN community_admins a ON a.user_id = u.id
		 WHERE a.community_id = $1 ORDER BY a.added_at, u.id`, communityID)
	if err != nil {
		return nil, s.err(err)
	}
	users, err := collect(rows, scanUser)
	return users, s.err(err)
}

func (s *Store) ListAdminCommunities(ctx context.Context, userID int64) ([]storage.Community, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT c.id, c.name, c.created_at FROM communities c JOIN community_admins a ON a.community_id = c.id
		 WHERE a.user_id = $1 ORDER BY c.id`, userID)
	if err != nil {
		return nil, s.err(err)
	}
	cs, err := collect(rows, scanCommunity)
	return cs, s.err(err)
}

func (s *Store) IsCommunityAdmin(ctx context.Context, communityID, userID int64) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM community_admins WHERE community_id = $1 AND user_id = $2`, communityID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, s.err(err)
}

// ---- consents

func (s *Store) MergeConsent(ctx context.Context, c storage.Consent) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO consents (user_id, app_id, scope, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
		 ON CONFLICT (user_id, app_id) DO UPDATE SET scope = consents.scope | excluded.scope, updated_at = excluded.updated_at`,
		c.UserID, c.AppID, int64(c.Scope), ts(c.CreatedAt), ts(c.UpdatedAt))
	return s.err(err)
}

func scanConsent(row scanner) (storage.Consent, error) {
	var c storage.Consent
	var created, updated int64
	err := row.Scan(&c.UserID, &c.AppID, &c.Scope, &created, &updated)
	c.CreatedAt, c.UpdatedAt = at(created), at(updated)
	return c, err
}

func (s *Store) GetConsent(ctx context.Context, userID, appID int64) (storage.Consent, error) {
	c, err := scanConsent(s.r.QueryRowContext(ctx,
		`SELECT user_id, app_id, scope, created_at, updated_at FROM consents WHERE user_id = $1 AND app_id = $2`, userID, appID))
	return c, s.err(err)
}

func (s *Store) ListConsentsByUser(ctx context.Context, userID int64) ([]storage.Consent, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT user_id, app_id, scope, created_at, updated_at FROM consents WHERE user_id = $1 ORDER BY updated_at DESC, app_id`, userID)
	if err != nil {
		return nil, s.err(err)
	}
	cs, err := collect(rows, scanConsent)
	return cs, s.err(err)
}

func (s *Store) DeleteConsent(ctx context.Context, userID, appID int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM consents WHERE user_id = $1 AND app_id = $2`, userID, appID)
	return s.affected(res, err)
}

func (s *Store) CountAppUsers(ctx context.Context, appID int64) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM consents WHERE app_id = $1`, appID).Scan(&n)
	return n, s.err(err)
}

// ---- codes

const codeCols = `hash, app_id, user_id, community_ids, scope, redirect_uri, code_challenge,
	code_challenge_method, ip, issued_at, expires_at, used_at, nonce, device_id`

func scanCode(row scanner) (storage.Code, error) {
	var c storage.Code
	var hash []byte
	var communities string
	var issued, expires, used int64
	err := row.Scan(&hash, &c.AppID, &c.UserID, &communities, &c.Scope, &c.RedirectURI, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.IP, &issued, &expires, &used, &c.Nonce, &c.DeviceID)
	if err != nil {
		return c, err
	}
	c.Hash = hashOf(hash)
	if err := json.Unmarshal([]byte(communities), &c.CommunityIDs); err != nil {
		return c, fmt.Errorf("code community_ids: %w", err)
	}
	c.IssuedAt, c.ExpiresAt, c.UsedAt = at(issued), at(expires), at(used)
	return c, nil
}

func (s *Store) CreateCode(ctx context.Context, c storage.Code) error {
	ids := c.CommunityIDs
	if ids == nil {
		ids = []int64{}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO codes (`+codeCols+`) VALUES (`+placeholders(1, 14)+`)`,
		c.Hash[:], c.AppID, c.UserID, jsonText(ids), int64(c.Scope), c.RedirectURI, c.CodeChallenge,
		c.CodeChallengeMethod, c.IP, ts(c.IssuedAt), ts(c.ExpiresAt), ts(c.UsedAt), c.Nonce, c.DeviceID)
	return s.err(err)
}

func (s *Store) GetCode(ctx context.Context, hash token.Hash) (storage.Code, error) {
	c, err := scanCode(s.r.QueryRowContext(ctx, `SELECT `+codeCols+` FROM codes WHERE hash = $1`, hash[:]))
	return c, s.err(err)
}

func (s *Store) UseCode(ctx context.Context, hash token.Hash, now time.Time) (storage.Code, error) {
	// One round trip in the common case: the conditional update both claims
	// the code and returns it. Only a miss needs a second look.
	var c storage.Code
	err := s.writeRow(ctx, func(r scanner) (err error) { c, err = scanCode(r); return err },
		`UPDATE codes SET used_at = $1 WHERE hash = $2 AND used_at = 0 RETURNING `+codeCols, ts(now), hash[:])
	if !errors.Is(err, sql.ErrNoRows) {
		return c, s.err(err)
	}
	if c, err = s.GetCode(ctx, hash); err != nil {
		return c, err
	}
	return c, storage.ErrConflict
}

// ---- tokens

const tokenCols = `hash, kind, app_id, user_id, community_id, scope, issued_at, expires_at, ip, flow, code_hash, secret_hash, revoked_at, revoke_reason, last_used_at, jkt`

func scanToken(row scanner) (storage.Token, error) {
	var t storage.Token
	var codeHash, secretHash hashColumn
	var kind string
	var app sql.NullInt64
	var issued, expires, revoked, used int64
	err := row.Scan(&hashColumn{h: &t.Hash}, &kind, &app, &t.UserID, &t.CommunityID, &t.Scope, &issued, &expires, &t.IP, &t.Flow, &codeHash, &secretHash, &revoked, &t.RevokeReason, &used, &t.JKT)
	if err != nil {
		return t, err
	}
	if len(kind) == 1 {
		t.Kind = token.Kind(kind[0])
	}
	t.CodeHash, t.SecretHash = codeHash.h, secretHash.h
	t.AppID = app.Int64
	t.IssuedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt = at(issued), at(expires), at(revoked), at(used)
	return t, nil
}

// hashColumn scans a hash column: into h when it is set, else into a new
// hash (nil for NULL). It copies the driver's bytes once, where scanning
// into []byte would copy them into a slice first (the check of every
// token that misses the cache scans three).
type hashColumn struct{ h *token.Hash }

func (c *hashColumn) Scan(src any) error {
	switch b := src.(type) {
	case nil:
		c.h = nil
	case []byte:
		if c.h == nil {
			c.h = new(token.Hash)
		}
		copy(c.h[:], b)
	default:
		return fmt.Errorf("sqlstore: a hash column holds %T", src)
	}
	return nil
}

func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	res, err := s.w.ExecContext(ctx, s.guardedInserts().token, tokenArgs(nil, t)...)
	return s.insertedLive(ctx, res, err, t.CodeHash)
}

// whileLive is an INSERT into table of one row of n values that stores
// nothing when the user whose id is value userArg is disabled, or the
// grant named by value familyArg (NULL: none) was revoked. The user's row
// is read with ForShare, so on PostgreSQL a DisableUser running at the
// same time waits for this insert (and then revokes what it stored), or
// this insert waits for it (and then stores nothing); GrantLocks does the
// same for RevokeGrant. A user id that names no user (0, for service
// tokens) stores the row.
func (s *Store) whileLive(table string, n, userArg, familyArg int) string {
	lock, locked := "", ""
	if s.GrantLocks {
		lock = fmt.Sprintf(`, g AS (SELECT pg_advisory_xact_lock_shared(%s))`, grantLockKey(familyArg))
		locked = ` AND EXISTS (SELECT 1 FROM g)`
	}
	return fmt.Sprintf(`WITH u AS (SELECT disabled_at FROM users WHERE id = $%d%s)%s INSERT INTO %s SELECT %s
		WHERE NOT EXISTS (SELECT 1 FROM u WHERE disabled_at <> 0) AND NOT EXISTS (SELECT 1 FROM revoked_grants WHERE family = $%d)%s`,
		userArg, s.ForShare, lock, table, placeholders(1, n), familyArg, locked)
}

// grantLockKey is the advisory lock key of the family in value arg, on
// PostgreSQL (NULL for none: no lock is taken).
func grantLockKey(arg int) string {
	return fmt.Sprintf(`hashtextextended(encode($%d, 'hex'), 0)`, arg)
}

func (s *Store) RevokeGrant(ctx context.Context, family token.Hash, reason storage.RevokeReason, now time.Time) ([]token.Hash, error) {
	var hashes []token.Hash
	err := s.tx(ctx, "RevokeGrant", func(tx *Tx) error {
		if s.GrantLocks {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+grantLockKey(1)+`)`, family[:]); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_grants (family, revoked_at) VALUES ($1, $2) ON CONFLICT (family) DO NOTHING`, family[:], ts(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at = 0`, ts(now), family[:]); err != nil {
			return err
		}
		var err error
		hashes, err = revokeIn(ctx, tx, "code_hash = $3", []any{family[:]}, reason, now)
		return err
	})
	return hashes, err
}

// guardedInserts returns the inserts of tokens and refresh tokens, which
// store nothing for a disabled user (the user id is the 4th value of both)
// or into a revoked grant (a token's code_hash, a refresh token's family).
type guardedInserts struct {
	once           sync.Once
	token, refresh string
}

func (s *Store) guardedInserts() *guardedInserts {
	g := &s.guarded
	g.once.Do(func() {
		g.token = s.whileLive(`tokens (`+tokenInsertNames+`)`, tokenInsertCols, 4, 11)
		g.refresh = s.whileLive(`refresh_tokens (`+refreshCols+`)`, 13, 4, 2)
	})
	return g
}

// insertedLive reads the result of a whileLive insert into family (nil:
// none): a row not stored was refused for its grant or its user.
func (s *Store) insertedLive(ctx context.Context, res sql.Result, err error, family *token.Hash) error {
	if err != nil {
		return s.err(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.err(err)
	} else if n > 0 {
		return nil
	}
	if family != nil {
		var revoked bool
		err := s.w.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_grants WHERE family = $1)`, family[:]).Scan(&revoked)
		if err != nil {
			return s.err(err)
		}
		if revoked {
			return storage.ErrGrantRevoked
		}
	}
	return storage.ErrUserDisabled
}

// execer is a pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertToken(ctx context.Context, db execer, t storage.Token) error {
	_, err := db.ExecContext(ctx, `INSERT INTO tokens (`+tokenInsertNames+`) VALUES (`+placeholders(1, tokenInsertCols)+`)`, tokenArgs(nil, t)...)
	return err
}

// A token's row is inserted with the columns it is read with, and two that
// are written only: sealed (read by ReusableToken alone) and parent_hash
// (followed by TokenFilter.DerivedFrom).
const (
	tokenInsertNames = tokenCols + `, sealed, parent_hash`
	tokenInsertCols  = 18
)

// tokenArgs appends t's row, as inserted, to args.
func tokenArgs(args []any, t storage.Token) []any {
	var codeHash, secretHash, parent []byte
	if t.CodeHash != nil {
		codeHash = t.CodeHash[:]
	}
	if t.SecretHash != nil {
		secretHash = t.SecretHash[:]
	}
	if t.Parent != nil {
		parent = t.Parent[:]
	}
	return append(args, t.Hash[:], string(t.Kind), nullID(t.AppID), t.UserID, t.CommunityID, int64(t.Scope), ts(t.IssuedAt), ts(t.ExpiresAt),
		t.IP, string(t.Flow), codeHash, secretHash, ts(t.RevokedAt), string(t.RevokeReason), ts(t.LastUsedAt), t.JKT, t.Sealed, parent)
}

// CreateTokens inserts tokens in one transaction, Options.BulkRows rows per
// statement.
func (s *Store) CreateTokens(ctx context.Context, tokens []storage.Token) error {
	perInsert := max(1, s.bulkRows)
	insert := func(rows int) string {
		var q strings.Builder
		q.WriteString(`INSERT INTO tokens (` + tokenInsertNames + `) VALUES `)
		for i := range rows {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + placeholders(1+i*tokenInsertCols, tokenInsertCols) + ")")
		}
		return q.String()
	}
	full := insert(perInsert)
	return s.tx(ctx, "CreateTokens", func(tx *Tx) error {
		args := make([]any, 0, perInsert*tokenInsertCols)
		for chunk := range slices.Chunk(tokens, perInsert) {
			query := full
			if len(chunk) < perInsert {
				query = insert(len(chunk))
			}
			args = args[:0]
			for _, t := range chunk {
				args = tokenArgs(args, t)
			}
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) ReusableToken(ctx context.Context, appID, userID int64, flow storage.Flow, m scope.Mask, validUntil time.Time) (storage.Token, []byte, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+tokenCols+`, sealed FROM tokens
		WHERE app_id = $1 AND user_id = $2 AND flow = $3 AND scope = $4 AND revoked_at = 0 AND sealed IS NOT NULL
		  AND (expires_at = 0 OR expires_at > $5)
		ORDER BY issued_at DESC LIMIT 1`, appID, userID, string(flow), int64(m), ts(validUntil))
	var sealed []byte
	t, err := scanToken(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &sealed)...) }))
	return t, sealed, s.err(err)
}

// scanFunc adapts a Scan with extra destinations to a scanner.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

func (s *Store) GetToken(ctx context.Context, hash token.Hash) (storage.Token, error) {
	// A read by primary key takes microseconds: there is nothing for a
	// cancellation to cut short, and a cancellable context costs every
	// cache miss two goroutines (database/sql's and the SQLite driver's
	// watchers) and eight allocations.
	t, err := scanToken(s.r.QueryRowContext(context.WithoutCancel(ctx), `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash[:]))
	return t, s.err(err)
}

// nullID stores an absent reference (0) as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func (s *Store) TouchTokens(ctx context.Context, used map[token.Hash]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	return s.tx(ctx, "TouchTokens", func(tx *Tx) error {
		for h, when := range used {
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = $1 WHERE hash = $2 AND last_used_at < $1`, ts(when), h[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// tokenWhere renders f as a WHERE condition whose parameters start at $from.
func tokenWhere(f storage.TokenFilter, from int) (string, []any, error) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, fmt.Sprintf(cond, from+len(args)-1))
	}
	if f.Hash != nil {
		add("hash = $%d", f.Hash[:])
	}
	if f.Kind != 0 {
		add("kind = $%d", string(f.Kind))
	}
	if f.AppID != 0 {
		add("app_id = $%d", f.AppID)
	}
	if f.UserID != 0 {
		add("user_id = $%d", f.UserID)
	}
	if f.CommunityID != 0 {
		add("community_id = $%d", f.CommunityID)
	}
	if f.CodeHash != nil {
		add("code_hash = $%d", f.CodeHash[:])
	}
	if f.SecretHash != nil {
		add("secret_hash = $%d", f.SecretHash[:])
	}
	if f.DerivedFrom != nil {
		// Exchanges form a tree under the token: walk it by parent_hash.
		add(`hash IN (WITH RECURSIVE derived (h) AS (SELECT hash FROM tokens WHERE parent_hash = $%d
			UNION SELECT t.hash FROM tokens t JOIN derived ON t.parent_hash = derived.h) SELECT h FROM derived)`, f.DerivedFrom[:])
	}
	if f.Flow != "" {
		add("flow = $%d", string(f.Flow))
	}
	if len(conds) == 0 {
		return "", nil, errors.New("sqlstore: empty token filter")
	}
	if f.LiveOnly {
		conds = append(conds, "revoked_at = 0")
	}
	return strings.Join(conds, " AND "), args, nil
}

func (s *Store) ListTokens(ctx context.Context, f storage.TokenFilter) ([]storage.Token, error) {
	where, args, err := tokenWhere(f, 1)
	if err != nil {
		return nil, err
	}
	limit := ""
	if f.Limit > 0 {
		limit = " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE `+where+` ORDER BY issued_at DESC, hash`+limit, args...)
	if err != nil {
		return nil, s.err(err)
	}
	ts, err := collect(rows, scanToken)
	return ts, s.err(err)
}

func (s *Store) RevokeTokens(ctx context.Context, f storage.TokenFilter, reason storage.RevokeReason, now time.Time) ([]token.Hash, error) {
	where, args, err := tokenWhere(f, 3)
	if err != nil {
		return nil, err
	}
	var hashes []token.Hash
	err = s.tx(ctx, "RevokeTokens", func(tx *Tx) error {
		var err error
		hashes, err = revokeIn(ctx, tx, where, args, reason, now)
		return err
	})
	return hashes, err
}

// revokeIn revokes the live tokens that where (its parameters from $3 on,
// args) matches, in tx, logs them for the other nodes, and returns their
// hashes.
func revokeIn(ctx context.Context, tx *Tx, where string, args []any, reason storage.RevokeReason, now time.Time) ([]token.Hash, error) {
	rows, err := tx.QueryContext(ctx, `UPDATE tokens SET revoked_at = $1, revoke_reason = $2 WHERE revoked_at = 0 AND `+where+` RETURNING hash`,
		append([]any{ts(now), string(reason)}, args...)...)
	if err != nil {
		return nil, err
	}
	hashes, err := collect(rows, scanHash)
	if err != nil {
		return nil, err
	}
	return hashes, logRevoked(ctx, tx, hashes, now)
}

// logRevoked appends hashes to the revocation log, in the caller's
// transaction, in batches of one statement each.
func logRevoked(ctx context.Context, tx *Tx, hashes []token.Hash, at time.Time) error {
	const batch = 200
	for len(hashes) > 0 {
		n := min(len(hashes), batch)
		var q strings.Builder
		q.WriteString(`INSERT INTO revocations (hash, at) VALUES `)
		args := make([]any, 0, 2*n)
		for i, h := range hashes[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "($%d, $%d)", 2*i+1, 2*i+2)
			args = append(args, h[:], ts(at))
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		hashes = hashes[n:]
	}
	return nil
}

func (s *Store) RevocationsAfter(ctx context.Context, seq int64, limit int) ([]token.Hash, int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, hash FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, seq, s.err(err)
	}
	defer rows.Close()
	var hashes []token.Hash
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, seq, s.err(err)
		}
		hashes = append(hashes, hashOf(b))
	}
	return hashes, seq, s.err(rows.Err())
}

func (s *Store) LastRevocation(ctx context.Context) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM revocations`).Scan(&seq)
	return seq, s.err(err)
}

func (s *Store) PruneRevocations(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM revocations WHERE at < $1`, ts(before))
	if err != nil {
		return 0, s.err(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ---- pushed authorization requests

func (s *Store) CreatePushedRequest(ctx context.Context, hash token.Hash, appID int64, params string, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO pushed_requests (hash, app_id, params, expires_at) VALUES ($1, $2, $3, $4)`,
		hash[:], appID, params, ts(expires))
	return s.err(err)
}

func (s *Store) UsePushedRequest(ctx context.Context, hash token.Hash, appID int64, now time.Time, spend bool) (string, error) {
	var params string
	q := `SELECT params FROM pushed_requests WHERE hash = $2 AND app_id = $3 AND used_at = 0 AND expires_at > $1`
	db := s.r
	if spend {
		q = `UPDATE pushed_requests SET used_at = $1 WHERE hash = $2 AND app_id = $3 AND used_at = 0 AND expires_at > $1 RETURNING params`
		db = s.w
	}
	err := db.QueryRowContext(ctx, q, ts(now), hash[:], appID).Scan(&params)
	return params, s.err(err)
}

// ---- device codes

const deviceCols = `hash, user_code, app_id, scope, status, user_id, interval_s, last_poll_at, issued_at, expires_at`

func scanDevice(row scanner) (storage.DeviceCode, error) {
	var d storage.DeviceCode
	var hash, userCode []byte
	var interval, poll, issued, expires int64
	err := row.Scan(&hash, &userCode, &d.AppID, &d.Scope, &d.Status, &d.UserID, &interval, &poll, &issued, &expires)
	d.Hash, d.UserCode = hashOf(hash), hashOf(userCode)
	d.Interval = time.Duration(interval) * time.Second
	d.LastPollAt, d.IssuedAt, d.ExpiresAt = at(poll), at(issued), at(expires)
	return d, err
}

func (s *Store) CreateDeviceCode(ctx context.Context, d storage.DeviceCode) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO device_codes (`+deviceCols+`) VALUES (`+placeholders(1, 10)+`)`,
		d.Hash[:], d.UserCode[:], d.AppID, int64(d.Scope), string(d.Status), d.UserID, int64(d.Interval/time.Second), ts(d.LastPollAt), ts(d.IssuedAt), ts(d.ExpiresAt))
	return s.err(err)
}

func (s *Store) DeviceCodeByUserCode(ctx context.Context, userCode token.Hash) (storage.DeviceCode, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM device_codes WHERE user_code = $1`, userCode[:]))
	return d, s.err(err)
}

func (s *Store) UpdateDeviceCode(ctx context.Context, hash token.Hash, appID int64, update func(*storage.DeviceCode) error) (storage.DeviceCode, error) {
	var d storage.DeviceCode
	var updateErr error
	err := s.tx(ctx, "UpdateDeviceCode", func(tx *Tx) error {
		var err error
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM device_codes WHERE hash = $1 AND ($2 = 0 OR app_id = $2)`+s.ForUpdate, hash[:], appID))
		if err != nil {
			return err
		}
		if updateErr = update(&d); updateErr != nil {
			return updateErr
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_codes SET status = $1, user_id = $2, interval_s = $3, last_poll_at = $4 WHERE hash = $5`,
			string(d.Status), d.UserID, int64(d.Interval/time.Second), ts(d.LastPollAt), hash[:])
		return err
	})
	if updateErr != nil {
		return d, updateErr
	}
	return d, err
}

// ---- DPoP proofs

func (s *Store) UseProof(ctx context.Context, hash token.Hash, expires time.Time) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO dpop_proofs (hash, expires_at) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING`, hash[:], ts(expires))
	if err != nil {
		return s.err(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return storage.ErrConflict
	}
	return nil
}

// ---- signing keys

func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO signing_keys (kid, alg, sealed, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)`,
		k.KID, k.Algorithm, k.Sealed, k.CreatedAt.UnixMilli(), ts(k.RetiredAt))
	return s.err(err)
}

func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, alg, sealed, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid`)
	if err != nil {
		return nil, s.err(err)
	}
	keys, err := collect(rows, func(row scanner) (storage.SigningKey, error) {
		var k storage.SigningKey
		var created, retired int64
		err := row.Scan(&k.KID, &k.Algorithm, &k.Sealed, &created, &retired)
		k.CreatedAt, k.RetiredAt = time.UnixMilli(created).UTC(), at(retired)
		return k, err
	})
	return keys, s.err(err)
}

func (s *Store) RetireSigningKey(ctx context.Context, kid string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at = 0`, ts(now), kid)
	return s.affected(res, err)
}

// ---- refresh tokens

const refreshCols = `hash, family, app_id, user_id, scope, auth_time, nonce, issued_at, expires_at, used_at, revoked_at, jkt, device_id`

func scanRefresh(row scanner) (storage.RefreshToken, error) {
	var r storage.RefreshToken
	var hash, family []byte
	var auth, issued, expires, used, revoked int64
	err := row.Scan(&hash, &family, &r.AppID, &r.UserID, &r.Scope, &auth, &r.Nonce, &issued, &expires, &used, &revoked, &r.JKT, &r.DeviceID)
	r.Hash, r.Family = hashOf(hash), hashOf(family)
	r.AuthTime, r.IssuedAt, r.ExpiresAt, r.UsedAt, r.RevokedAt = at(auth), at(issued), at(expires), at(used), at(revoked)
	return r, err
}

func (s *Store) CreateRefreshToken(ctx context.Context, r storage.RefreshToken) error {
	res, err := s.w.ExecContext(ctx, s.guardedInserts().refresh,
		r.Hash[:], r.Family[:], r.AppID, r.UserID, int64(r.Scope), ts(r.AuthTime), r.Nonce, ts(r.IssuedAt), ts(r.ExpiresAt), ts(r.UsedAt), ts(r.RevokedAt), r.JKT, r.DeviceID)
	return s.insertedLive(ctx, res, err, &r.Family)
}

func (s *Store) UseRefreshToken(ctx context.Context, hash token.Hash, appID int64, by storage.Holder, now time.Time) (storage.RefreshToken, error) {
	var r storage.RefreshToken
	err := s.writeRow(ctx, func(row scanner) (err error) { r, err = scanRefresh(row); return err },
		`UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2 AND app_id = $3 AND used_at = 0 AND revoked_at = 0
		 AND (jkt = '' OR jkt = $4) AND (device_id = '' OR device_id = $5) RETURNING `+refreshCols,
		ts(now), hash[:], appID, by.JKT, by.DeviceID)
	if !errors.Is(err, sql.ErrNoRows) {
		return r, s.err(err)
	}
	r, err = scanRefresh(s.r.QueryRowContext(ctx, `SELECT `+refreshCols+` FROM refresh_tokens WHERE hash = $1 AND app_id = $2`, hash[:], appID))
	if err != nil {
		return r, s.err(err)
	}
	return r, storage.ErrConflict
}

func (s *Store) RefreshFamily(ctx context.Context, hash token.Hash, appID int64) (token.Hash, error) {
	var b []byte
	err := s.r.QueryRowContext(ctx, `SELECT family FROM refresh_tokens WHERE hash = $1 AND app_id = $2`, hash[:], appID).Scan(&b)
	return hashOf(b), s.err(err)
}

func (s *Store) RevokeRefreshTokens(ctx context.Context, family *token.Hash, appID, userID int64, now time.Time) (int64, error) {
	var res sql.Result
	var err error
	if family != nil {
		res, err = s.w.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at = 0`, ts(now), family[:])
	} else if appID == 0 {
		res, err = s.w.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at = 0`, ts(now), userID)
	} else {
		res, err = s.w.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE app_id = $2 AND user_id = $3 AND revoked_at = 0`, ts(now), appID, userID)
	}
	if err != nil {
		return 0, s.err(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ---- notifications, app events, messages

func (s *Store) CreateNotification(ctx context.Context, n *storage.Notification) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&n.ID) },
		`INSERT INTO notifications (app_id, user_id, message, created_at, read_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		n.AppID, n.UserID, n.Message, ts(n.CreatedAt), ts(n.ReadAt))
	return s.err(err)
}

func (s *Store) ListNotifications(ctx context.Context, userID int64) ([]storage.Notification, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, app_id, user_id, message, created_at, read_at FROM notifications WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, s.err(err)
	}
	ns, err := collect(rows, func(row scanner) (storage.Notification, error) {
		var n storage.Notification
		var created, read int64
		err := row.Scan(&n.ID, &n.AppID, &n.UserID, &n.Message, &created, &read)
		n.CreatedAt, n.ReadAt = at(created), at(read)
		return n, err
	})
	return ns, s.err(err)
}

func (s *Store) MarkNotificationsRead(ctx context.Context, userID int64, when time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at = 0`, ts(when), userID)
	return s.err(err)
}

func (s *Store) CreateAppEvent(ctx context.Context, e *storage.AppEvent) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&e.ID) },
		`INSERT INTO app_events (app_id, user_id, activity_id, value, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		e.AppID, e.UserID, e.ActivityID, e.Value, ts(e.CreatedAt))
	return s.err(err)
}

func (s *Store) ListAppEvents(ctx context.Context, appID int64) ([]storage.AppEvent, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, app_id, user_id, activity_id, value, created_at FROM app_events WHERE app_id = $1 ORDER BY id DESC`, appID)
	if err != nil {
		return nil, s.err(err)
	}
	es, err := collect(rows, func(row scanner) (storage.AppEvent, error) {
		var e storage.AppEvent
		var created int64
		err := row.Scan(&e.ID, &e.AppID, &e.UserID, &e.ActivityID, &e.Value, &created)
		e.CreatedAt = at(created)
		return e, err
	})
	return es, s.err(err)
}

const messageCols = `id, app_id, from_user_id, from_community_id, peer_id, text, random_id, created_at, read_at`

func scanMessage(row scanner) (storage.Message, error) {
	var m storage.Message
	var created, read int64
	err := row.Scan(&m.ID, &m.AppID, &m.FromUserID, &m.FromCommunityID, &m.PeerID, &m.Text, &m.RandomID, &created, &read)
	m.CreatedAt, m.ReadAt = at(created), at(read)
	return m, err
}

func (s *Store) CreateMessage(ctx context.Context, m *storage.Message, event func(storage.Message) *storage.CommunityEvent) error {
	return s.tx(ctx, "CreateMessage", func(tx *Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO messages (app_id, from_user_id, from_community_id, peer_id, text, random_id, created_at, read_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			 ON CONFLICT (app_id, from_user_id, from_community_id, random_id) WHERE random_id <> 0 DO NOTHING
			 RETURNING id`,
			m.AppID, m.FromUserID, m.FromCommunityID, m.PeerID, m.Text, m.RandomID, ts(m.CreatedAt), ts(m.ReadAt)).Scan(&m.ID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// A duplicate random_id: the message already sent is the answer,
			// and its event was stored with it.
			first, err := scanMessage(tx.QueryRowContext(ctx,
				`SELECT `+messageCols+` FROM messages WHERE app_id = $1 AND from_user_id = $2 AND from_community_id = $3 AND random_id = $4`,
				m.AppID, m.FromUserID, m.FromCommunityID, m.RandomID))
			if err != nil {
				return err
			}
			*m = first
			m.Duplicate = true
			return nil
		case err != nil:
			return err
		}
		if event == nil {
			return nil
		}
		if e := event(*m); e != nil {
			return addEvent(ctx, tx, e)
		}
		return nil
	})
}

func (s *Store) MarkMessagesRead(ctx context.Context, peerID int64, when time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE messages SET read_at = $1 WHERE peer_id = $2 AND read_at = 0`, ts(when), peerID)
	return s.err(err)
}

func (s *Store) ListUsers(ctx context.Context, afterID int64, limit int) ([]storage.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	users, err := collect(rows, scanUser)
	return users, s.err(err)
}

func (s *Store) SetPassword(ctx context.Context, id int64, hash string, sessionsAfter time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET password_hash = $1, sessions_after = $2 WHERE id = $3`, hash, sessionsAfter.UnixMilli(), id)
	return s.affected(res, err)
}

func (s *Store) DisableUser(ctx context.Context, id int64, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET disabled_at = $1, sessions_after = $2 WHERE id = $3`, ts(at), at.UnixMilli(), id)
	return s.affected(res, err)
}

// ---- bots: community events and Long Poll settings

// addEvent stores e with its community's next number, in tx.
func addEvent(ctx context.Context, tx *Tx, e *storage.CommunityEvent) error {
	// The counter row serialises a community's writers on both backends.
	err := tx.QueryRowContext(ctx, `INSERT INTO community_event_seq (community_id, last_seq) VALUES ($1, 1)
		ON CONFLICT (community_id) DO UPDATE SET last_seq = community_event_seq.last_seq + 1 RETURNING last_seq`, e.CommunityID).Scan(&e.Seq)
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO community_events (community_id, seq, type, object, created_at) VALUES ($1, $2, $3, $4, $5)`,
		e.CommunityID, e.Seq, e.Type, e.Object, ts(e.CreatedAt)); err != nil {
		return err
	}
	// Each confirmed callback server that takes the type is owed it: queued
	// in the same write.
	_, err = tx.ExecContext(ctx, `INSERT INTO callback_deliveries (server_id, community_id, seq, type, status, attempts, next_at, last_error, updated_at)
		SELECT id, community_id, $1, $2, $3, 0, $4, '', $4 FROM callback_servers
		WHERE community_id = $5 AND status = $6 AND events LIKE $7`,
		e.Seq, e.Type, storage.DeliveryPending, ts(e.CreatedAt), e.CommunityID, storage.CallbackOK, `%"`+e.Type+`"%`)
	return err
}

// ---- callback servers and their deliveries

const callbackCols = `id, community_id, url, title, secret_sealed, creator_id, status, api_version, events, created_at`

func scanCallback(row scanner) (storage.CallbackServer, error) {
	var c storage.CallbackServer
	var events string
	var created int64
	err := row.Scan(&c.ID, &c.CommunityID, &c.URL, &c.Title, &c.SecretSealed, &c.CreatorID, &c.Status, &c.APIVersion, &events, &created)
	if err != nil {
		return c, err
	}
	c.CreatedAt = at(created)
	return c, json.Unmarshal([]byte(events), &c.Events)
}

func (s *Store) CreateCallbackServer(ctx context.Context, c *storage.CallbackServer, now time.Time) error {
	if c.Events == nil {
		c.Events = []string{}
	}
	return s.tx(ctx, "CreateCallbackServer", func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO callback_servers (community_id, url, title, secret_sealed, creator_id, status, api_version, events, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			c.CommunityID, c.URL, c.Title, c.SecretSealed, c.CreatorID, c.Status, c.APIVersion, jsonText(c.Events), ts(c.CreatedAt)).Scan(&c.ID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO callback_deliveries (server_id, community_id, seq, type, status, attempts, next_at, last_error, updated_at)
			VALUES ($1, $2, 0, 'confirmation', $3, 0, $4, '', $4)`, c.ID, c.CommunityID, storage.DeliveryPending, ts(now))
		return err
	})
}

func (s *Store) CallbackServers(ctx context.Context, communityID int64) ([]storage.CallbackServer, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+callbackCols+` FROM callback_servers WHERE community_id = $1 ORDER BY id`, communityID)
	if err != nil {
		return nil, s.err(err)
	}
	cs, err := collect(rows, scanCallback)
	return cs, s.err(err)
}

func (s *Store) UpdateCallbackServer(ctx context.Context, communityID, id int64, update func(*storage.CallbackServer) error) (storage.CallbackServer, error) {
	var c storage.CallbackServer
	err := s.tx(ctx, "UpdateCallbackServer", func(tx *Tx) error {
		var err error
		c, err = scanCallback(tx.QueryRowContext(ctx, `SELECT `+callbackCols+` FROM callback_servers WHERE id = $1 AND community_id = $2`+s.ForUpdate, id, communityID))
		if err != nil {
			return err
		}
		if err := update(&c); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE callback_servers SET url = $1, title = $2, secret_sealed = $3, status = $4, api_version = $5, events = $6 WHERE id = $7`,
			c.URL, c.Title, c.SecretSealed, c.Status, c.APIVersion, jsonText(c.Events), id)
		return err
	})
	return c, s.err(err)
}

func (s *Store) DeleteCallbackServer(ctx context.Context, communityID, id int64) error {
	return s.tx(ctx, "DeleteCallbackServer", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM callback_deliveries WHERE server_id = $1 AND community_id = $2`, id, communityID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM callback_servers WHERE id = $1 AND community_id = $2`, id, communityID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

const deliveryCols = `id, server_id, community_id, seq, type, status, attempts, next_at, last_error, updated_at`

func scanDelivery(row scanner) (storage.Delivery, error) {
	var d storage.Delivery
	var next, updated int64
	err := row.Scan(&d.ID, &d.ServerID, &d.CommunityID, &d.Seq, &d.Type, &d.Status, &d.Attempts, &next, &d.LastError, &updated)
	d.NextAt, d.UpdatedAt = at(next), at(updated)
	return d, err
}

func (s *Store) NextDeliveries(ctx context.Context, now, lease time.Time, limit int) ([]storage.Delivery, error) {
	var claimed []storage.Delivery
	err := s.tx(ctx, "NextDeliveries", func(tx *Tx) error {
		// The first pending delivery of each server, if it is due.
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryCols+` FROM callback_deliveries d
			WHERE d.status = $1 AND d.next_at <= $2
			AND d.id = (SELECT MIN(x.id) FROM callback_deliveries x WHERE x.server_id = d.server_id AND x.status = $1)
			ORDER BY d.id LIMIT $3`, storage.DeliveryPending, ts(now), limit)
		if err != nil {
			return err
		}
		due, err := collect(rows, scanDelivery)
		if err != nil {
			return err
		}
		for _, d := range due {
			// Claimed only if no other node moved it meanwhile.
			res, err := tx.ExecContext(ctx, `UPDATE callback_deliveries SET next_at = $1 WHERE id = $2 AND next_at = $3 AND status = $4`,
				ts(lease), d.ID, ts(d.NextAt), storage.DeliveryPending)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				claimed = append(claimed, d)
			}
		}
		return nil
	})
	return claimed, s.err(err)
}

func (s *Store) FinishDelivery(ctx context.Context, d storage.Delivery) error {
	return s.tx(ctx, "FinishDelivery", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE callback_deliveries SET status = $1, attempts = $2, next_at = $3, last_error = $4, updated_at = $5 WHERE id = $6`,
			d.Status, d.Attempts, ts(d.NextAt), d.LastError, ts(d.UpdatedAt), d.ID); err != nil {
			return err
		}
		if d.Type == "confirmation" && d.Status != storage.DeliveryPending {
			_, err := tx.ExecContext(ctx, `UPDATE callback_servers SET status = $1 WHERE id = $2`, d.Status, d.ServerID)
			return err
		}
		return nil
	})
}

func (s *Store) Deliveries(ctx context.Context, communityID int64, limit int) ([]storage.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+` FROM callback_deliveries WHERE community_id = $1 ORDER BY id DESC LIMIT $2`, communityID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	ds, err := collect(rows, scanDelivery)
	return ds, s.err(err)
}

func (s *Store) CommunityEvents(ctx context.Context, communityID, from int64, limit int) ([]storage.CommunityEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT community_id, seq, type, object, created_at FROM community_events
		WHERE community_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3`, communityID, from, limit)
	if err != nil {
		return nil, s.err(err)
	}
	es, err := collect(rows, func(row scanner) (storage.CommunityEvent, error) {
		var e storage.CommunityEvent
		var created int64
		err := row.Scan(&e.CommunityID, &e.Seq, &e.Type, &e.Object, &created)
		e.CreatedAt = at(created)
		return e, err
	})
	return es, s.err(err)
}

func (s *Store) DeleteCommunityEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM community_events WHERE (community_id, seq) IN
		(SELECT community_id, seq FROM community_events WHERE created_at < $1 LIMIT $2)`, ts(before), limit)
	if err != nil {
		return 0, s.err(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func (s *Store) SetMembership(ctx context.Context, communityID, userID int64, member bool, at time.Time, event *storage.CommunityEvent) (bool, error) {
	var changed bool
	err := s.tx(ctx, "SetMembership", func(tx *Tx) error {
		var res sql.Result
		var err error
		if member {
			res, err = tx.ExecContext(ctx, `INSERT INTO community_members (community_id, user_id, joined_at) VALUES ($1, $2, $3)
				ON CONFLICT (community_id, user_id) DO NOTHING`, communityID, userID, ts(at))
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM community_members WHERE community_id = $1 AND user_id = $2`, communityID, userID)
		}
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if changed = n > 0; changed && event != nil {
			return addEvent(ctx, tx, event)
		}
		return nil
	})
	return changed, s.err(err)
}

func (s *Store) SetMessagesAllowed(ctx context.Context, communityID, userID int64, allowed bool, at time.Time, event *storage.CommunityEvent) (bool, error) {
	var changed bool
	err := s.tx(ctx, "SetMessagesAllowed", func(tx *Tx) error {
		want := 0
		if allowed {
			want = 1
		}
		var was int64 = 1 // no row: allowed
		err := tx.QueryRowContext(ctx, `SELECT allowed FROM community_message_perms WHERE community_id = $1 AND user_id = $2`+s.ForUpdate, communityID, userID).Scan(&was)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO community_message_perms (community_id, user_id, allowed, at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (community_id, user_id) DO UPDATE SET allowed = excluded.allowed, at = excluded.at`, communityID, userID, want, ts(at)); err != nil {
			return err
		}
		// Allowing again is still an event (VK sends message_allow each time
		// a user allows); denying twice is not.
		if changed = was != int64(want) || allowed; changed && event != nil {
			return addEvent(ctx, tx, event)
		}
		return nil
	})
	return changed, s.err(err)
}

func (s *Store) MessagesAllowed(ctx context.Context, communityID, userID int64) (bool, error) {
	var allowed int64
	err := s.r.QueryRowContext(ctx, `SELECT allowed FROM community_message_perms WHERE community_id = $1 AND user_id = $2`, communityID, userID).Scan(&allowed)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return allowed == 1, s.err(err)
}

func (s *Store) LastEventSeq(ctx context.Context, communityID int64) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT last_seq FROM community_event_seq WHERE community_id = $1`, communityID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, s.err(err)
}

func (s *Store) LongPollSettings(ctx context.Context, communityID int64) (storage.LongPollSettings, error) {
	ls, err := scanLongPoll(s.r.QueryRowContext(ctx, `SELECT `+longPollCols+` FROM longpoll_settings WHERE community_id = $1`, communityID), communityID)
	return ls, s.err(err)
}

func (s *Store) UpdateLongPollSettings(ctx context.Context, communityID int64, update func(*storage.LongPollSettings) error) (storage.LongPollSettings, error) {
	var ls storage.LongPollSettings
	err := s.tx(ctx, "UpdateLongPollSettings", func(tx *Tx) error {
		// The row is made first, so that FOR UPDATE has one to lock.
		if _, err := tx.ExecContext(ctx, `INSERT INTO longpoll_settings (community_id, enabled, api_version, events) VALUES ($1, 0, $2, '[]')
			ON CONFLICT (community_id) DO NOTHING`, communityID, storage.DefaultLongPollVersion); err != nil {
			return err
		}
		var err error
		ls, err = scanLongPoll(tx.QueryRowContext(ctx, `SELECT `+longPollCols+` FROM longpoll_settings WHERE community_id = $1`+s.ForUpdate, communityID), communityID)
		if err != nil {
			return err
		}
		if err := update(&ls); err != nil {
			return err
		}
		if ls.Events == nil {
			ls.Events = []string{}
		}
		enabled := 0
		if ls.Enabled {
			enabled = 1
		}
		_, err = tx.ExecContext(ctx, `UPDATE longpoll_settings SET enabled = $1, api_version = $2, events = $3 WHERE community_id = $4`,
			enabled, ls.APIVersion, jsonText(ls.Events), communityID)
		return err
	})
	return ls, s.err(err)
}

const longPollCols = `enabled, api_version, events`

// scanLongPoll reads longPollCols; no row is the settings never set.
func scanLongPoll(row *sql.Row, communityID int64) (storage.LongPollSettings, error) {
	ls := storage.LongPollSettings{CommunityID: communityID, APIVersion: storage.DefaultLongPollVersion, Events: []string{}}
	var enabled int64
	var events string
	err := row.Scan(&enabled, &ls.APIVersion, &events)
	if errors.Is(err, sql.ErrNoRows) {
		return ls, nil
	}
	if err != nil {
		return ls, err
	}
	ls.Enabled = enabled == 1
	return ls, json.Unmarshal([]byte(events), &ls.Events)
}

// ---- admin tokens

func (s *Store) CreateAdminToken(ctx context.Context, t storage.AdminToken) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO admin_tokens (name, hash, created_at) VALUES ($1, $2, $3)`, t.Name, t.Hash[:], ts(t.CreatedAt))
	return s.err(err)
}

func (s *Store) DeleteAdminToken(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM admin_tokens WHERE name = $1`, name)
	return s.affected(res, err)
}

func (s *Store) AdminToken(ctx context.Context, hash token.Hash) (storage.AdminToken, error) {
	var t storage.AdminToken
	var h []byte
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT name, hash, created_at FROM admin_tokens WHERE hash = $1`, hash[:]).Scan(&t.Name, &h, &created)
	t.Hash, t.CreatedAt = hashOf(h), at(created)
	return t, s.err(err)
}

func (s *Store) UpdateUserName(ctx context.Context, id int64, first, last string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET first_name = $1, last_name = $2 WHERE id = $3`, first, last, id)
	return s.affected(res, err)
}

func (s *Store) ListMessages(ctx context.Context, peerID int64) ([]storage.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE peer_id = $1 ORDER BY id DESC`, peerID)
	if err != nil {
		return nil, s.err(err)
	}
	ms, err := collect(rows, scanMessage)
	return ms, s.err(err)
}

func (s *Store) ListSentToCommunities(ctx context.Context, userID int64, limit int) ([]storage.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE from_user_id = $1 AND peer_id < 0 ORDER BY id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	ms, err := collect(rows, scanMessage)
	return ms, s.err(err)
}

func (s *Store) ListCommunityMessages(ctx context.Context, communityID int64, limit int) ([]storage.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE peer_id = $1 OR from_community_id = $2 ORDER BY id DESC LIMIT $3`,
		-communityID, communityID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	ms, err := collect(rows, scanMessage)
	return ms, s.err(err)
}

// ---- audit

func (s *Store) AddAudit(ctx context.Context, e storage.AuditEvent) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO audit (at, actor_user_id, app_id, community_id, action, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		ts(e.At), e.ActorUserID, e.AppID, e.CommunityID, string(e.Action), e.IP, e.Detail)
	return s.err(err)
}

func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, at, actor_user_id, app_id, community_id, action, ip, detail FROM audit
		 WHERE ($1 = 0 OR app_id = $1) AND ($2 = 0 OR community_id = $2)
		 ORDER BY id DESC LIMIT $3`, f.AppID, f.CommunityID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	es, err := collect(rows, func(row scanner) (storage.AuditEvent, error) {
		var e storage.AuditEvent
		var when int64
		err := row.Scan(&e.ID, &when, &e.ActorUserID, &e.AppID, &e.CommunityID, &e.Action, &e.IP, &e.Detail)
		e.At = at(when)
		return e, err
	})
	return es, s.err(err)
}

// ---- nodes and throttles

func (s *Store) Heartbeat(ctx context.Context, node string, now, liveSince time.Time) (int, error) {
	var live int
	err := s.tx(ctx, "Heartbeat", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO nodes (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET seen_at = $2`,
			node, now.UnixMilli()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE seen_at < $1`, now.Add(-time.Minute).UnixMilli()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM nodes WHERE seen_at >= $1`, liveSince.UnixMilli()).Scan(&live)
	})
	return live, err
}

func (s *Store) ForgetNode(ctx context.Context, node string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, node)
	return s.err(err)
}

func (s *Store) TakeAttempt(ctx context.Context, key token.Hash, limit int, since, now time.Time) (bool, time.Time, error) {
	// One statement counts and checks: a window that ended starts again
	// at now with this attempt; a full one is left as it is (no row).
	var started int64
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&started) },
		`INSERT INTO throttles (key, started_at, count) VALUES ($1, $2, 1)
		 ON CONFLICT (key) DO UPDATE SET
		   count = CASE WHEN throttles.started_at <= $3 THEN 1 ELSE throttles.count + 1 END,
		   started_at = CASE WHEN throttles.started_at <= $3 THEN $2 ELSE throttles.started_at END
		 WHERE throttles.started_at <= $3 OR throttles.count < $4
		 RETURNING started_at`, key[:], now.UnixMilli(), since.UnixMilli(), int64(limit))
	if err == nil {
		return true, time.UnixMilli(started), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, s.err(err)
	}
	err = s.r.QueryRowContext(ctx, `SELECT started_at FROM throttles WHERE key = $1`, key[:]).Scan(&started)
	return false, time.UnixMilli(started), s.err(err)
}

func (s *Store) RefundAttempt(ctx context.Context, key token.Hash, since time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE throttles SET count = count - 1 WHERE key = $1 AND count > 0 AND started_at > $2`, key[:], since.UnixMilli())
	return s.err(err)
}

func (s *Store) ResetAttempts(ctx context.Context, key token.Hash) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM throttles WHERE key = $1`, key[:])
	return s.err(err)
}

func (s *Store) PruneAttempts(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM throttles WHERE started_at < $1`, before.UnixMilli())
	if err != nil {
		return 0, s.err(err)
	}
	return res.RowsAffected()
}
