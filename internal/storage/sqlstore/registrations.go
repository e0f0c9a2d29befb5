package sqlstore

import (
	"context"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// ---- registrations (RFC 7591) and initial access tokens

const registrationCols = `app_id, access_hash, metadata, address, created_at`

func scanRegistration(row scanner) (storage.Registration, error) {
	var r storage.Registration
	var hash []byte
	var metadata string
	var created int64
	err := row.Scan(&r.AppID, &hash, &metadata, &r.Address, &created)
	r.AccessHash, r.Metadata, r.CreatedAt = hashOf(hash), []byte(metadata), at(created)
	return r, err
}

func (s *Store) Register(ctx context.Context, a *storage.App, serviceToken storage.Token, r *storage.Registration, initial token.Hash, now time.Time) error {
	return s.tx(ctx, "Register", func(tx *Tx) error {
		if initial != (token.Hash{}) {
			// Checked and counted in one statement: two registrations
			// racing for the last use cannot both have it.
			res, err := tx.ExecContext(ctx, `UPDATE registration_tokens SET uses = uses + 1
				WHERE hash = $1 AND revoked_at = 0 AND (expires_at = 0 OR expires_at > $2) AND (max_uses = 0 OR uses < max_uses)`,
				initial[:], ts(now))
			if err := s.affected(res, err); err != nil {
				return err
			}
		}
		if err := insertApp(ctx, tx, a, serviceToken); err != nil {
			return err
		}
		r.AppID = a.ID
		_, err := tx.ExecContext(ctx, `INSERT INTO registrations (`+registrationCols+`) VALUES ($1, $2, $3, $4, $5)`,
			r.AppID, r.AccessHash[:], string(r.Metadata), r.Address, ts(r.CreatedAt))
		return err
	})
}

func (s *Store) GetRegistration(ctx context.Context, appID int64) (storage.Registration, error) {
	r, err := scanRegistration(s.r.QueryRowContext(ctx, `SELECT `+registrationCols+` FROM registrations WHERE app_id = $1`, appID))
	return r, s.err(err)
}

func (s *Store) UpdateRegistration(ctx context.Context, appID int64, update func(*storage.App, *storage.Registration) error) (storage.App, storage.Registration, error) {
	var a storage.App
	var r storage.Registration
	var updateErr error
	err := s.tx(ctx, "UpdateRegistration", func(tx *Tx) error {
		var err error
		if r, err = scanRegistration(tx.QueryRowContext(ctx, `SELECT `+registrationCols+` FROM registrations WHERE app_id = $1`+s.ForUpdate, appID)); err != nil {
			return err
		}
		if a, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE id = $1`+s.ForUpdate, appID)); err != nil {
			return err
		}
		if updateErr = update(&a, &r); updateErr != nil {
			return updateErr
		}
		a.ID, r.AppID = appID, appID
		if err := s.writeApp(ctx, tx, &a); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE registrations SET access_hash = $1, metadata = $2 WHERE app_id = $3`, r.AccessHash[:], string(r.Metadata), appID)
		return s.affected(res, err)
	})
	if updateErr != nil {
		return a, r, updateErr
	}
	return a, r, s.err(err)
}

