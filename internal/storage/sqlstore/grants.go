package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// ---- codes

const codeCols = `hash, app_id, user_id, community_ids, scope, redirect_uri, code_challenge,
	code_challenge_method, ip, issued_at, expires_at, used_at, nonce, device_id, api_id, claims, auth_time, amr, sid`

func scanCode(row scanner) (storage.Code, error) {
	var c storage.Code
	var hash []byte
	var communities string
	var issued, expires, used, auth int64
	var amr string
	err := row.Scan(&hash, &c.AppID, &c.UserID, &communities, &c.Scope, &c.RedirectURI, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.IP, &issued, &expires, &used, &c.Nonce, &c.DeviceID, &c.APIID, &c.Claims, &auth, &amr, &c.SID)
	if err != nil {
		return c, err
	}
	c.Hash = hashOf(hash)
	if err := json.Unmarshal([]byte(communities), &c.CommunityIDs); err != nil {
		return c, fmt.Errorf("code community_ids: %w", err)
	}
	c.IssuedAt, c.ExpiresAt, c.UsedAt, c.AuthTime, c.AMR = at(issued), at(expires), at(used), at(auth), words(amr)
	return c, nil
}

func (s *Store) CreateCode(ctx context.Context, c storage.Code) error {
	return s.err(insertCode(ctx, s.w, c))
}

// The inserts of the rows every grant writes, spelled once.
var (
	insertCodeSQL    = `INSERT INTO codes (` + codeCols + `) VALUES (` + placeholders(1, 19) + `)`
	insertRefreshSQL = `INSERT INTO refresh_tokens (` + refreshCols + `) VALUES (` + placeholders(1, 17) + `)`
	insertTokenSQL   = `INSERT INTO tokens (` + tokenInsertNames + `) VALUES (` + placeholders(1, tokenInsertCols) + `)`
)

