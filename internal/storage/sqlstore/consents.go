package sqlstore

import (
	"context"

	"latchkey/internal/storage"
)

// ---- consents

func (s *Store) MergeConsent(ctx context.Context, c storage.Consent) error {
	if c.APIID != 0 {
		_, err := s.w.ExecContext(ctx,
			`INSERT INTO api_consents (user_id, app_id, api_id, scope, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
			 ON CONFLICT (user_id, app_id, api_id) DO UPDATE SET scope = api_consents.scope | excluded.scope, updated_at = excluded.updated_at`,
			c.UserID, c.AppID, c.APIID, int64(c.Scope), ts(c.CreatedAt), ts(c.UpdatedAt))
		return s.err(err)
	}
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

func (s *Store) GetAPIConsent(ctx context.Context, userID, appID, apiID int64) (storage.Consent, error) {
	var c storage.Consent
	var created, updated int64
	err := s.r.QueryRowContext(ctx, `SELECT scope, created_at, updated_at FROM api_consents WHERE user_id = $1 AND app_id = $2 AND api_id = $3`,
		userID, appID, apiID).Scan(&c.Scope, &created, &updated)
	c.UserID, c.AppID, c.APIID, c.CreatedAt, c.UpdatedAt = userID, appID, apiID, at(created), at(updated)
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
	return s.tx(ctx, "DeleteConsent", func(tx *Tx) error {
		apis, err := tx.ExecContext(ctx, `DELETE FROM api_consents WHERE user_id = $1 AND app_id = $2`, userID, appID)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE user_id = $1 AND app_id = $2`, userID, appID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		m, _ := apis.RowsAffected()
		if n+m == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

func (s *Store) CountAppUsers(ctx context.Context, appID int64) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM consents WHERE app_id = $1`, appID).Scan(&n)
	return n, s.err(err)
}
