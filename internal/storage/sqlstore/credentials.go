package sqlstore

import (
	"context"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

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
