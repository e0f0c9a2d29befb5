package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// ---- tokens

const tokenCols = `hash, kind, app_id, user_id, community_id, scope, issued_at, expires_at, ip, flow, code_hash, secret_hash, revoked_at, revoke_reason, last_used_at, jkt, api_id`

func scanToken(row scanner) (storage.Token, error) {
	var t storage.Token
	var codeHash, secretHash hashColumn
	var kind string
	var app sql.NullInt64
	var issued, expires, revoked, used int64
	err := row.Scan(&hashColumn{h: &t.Hash}, &kind, &app, &t.UserID, &t.CommunityID, &t.Scope, &issued, &expires, &t.IP, &t.Flow, &codeHash, &secretHash, &revoked, &t.RevokeReason, &used, &t.JKT, &t.APIID)
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
	return s.err(s.storeToken(ctx, s.w, t))
}

// storeToken inserts t through db (the pool or a transaction), refusing
// it as CreateToken says.
func (s *Store) storeToken(ctx context.Context, db queryer, t storage.Token) error {
	if !s.GrantLocks || t.UserID == 0 && t.CodeHash == nil {
		// SQLite's schema refuses a token it must not store (its live
		// insert triggers); a token of no user and no grant (a service
		// token) has nothing to check.
		return insertToken(ctx, db, t)
	}
	res, err := db.ExecContext(ctx, s.guardedInserts().token, tokenArgs(nil, t)...)
	return insertedLive(ctx, db, res, err, t.CodeHash)
}

// IssueGrant writes what one grant hands out at once in one transaction:
// one job of the group commit on SQLite, so the code's one use and the
// tokens wait for one commit instead of three. Whatever refuses it does so
// before the first row is written (failFirst): a spent code is found by a
// read, the token's refusals by its insert, which comes first; the refresh
// token has the token's user and grant, and the code's row is then known
// to be free.
func (s *Store) IssueGrant(ctx context.Context, g storage.GrantTokens) error {
	if g.Spent == nil && g.Refresh == nil {
		return s.CreateToken(ctx, g.Access) // a lone row needs no transaction
	}
	return s.failFirst(ctx, "IssueGrant", func(tx *Tx) error {
		if g.Spent != nil {
			var spent bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM codes WHERE hash = $1)`, g.Spent.Hash[:]).Scan(&spent); err != nil {
				return err
			}
			if spent {
				return storage.ErrConflict
			}
		}
		if err := s.storeToken(ctx, tx, g.Access); err != nil {
			return err
		}
		if g.Refresh != nil {
			if err := s.storeRefresh(ctx, tx, *g.Refresh); err != nil {
				return err
			}
		}
		if g.Spent != nil {
			return insertCode(ctx, tx, *g.Spent)
		}
		return nil
	})
}

// whileLive is PostgreSQL's INSERT into table of one row of n values that
// stores nothing when the user whose id is value userArg is disabled, or the
// grant named by value familyArg (NULL: none) was revoked. The user's row
// is read with ForKeyShare, which DisableUser's FOR UPDATE waits for, so a
// DisableUser running at the same time waits for this insert (and then
// revokes what it stored), or this insert waits for it (and then stores
// nothing). The grant is checked by latchkey_grant_live (migration 021),
// which does the same with RevokeGrant through the family's advisory lock,
// and reads revoked_grants after it holds the lock: a check in the
// statement itself would read with the snapshot the statement began with,
// before a revocation it waited for committed. A user id that names no
// user (0, for service tokens) stores the row.
func (s *Store) whileLive(table string, n, userArg, familyArg int) string {
	return fmt.Sprintf(`WITH u AS (SELECT disabled_at FROM users WHERE id = $%d%s)
		INSERT INTO %s SELECT %s WHERE NOT EXISTS (SELECT 1 FROM u WHERE disabled_at <> 0) AND latchkey_grant_live($%d)`,
		userArg, s.ForKeyShare, table, placeholders(1, n), familyArg)
}

// grantLockKey is the advisory lock key of the family in value arg, on
// PostgreSQL (latchkey_grant_live takes the same).
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
		g.refresh = s.whileLive(`refresh_tokens (`+refreshCols+`)`, 17, 4, 2)
	})
	return g
}

// insertedLive reads the result of a whileLive insert into family (nil:
// none): a row not stored was refused for its grant or its user.
func insertedLive(ctx context.Context, db queryer, res sql.Result, err error, family *token.Hash) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n > 0 {
		return nil
	}
	if family != nil {
		var revoked bool
		err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_grants WHERE family = $1)`, family[:]).Scan(&revoked)
		if err != nil {
			return err
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

// queryer is a pool or a transaction, read from as well.
type queryer interface {
	execer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func insertToken(ctx context.Context, db execer, t storage.Token) error {
	_, err := db.ExecContext(ctx, insertTokenSQL, tokenArgs(nil, t)...)
	return err
}

// A token's row is inserted with the columns it is read with, and two that
// are written only: sealed (read by ReusableToken alone) and parent_hash
// (followed by TokenFilter.DerivedFrom).
const (
	tokenInsertNames = tokenCols + `, sealed, parent_hash`
	tokenInsertCols  = 19
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
		t.IP, string(t.Flow), codeHash, secretHash, ts(t.RevokedAt), string(t.RevokeReason), ts(t.LastUsedAt), t.JKT, t.APIID, t.Sealed, parent)
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

// byUserAlone finds a user's tokens in every app and in none (a token made
// on a community page has no app) through the index on (app_id, user_id,
// …): one search per app, where user_id = ? alone scans the whole index,
// which has no entry led by the user (on SQLite, in the one writer:
// disabling a user over a million tokens took seconds of it). In the
// shape PostgreSQL's planner also answers from the index.
const byUserAlone = `hash IN (SELECT hash FROM tokens WHERE app_id IN (SELECT id FROM apps) AND user_id = $%[1]d
	UNION ALL SELECT hash FROM tokens WHERE app_id IS NULL AND user_id = $%[1]d)`

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
	switch {
	case f.UserID != 0 && f.AppID == 0 && f.Hash == nil:
		add(byUserAlone, f.UserID)
	case f.UserID != 0:
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
	if f.APIID != 0 {
		add("api_id = $%d", f.APIID)
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
