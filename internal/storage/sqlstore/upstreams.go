package sqlstore

import (
	"context"
	"strings"

	"latchkey/internal/storage"
)

// ---- upstream identity providers and the links of users to them

const upstreamCols = `id, name, kind, config, secret_sealed, created_at`

func scanUpstream(row scanner) (storage.Upstream, error) {
	var u storage.Upstream
	var config string
	var created int64
	err := row.Scan(&u.ID, &u.Name, &u.Kind, &config, &u.SecretSealed, &created)
	u.Config, u.CreatedAt = []byte(config), at(created)
	return u, err
}

func (s *Store) CreateUpstream(ctx context.Context, u *storage.Upstream) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&u.ID) },
		`INSERT INTO upstreams (name, kind, config, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		u.Name, string(u.Kind), string(u.Config), u.SecretSealed, ts(u.CreatedAt))
	return s.err(err)
}

func (s *Store) ListUpstreams(ctx context.Context) ([]storage.Upstream, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+upstreamCols+` FROM upstreams ORDER BY name`)
	if err != nil {
		return nil, s.err(err)
	}
	out, err := collect(rows, scanUpstream)
	return out, s.err(err)
}

func (s *Store) UpstreamByName(ctx context.Context, name string) (storage.Upstream, error) {
	u, err := scanUpstream(s.r.QueryRowContext(ctx, `SELECT `+upstreamCols+` FROM upstreams WHERE name = $1`, name))
	return u, s.err(err)
}

func (s *Store) DeleteUpstream(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM upstreams WHERE name = $1`, name)
	return s.affected(res, err)
}

func (s *Store) LinkUser(ctx context.Context, l storage.UserLink) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO user_links (upstream_id, subject, user_id, created_at) VALUES ($1, $2, $3, $4)`,
		l.UpstreamID, l.Subject, l.UserID, ts(l.CreatedAt))
	return s.err(err)
}

func (s *Store) LinkedUser(ctx context.Context, upstreamID int64, subject string) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+prefixed("u.", userCols)+` FROM user_links l JOIN users u ON u.id = l.user_id
		WHERE l.upstream_id = $1 AND l.subject = $2`, upstreamID, subject))
	return u, s.err(err)
}

func (s *Store) UserLinks(ctx context.Context, userID int64) ([]storage.UserLink, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT upstream_id, subject, user_id, created_at FROM user_links WHERE user_id = $1 ORDER BY upstream_id`, userID)
	if err != nil {
		return nil, s.err(err)
	}
	out, err := collect(rows, func(r scanner) (storage.UserLink, error) {
		var l storage.UserLink
		var created int64
		err := r.Scan(&l.UpstreamID, &l.Subject, &l.UserID, &created)
		l.CreatedAt = at(created)
		return l, err
	})
	return out, s.err(err)
}

func (s *Store) Unlink(ctx context.Context, userID, upstreamID int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM user_links WHERE user_id = $1 AND upstream_id = $2`, userID, upstreamID)
	return s.affected(res, err)
}

func (s *Store) CreateLinkedUser(ctx context.Context, u *storage.User, l storage.UserLink) error {
	return s.tx(ctx, "CreateLinkedUser", func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO users (login, password_hash, first_name, last_name, email, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, u.Login, u.PasswordHash, u.FirstName, u.LastName, u.Email, ts(u.CreatedAt)).Scan(&u.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO user_links (upstream_id, subject, user_id, created_at) VALUES ($1, $2, $3, $4)`,
			l.UpstreamID, l.Subject, u.ID, ts(l.CreatedAt))
		return err
	})
}

// prefixed is cols, a comma-separated list, each named with prefix.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
