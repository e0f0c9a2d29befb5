package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// ---- APIs

const apiCols = `id, identifier, name, owner_id, scopes, token_format, token_ttl, rate, upstream, slug, routes, secret_hash, created_at`

func scanAPI(row scanner) (storage.API, error) {
	var a storage.API
	var scopes, routes string
	var ttl, created int64
	err := row.Scan(&a.ID, &a.Identifier, &a.Name, &a.OwnerID, &scopes, &a.TokenFormat, &ttl, &a.Rate, &a.Upstream, &a.Slug, &routes,
		&hashColumn{h: &a.SecretHash}, &created)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(scopes), &a.Scopes); err != nil {
		return a, fmt.Errorf("api %d: scopes: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(routes), &a.Routes); err != nil {
		return a, fmt.Errorf("api %d: routes: %w", a.ID, err)
	}
	a.TokenTTL, a.CreatedAt = time.Duration(ttl)*time.Second, at(created)
	return a, nil
}

// apiArgs are the mutable columns, in the order of apiCols after owner_id.
func apiArgs(a *storage.API) []any {
	scopes, routes := a.Scopes, a.Routes
	if scopes == nil {
		scopes = []storage.APIScope{}
	}
	if routes == nil {
		routes = []storage.APIRoute{}
	}
	return []any{jsonText(scopes), a.TokenFormat, int64(a.TokenTTL / time.Second), a.Rate, a.Upstream, a.Slug, jsonText(routes), a.SecretHash[:]}
}

func (s *Store) CreateAPI(ctx context.Context, a *storage.API) error {
	args := append([]any{a.Identifier, a.Name, a.OwnerID}, apiArgs(a)...)
	args = append(args, ts(a.CreatedAt))
	err := s.w.QueryRowContext(ctx, `INSERT INTO apis (identifier, name, owner_id, scopes, token_format, token_ttl, rate, upstream, slug, routes, secret_hash, created_at)
		VALUES (`+placeholders(1, len(args))+`) RETURNING id`, args...).Scan(&a.ID)
	return s.err(err)
}

func (s *Store) GetAPI(ctx context.Context, id int64) (storage.API, error) {
	a, err := scanAPI(s.r.QueryRowContext(ctx, `SELECT `+apiCols+` FROM apis WHERE id = $1`, id))
	return a, s.err(err)
}

func (s *Store) APIByIdentifier(ctx context.Context, identifier string) (storage.API, error) {
	a, err := scanAPI(s.r.QueryRowContext(ctx, `SELECT `+apiCols+` FROM apis WHERE identifier = $1`, identifier))
	return a, s.err(err)
}

func (s *Store) ListAPIs(ctx context.Context, ownerID int64) ([]storage.API, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+apiCols+` FROM apis WHERE $1 = 0 OR owner_id = $1 ORDER BY id`, ownerID)
	if err != nil {
		return nil, s.err(err)
	}
	apis, err := collect(rows, scanAPI)
	return apis, s.err(err)
}

func (s *Store) UpdateAPI(ctx context.Context, id int64, update func(*storage.API) error) (storage.API, error) {
	var a storage.API
	var updateErr error
	err := s.tx(ctx, "UpdateAPI", func(tx *Tx) error {
		var err error
		a, err = scanAPI(tx.QueryRowContext(ctx, `SELECT `+apiCols+` FROM apis WHERE id = $1`+s.ForUpdate, id))
		if err != nil {
			return err
		}
		if updateErr = update(&a); updateErr != nil {
			return updateErr
		}
		a.ID = id
		res, err := tx.ExecContext(ctx, `UPDATE apis SET name = $1, scopes = $2, token_format = $3, token_ttl = $4, rate = $5,
			upstream = $6, slug = $7, routes = $8, secret_hash = $9 WHERE id = $10`, append(append([]any{a.Name}, apiArgs(&a)...), id)...)
		return s.affected(res, err)
	})
	if updateErr != nil {
		return a, updateErr
	}
	return a, s.err(err)
}

func (s *Store) DeleteAPI(ctx context.Context, id int64, now time.Time) ([]token.Hash, error) {
	var hashes []token.Hash
	err := s.tx(ctx, "DeleteAPI", func(tx *Tx) error {
		var err error
		if hashes, err = revokeIn(ctx, tx, "api_id = $3", []any{id}, storage.RevokedAPIDeleted, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE api_id = $2 AND revoked_at = 0`, ts(now), id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM apis WHERE id = $1`, id)
		return s.affected(res, err)
	})
	return hashes, s.err(err)
}