func insertCode(ctx context.Context, db execer, c storage.Code) error {
	ids := c.CommunityIDs
	if ids == nil {
		ids = []int64{}
	}
	_, err := db.ExecContext(ctx, insertCodeSQL,
		c.Hash[:], c.AppID, c.UserID, jsonText(ids), int64(c.Scope), c.RedirectURI, c.CodeChallenge,
		c.CodeChallengeMethod, c.IP, ts(c.IssuedAt), ts(c.ExpiresAt), ts(c.UsedAt), c.Nonce, c.DeviceID, c.APIID, int64(c.Claims),
		ts(c.AuthTime), strings.Join(c.AMR, " "), c.SID)
	return err
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

const deviceCols = `hash, user_code, app_id, scope, status, user_id, interval_s, last_poll_at, issued_at, expires_at, api_id, claims`

func scanDevice(row scanner) (storage.DeviceCode, error) {
	var d storage.DeviceCode
	var hash, userCode []byte
	var interval, poll, issued, expires int64
	err := row.Scan(&hash, &userCode, &d.AppID, &d.Scope, &d.Status, &d.UserID, &interval, &poll, &issued, &expires, &d.APIID, &d.Claims)
	d.Hash, d.UserCode = hashOf(hash), hashOf(userCode)
	d.Interval = time.Duration(interval) * time.Second
	d.LastPollAt, d.IssuedAt, d.ExpiresAt = at(poll), at(issued), at(expires)
	return d, err
}

func (s *Store) CreateDeviceCode(ctx context.Context, d storage.DeviceCode) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO device_codes (`+deviceCols+`) VALUES (`+placeholders(1, 12)+`)`,
		d.Hash[:], d.UserCode[:], d.AppID, int64(d.Scope), string(d.Status), d.UserID, int64(d.Interval/time.Second), ts(d.LastPollAt), ts(d.IssuedAt), ts(d.ExpiresAt),
		d.APIID, int64(d.Claims))
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

// ---- refresh tokens

const refreshCols = `hash, family, app_id, user_id, scope, auth_time, nonce, issued_at, expires_at, used_at, revoked_at, jkt, device_id, api_id, claims, amr, sid`

func scanRefresh(row scanner) (storage.RefreshToken, error) {
	var r storage.RefreshToken
	var hash, family []byte
	var auth, issued, expires, used, revoked int64
	var amr string
	err := row.Scan(&hash, &family, &r.AppID, &r.UserID, &r.Scope, &auth, &r.Nonce, &issued, &expires, &used, &revoked, &r.JKT, &r.DeviceID, &r.APIID, &r.Claims, &amr, &r.SID)
	r.Hash, r.Family, r.AMR = hashOf(hash), hashOf(family), words(amr)
	r.AuthTime, r.IssuedAt, r.ExpiresAt, r.UsedAt, r.RevokedAt = at(auth), at(issued), at(expires), at(used), at(revoked)
	return r, err
}

func (s *Store) CreateRefreshToken(ctx context.Context, r storage.RefreshToken) error {
	return s.err(s.storeRefresh(ctx, s.w, r))
}

// storeRefresh inserts r through db (the pool or a transaction), refusing
// it as CreateRefreshToken says.
func (s *Store) storeRefresh(ctx context.Context, db queryer, r storage.RefreshToken) error {
	args := []any{r.Hash[:], r.Family[:], r.AppID, r.UserID, int64(r.Scope), ts(r.AuthTime), r.Nonce, ts(r.IssuedAt), ts(r.ExpiresAt), ts(r.UsedAt), ts(r.RevokedAt), r.JKT, r.DeviceID, r.APIID, int64(r.Claims),
		strings.Join(r.AMR, " "), r.SID}
	if !s.GrantLocks {
		// SQLite's schema refuses it (the live insert triggers).
		_, err := db.ExecContext(ctx, insertRefreshSQL, args...)
		return err
	}
	res, err := db.ExecContext(ctx, s.guardedInserts().refresh, args...)
	return insertedLive(ctx, db, res, err, &r.Family)
}

func (s *Store) GetRefreshToken(ctx context.Context, hash token.Hash, appID int64) (storage.RefreshToken, error) {
	r, err := scanRefresh(s.r.QueryRowContext(ctx, `SELECT `+refreshCols+` FROM refresh_tokens WHERE hash = $1 AND app_id = $2`, hash[:], appID))
	return r, s.err(err)
}

func (s *Store) UseRefreshToken(ctx context.Context, hash token.Hash, appID int64, now time.Time, holders []storage.Holder) (storage.RefreshToken, error) {
	if len(holders) == 0 {
		return s.refreshConflict(ctx, hash, appID)
	}
	args := make([]any, 0, 3+2*len(holders))
	args = append(args, ts(now), hash[:], appID)
	for _, h := range holders {
		args = append(args, h.JKT, h.DeviceID)
	}
	var r storage.RefreshToken
	err := s.writeRow(ctx, func(row scanner) (err error) { r, err = scanRefresh(row); return err }, useRefreshSQL(len(holders)), args...)
	if !errors.Is(err, sql.ErrNoRows) {
		return r, s.err(err)
	}
	return s.refreshConflict(ctx, hash, appID)
}

// useRefreshQueries are UseRefreshToken's statements, by number of holders
// (built once each: the platform always names the same number).
var useRefreshQueries sync.Map // int → string

func useRefreshSQL(holders int) string {
	if q, ok := useRefreshQueries.Load(holders); ok {
		return q.(string)
	}
	var held strings.Builder
	for i := range holders {
		if i > 0 {
			held.WriteString(" OR ")
		}
		fmt.Fprintf(&held, "(jkt = $%d AND device_id = $%d)", 4+2*i, 5+2*i)
	}
	q := `UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2 AND app_id = $3 AND used_at = 0 AND revoked_at = 0 AND (` + held.String() + `) RETURNING ` + refreshCols
	useRefreshQueries.Store(holders, q)
	return q
}

// refreshConflict is a refresh token that was not spent: read, and
// returned with ErrConflict (ErrNotFound when there is none).
func (s *Store) refreshConflict(ctx context.Context, hash token.Hash, appID int64) (storage.RefreshToken, error) {
	r, err := s.GetRefreshToken(ctx, hash, appID)
	if err != nil {
		return r, err
	}
	return r, storage.ErrConflict
}

func (s *Store) RevokeRefreshTokens(ctx context.Context, family *token.Hash, appID, userID int64, now time.Time) (int64, error) {
	var res sql.Result
	var err error
	if family != nil {
		res, err = s.w.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at = 0`, ts(now), family[:])
	} else if appID == 0 {
		// Every refresh token's app is one of the apps: the condition lets the
		// index on (app_id, user_id) find the user's (byUserAlone).
		res, err = s.w.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE app_id IN (SELECT id FROM apps) AND user_id = $2 AND revoked_at = 0`, ts(now), userID)
	} else {
		res, err = s.w.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE app_id = $2 AND user_id = $3 AND revoked_at = 0`, ts(now), appID, userID)
	}
	if err != nil {
		return 0, s.err(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
