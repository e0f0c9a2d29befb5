package sqlstore

import (
	"context"

	"latchkey/internal/storage"
)

// ---- audit

func (s *Store) AddAudit(ctx context.Context, e storage.AuditEvent) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO audit (at, actor_user_id, app_id, community_id, action, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		ts(e.At), e.ActorUserID, e.AppID, e.CommunityID, string(e.Action), e.IP, e.Detail)
	return s.err(err)
}

func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, at, actor_user_id, app_id, community_id, action, ip, detail FROM audit
		 WHERE ($1 = 0 OR app_id = $1) AND ($2 = 0 OR community_id = $2)
		 ORDER BY id DESC LIMIT $3`, f.AppID, f.CommunityID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	es, err := collect(rows, func(row scanner) (storage.AuditEvent, error) {
		var e storage.AuditEvent
		var when int64
		err := row.Scan(&e.ID, &when, &e.ActorUserID, &e.AppID, &e.CommunityID, &e.Action, &e.IP, &e.Detail)
		e.At = at(when)
		return e, err
	})
	return es, s.err(err)
}
