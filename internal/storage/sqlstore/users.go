package sqlstore

import (
	"context"
	"time"

	"latchkey/internal/storage"
)

// ---- users

const userCols = `id, login, password_hash, first_name, last_name, email, created_at, sessions_after, disabled_at, require_mfa`

func scanUser(row scanner) (storage.User, error) {
	var u storage.User
	var created, sessionsAfter, disabled, requireMFA int64
	err := row.Scan(&u.ID, &u.Login, &u.PasswordHash, &u.FirstName, &u.LastName, &u.Email, &created, &sessionsAfter, &disabled, &requireMFA)
	u.CreatedAt, u.DisabledAt, u.RequireMFA = at(created), at(disabled), requireMFA != 0
	if sessionsAfter != 0 {
		u.SessionsAfter = time.UnixMilli(sessionsAfter).UTC()
	}
	return u, err
}

func (s *Store) EndSessions(ctx context.Context, userID int64, when time.Time) error {
	return s.tx(ctx, "EndSessions", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET sessions_after = $1 WHERE id = $2`, when.UnixMilli(), userID)
		if err := s.affected(res, err); err != nil {
			return err
		}
		return endSessions(ctx, tx, userID, when)
	})
}

// endSessions ends the user's recorded sessions, with the write that ends
// their cookies (sessions_after).
func endSessions(ctx context.Context, tx *Tx, userID int64, when time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at = 0`, ts(when), userID)
	return err
}

func (s *Store) SetRequireMFA(ctx context.Context, userID int64, on bool) error {
	v := 0
	if on {
		v = 1
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET require_mfa = $1 WHERE id = $2 AND id <> 0`, v, userID)
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
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1 AND id <> 0`, id))
	return u, s.err(err)
}

func (s *Store) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE login = $1 AND id <> 0`, login))
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

func (s *Store) ListUsers(ctx context.Context, afterID int64, limit int) ([]storage.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	users, err := collect(rows, scanUser)
	return users, s.err(err)
}

func (s *Store) SetPassword(ctx context.Context, id int64, hash string, sessionsAfter time.Time) error {
	return s.tx(ctx, "SetPassword", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, sessions_after = $2 WHERE id = $3`, hash, sessionsAfter.UnixMilli(), id)
		if err := s.affected(res, err); err != nil {
			return err
		}
		return endSessions(ctx, tx, id, sessionsAfter)
	})
}

func (s *Store) DisableUser(ctx context.Context, id int64, at time.Time) error {
	if s.ForUpdate == "" {
		return s.tx(ctx, "DisableUser", func(tx *Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE users SET disabled_at = $1, sessions_after = $2 WHERE id = $3`, ts(at), at.UnixMilli(), id)
			if err := s.affected(res, err); err != nil {
				return err
			}
			return endSessions(ctx, tx, id, at)
		})
	}
	// The row locked FOR UPDATE first: the inserts of the user's tokens
	// hold it FOR KEY SHARE (whileLive), which a plain UPDATE would not
	// wait for.
	return s.tx(ctx, "DisableUser", func(tx *Tx) error {
		var found int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1`+s.ForUpdate, id).Scan(&found); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled_at = $1, sessions_after = $2 WHERE id = $3`, ts(at), at.UnixMilli(), id); err != nil {
			return err
		}
		return endSessions(ctx, tx, id, at)
	})
}

func (s *Store) UpdateUserName(ctx context.Context, id int64, first, last string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET first_name = $1, last_name = $2 WHERE id = $3`, first, last, id)
	return s.affected(res, err)
}
