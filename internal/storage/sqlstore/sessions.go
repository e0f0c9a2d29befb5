package sqlstore

import (
	"context"
	"strings"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// ---- browser sessions

const sessionCols = `id, hash, user_id, sid, auth_time, amr, device, address, created_at, last_seen_at, ended_at`

func scanSession(row scanner, more ...any) (storage.Session, error) {
	var s storage.Session
	var hash []byte
	var amr string
	var auth, created, seen, ended int64
	err := row.Scan(append([]any{&s.ID, &hash, &s.UserID, &s.SID, &auth, &amr, &s.Device, &s.Address, &created, &seen, &ended}, more...)...)
	s.Hash, s.AMR = hashOf(hash), words(amr)
	s.AuthTime, s.CreatedAt, s.LastSeenAt, s.EndedAt = at(auth), at(created), at(seen), at(ended)
	return s, err
}

func (s *Store) CreateSession(ctx context.Context, ss *storage.Session) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&ss.ID) },
		`INSERT INTO sessions (hash, user_id, sid, auth_time, amr, device, address, created_at, last_seen_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		ss.Hash[:], ss.UserID, ss.SID, ts(ss.AuthTime), strings.Join(ss.AMR, " "), ss.Device, ss.Address, ts(ss.CreatedAt), ts(ss.LastSeenAt))
	return s.err(err)
}

func (s *Store) SessionUser(ctx context.Context, hash token.Hash) (storage.Session, storage.User, error) {
	// One round trip for the session and its user, on every page.
	var u storage.User
	var created, sessionsAfter, disabled, requireMFA int64
	ss, err := scanSession(s.r.QueryRowContext(ctx, `SELECT s.id, s.hash, s.user_id, s.sid, s.auth_time, s.amr, s.device, s.address,
		s.created_at, s.last_seen_at, s.ended_at,
		u.id, u.login, u.password_hash, u.first_name, u.last_name, u.email, u.created_at, u.sessions_after, u.disabled_at, u.require_mfa
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = $1`, hash[:]),
		&u.ID, &u.Login, &u.PasswordHash, &u.FirstName, &u.LastName, &u.Email, &created, &sessionsAfter, &disabled, &requireMFA)
	u.CreatedAt, u.DisabledAt, u.RequireMFA = at(created), at(disabled), requireMFA != 0
	if sessionsAfter != 0 {
		u.SessionsAfter = time.UnixMilli(sessionsAfter).UTC()
	}
	return ss, u, s.err(err)
}

func (s *Store) TouchSession(ctx context.Context, id int64, when time.Time, address string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1, address = $2 WHERE id = $3`, ts(when), address, id)
	return s.affected(res, err)
}

func (s *Store) RaiseSession(ctx context.Context, id int64, authTime time.Time, amr []string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET auth_time = $1, amr = $2 WHERE id = $3 AND ended_at = 0`,
		ts(authTime), strings.Join(amr, " "), id)
	return s.affected(res, err)
}

func (s *Store) ListSessions(ctx context.Context, userID int64) ([]storage.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE user_id = $1 AND ended_at = 0
		ORDER BY last_seen_at DESC, id DESC`, userID)
	if err != nil {
		return nil, s.err(err)
	}
	out, err := collect(rows, func(r scanner) (storage.Session, error) { return scanSession(r) })
	return out, s.err(err)
}

func (s *Store) EndSession(ctx context.Context, userID, id int64, when time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET ended_at = $1 WHERE id = $2 AND user_id = $3 AND ended_at = 0`, ts(when), id, userID)
	return s.affected(res, err)
}

func (s *Store) EndOtherSessions(ctx context.Context, userID, keepID int64, when time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND id <> $3 AND ended_at = 0`, ts(when), userID, keepID)
	if err != nil {
		return 0, s.err(err)
	}
	n, err := res.RowsAffected()
	return int(n), s.err(err)
}

