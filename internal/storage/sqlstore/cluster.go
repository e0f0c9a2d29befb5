package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"latchkey/internal/token"
)

// ---- nodes and throttles

func (s *Store) Heartbeat(ctx context.Context, node string, now, liveSince, forgetBefore time.Time) (int, error) {
	var live int
	err := s.tx(ctx, "Heartbeat", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO nodes (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET seen_at = $2`,
			node, now.UnixMilli()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE seen_at < $1`, forgetBefore.UnixMilli()); err != nil {
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
