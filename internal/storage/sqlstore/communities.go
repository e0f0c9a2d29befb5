package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"latchkey/internal/storage"
)

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
		`SELECT u.id, u.login, u.password_hash, u.first_name, u.last_name, u.email, u.created_at, u.sessions_after, u.disabled_at, u.require_mfa
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