func (s *Store) AddSessionApp(ctx context.Context, sid string, appID int64) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO session_apps (sid, app_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, sid, appID)
	return s.err(err)
}

func (s *Store) SessionApps(ctx context.Context, sid string) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT app_id FROM session_apps WHERE sid = $1 ORDER BY app_id`, sid)
	if err != nil {
		return nil, s.err(err)
	}
	ids, err := collect(rows, func(r scanner) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	})
	return ids, s.err(err)
}

// ---- second factors and recovery codes

const factorCols = `id, user_id, kind, name, credential_id, data, step, created_at, last_used_at`

func scanFactor(row scanner) (storage.Factor, error) {
	var f storage.Factor
	var created, used int64
	err := row.Scan(&f.ID, &f.UserID, &f.Kind, &f.Name, &f.CredentialID, &f.Data, &f.Step, &created, &used)
	f.CreatedAt, f.LastUsedAt = at(created), at(used)
	return f, err
}

func (s *Store) AddFactor(ctx context.Context, f *storage.Factor) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&f.ID) },
		`INSERT INTO factors (user_id, kind, name, credential_id, data, step, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		f.UserID, string(f.Kind), f.Name, f.CredentialID, f.Data, f.Step, ts(f.CreatedAt))
	return s.err(err)
}

func (s *Store) ListFactors(ctx context.Context, userID int64) ([]storage.Factor, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+factorCols+` FROM factors WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, s.err(err)
	}
	out, err := collect(rows, scanFactor)
	return out, s.err(err)
}

func (s *Store) FactorByCredential(ctx context.Context, credentialID []byte) (storage.Factor, error) {
	f, err := scanFactor(s.r.QueryRowContext(ctx, `SELECT `+factorCols+` FROM factors WHERE credential_id = $1`, credentialID))
	return f, s.err(err)
}

func (s *Store) UseFactor(ctx context.Context, id, step int64, data []byte, when time.Time) (bool, error) {
	// The step is checked and set in the statement that records the use:
	// two requests with the same code cannot both be accepted.
	res, err := s.w.ExecContext(ctx, `UPDATE factors SET last_used_at = $1,
		step = CASE WHEN $2 > 0 THEN $2 ELSE step END,
		data = CASE WHEN $3 THEN $4 ELSE data END
		WHERE id = $5 AND ($2 = 0 OR step < $2)`, ts(when), step, data != nil, nonNil(data), id)
	if err := s.affected(res, err); err != nil {
		if err == storage.ErrNotFound {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *Store) RemoveFactor(ctx context.Context, userID, id int64) (storage.Factor, error) {
	var f storage.Factor
	err := s.writeRow(ctx, func(r scanner) (err error) { f, err = scanFactor(r); return err },
		`DELETE FROM factors WHERE id = $1 AND user_id = $2 RETURNING `+factorCols, id, userID)
	return f, s.err(err)
}

func (s *Store) ResetFactors(ctx context.Context, userID int64) ([]storage.Factor, error) {
	var removed []storage.Factor
	err := s.tx(ctx, "ResetFactors", func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM factors WHERE user_id = $1 RETURNING `+factorCols, userID)
		if err != nil {
			return err
		}
		if removed, err = collect(rows, scanFactor); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		return err
	})
	return removed, err
}

func (s *Store) SetRecoveryCodes(ctx context.Context, userID int64, hashes []token.Hash) error {
	return s.tx(ctx, "SetRecoveryCodes", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (hash, user_id) VALUES ($1, $2)`, h[:], userID); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) UseRecoveryCode(ctx context.Context, userID int64, hash token.Hash, when time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE hash = $2 AND user_id = $3 AND used_at = 0`, ts(when), hash[:], userID)
	if err := s.affected(res, err); err != nil {
		if err == storage.ErrNotFound {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (s *Store) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at = 0`, userID).Scan(&n)
	return n, s.err(err)
}