func (s *Store) ExpireRegistrations(ctx context.Context, cutoff time.Time, limit int) ([]token.Hash, int, error) {
	var hashes []token.Hash
	n := 0
	err := s.tx(ctx, "ExpireRegistrations", func(tx *Tx) error {
		// Apps owned by no one: registered, or standing for a client
		// metadata document.
		rows, err := tx.QueryContext(ctx, `SELECT a.id FROM apps a WHERE a.owner_id = 0 AND a.created_at < $1
			AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.app_id = a.id AND t.flow <> $2 AND t.issued_at >= $1)
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.app_id = a.id AND f.issued_at >= $1)
			ORDER BY a.id LIMIT $3`, ts(cutoff), string(storage.FlowServiceToken), limit)
		if err != nil {
			return err
		}
		ids, err := collect(rows, func(row scanner) (int64, error) {
			var id int64
			return id, row.Scan(&id)
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			revoked, err := s.deleteApp(ctx, tx, id)
			if err != nil {
				return err
			}
			hashes = append(hashes, revoked...)
		}
		n = len(ids)
		return nil
	})
	return hashes, n, s.err(err)
}

const registrationTokenCols = `id, name, hash, max_uses, uses, expires_at, revoked_at, created_at`

func scanRegistrationToken(row scanner) (storage.RegistrationToken, error) {
	var t storage.RegistrationToken
	var hash []byte
	var expires, revoked, created int64
	err := row.Scan(&t.ID, &t.Name, &hash, &t.MaxUses, &t.Uses, &expires, &revoked, &created)
	t.Hash, t.ExpiresAt, t.RevokedAt, t.CreatedAt = hashOf(hash), at(expires), at(revoked), at(created)
	return t, err
}

func (s *Store) CreateRegistrationToken(ctx context.Context, t *storage.RegistrationToken) error {
	err := s.w.QueryRowContext(ctx, `INSERT INTO registration_tokens (name, hash, max_uses, uses, expires_at, revoked_at, created_at)
		VALUES ($1, $2, $3, 0, $4, 0, $5) RETURNING id`, t.Name, t.Hash[:], t.MaxUses, ts(t.ExpiresAt), ts(t.CreatedAt)).Scan(&t.ID)
	return s.err(err)
}

func (s *Store) ListRegistrationTokens(ctx context.Context) ([]storage.RegistrationToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+registrationTokenCols+` FROM registration_tokens ORDER BY id`)
	if err != nil {
		return nil, s.err(err)
	}
	list, err := collect(rows, scanRegistrationToken)
	return list, s.err(err)
}

func (s *Store) RevokeRegistrationToken(ctx context.Context, id int64, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE registration_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, ts(now), id)
	return s.affected(res, err)
}

// ---- client ID metadata documents

func (s *Store) GetClientDocument(ctx context.Context, url string) (storage.ClientDocument, error) {
	d := storage.ClientDocument{URL: url}
	var expires int64
	err := s.r.QueryRowContext(ctx, `SELECT app_id, expires_at FROM client_documents WHERE url = $1`, url).Scan(&d.AppID, &expires)
	d.ExpiresAt = at(expires)
	return d, s.err(err)
}

func (s *Store) CreateClientDocument(ctx context.Context, d *storage.ClientDocument, a *storage.App, serviceToken storage.Token) error {
	return s.tx(ctx, "CreateClientDocument", func(tx *Tx) error {
		if err := insertApp(ctx, tx, a, serviceToken); err != nil {
			return err
		}
		d.AppID = a.ID
		_, err := tx.ExecContext(ctx, `INSERT INTO client_documents (url, app_id, expires_at) VALUES ($1, $2, $3)`, d.URL, d.AppID, ts(d.ExpiresAt))
		return err
	})
}

func (s *Store) RefreshClientDocument(ctx context.Context, url string, expires time.Time, update func(*storage.App) error) (storage.App, error) {
	var a storage.App
	var updateErr error
	err := s.tx(ctx, "RefreshClientDocument", func(tx *Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT app_id FROM client_documents WHERE url = $1`+s.ForUpdate, url).Scan(&id); err != nil {
			return err
		}
		var err error
		if a, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE id = $1`+s.ForUpdate, id)); err != nil {
			return err
		}
		if updateErr = update(&a); updateErr != nil {
			return updateErr
		}
		a.ID = id
		if err := s.writeApp(ctx, tx, &a); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE client_documents SET expires_at = $1 WHERE url = $2`, ts(expires), url)
		return err
	})
	if updateErr != nil {
		return a, updateErr
	}
	return a, s.err(err)
}
