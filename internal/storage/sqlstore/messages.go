package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"latchkey/internal/storage"
)

// ---- notifications, app events, messages

func (s *Store) CreateNotification(ctx context.Context, n *storage.Notification) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&n.ID) },
		`INSERT INTO notifications (app_id, user_id, message, created_at, read_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		n.AppID, n.UserID, n.Message, ts(n.CreatedAt), ts(n.ReadAt))
	return s.err(err)
}

func (s *Store) ListNotifications(ctx context.Context, userID int64) ([]storage.Notification, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, app_id, user_id, message, created_at, read_at FROM notifications WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, s.err(err)
	}
	ns, err := collect(rows, func(row scanner) (storage.Notification, error) {
		var n storage.Notification
		var created, read int64
		err := row.Scan(&n.ID, &n.AppID, &n.UserID, &n.Message, &created, &read)
		n.CreatedAt, n.ReadAt = at(created), at(read)
		return n, err
	})
	return ns, s.err(err)
}

func (s *Store) MarkNotificationsRead(ctx context.Context, userID int64, when time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at = 0`, ts(when), userID)
	return s.err(err)
}

func (s *Store) CreateAppEvent(ctx context.Context, e *storage.AppEvent) error {
	err := s.writeRow(ctx, func(r scanner) error { return r.Scan(&e.ID) },
		`INSERT INTO app_events (app_id, user_id, activity_id, value, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		e.AppID, e.UserID, e.ActivityID, e.Value, ts(e.CreatedAt))
	return s.err(err)
}

func (s *Store) ListAppEvents(ctx context.Context, appID int64) ([]storage.AppEvent, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, app_id, user_id, activity_id, value, created_at FROM app_events WHERE app_id = $1 ORDER BY id DESC`, appID)
	if err != nil {
		return nil, s.err(err)
	}
	es, err := collect(rows, func(row scanner) (storage.AppEvent, error) {
		var e storage.AppEvent
		var created int64
		err := row.Scan(&e.ID, &e.AppID, &e.UserID, &e.ActivityID, &e.Value, &created)
		e.CreatedAt = at(created)
		return e, err
	})
	return es, s.err(err)
}

const messageCols = `id, app_id, from_user_id, from_community_id, peer_id, text, random_id, created_at, read_at`

func scanMessage(row scanner) (storage.Message, error) {
	var m storage.Message
	var created, read int64
	err := row.Scan(&m.ID, &m.AppID, &m.FromUserID, &m.FromCommunityID, &m.PeerID, &m.Text, &m.RandomID, &created, &read)
	m.CreatedAt, m.ReadAt = at(created), at(read)
	return m, err
}

func (s *Store) CreateMessage(ctx context.Context, m *storage.Message, event func(storage.Message) *storage.CommunityEvent) error {
	return s.tx(ctx, "CreateMessage", func(tx *Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO messages (app_id, from_user_id, from_community_id, peer_id, text, random_id, created_at, read_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			 ON CONFLICT (app_id, from_user_id, from_community_id, random_id) WHERE random_id <> 0 DO NOTHING
			 RETURNING id`,
			m.AppID, m.FromUserID, m.FromCommunityID, m.PeerID, m.Text, m.RandomID, ts(m.CreatedAt), ts(m.ReadAt)).Scan(&m.ID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// A duplicate random_id: the message already sent is the answer,
			// and its event was stored with it.
			first, err := scanMessage(tx.QueryRowContext(ctx,
				`SELECT `+messageCols+` FROM messages WHERE app_id = $1 AND from_user_id = $2 AND from_community_id = $3 AND random_id = $4`,
				m.AppID, m.FromUserID, m.FromCommunityID, m.RandomID))
			if err != nil {
				return err
			}
			*m = first
			m.Duplicate = true
			return nil
		case err != nil:
			return err
		}
		if event == nil {
			return nil
		}
		if e := event(*m); e != nil {
			return addEvent(ctx, tx, e)
		}
		return nil
	})
}

func (s *Store) MarkMessagesRead(ctx context.Context, peerID int64, when time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE messages SET read_at = $1 WHERE peer_id = $2 AND read_at = 0`, ts(when), peerID)
	return s.err(err)
}

func (s *Store) ListMessages(ctx context.Context, peerID int64) ([]storage.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE peer_id = $1 ORDER BY id DESC`, peerID)
	if err != nil {
		return nil, s.err(err)
	}
	ms, err := collect(rows, scanMessage)
	return ms, s.err(err)
}

func (s *Store) ListSentToCommunities(ctx context.Context, userID int64, limit int) ([]storage.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE from_user_id = $1 AND peer_id < 0 ORDER BY id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	ms, err := collect(rows, scanMessage)
	return ms, s.err(err)
}

func (s *Store) ListCommunityMessages(ctx context.Context, communityID int64, limit int) ([]storage.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE peer_id = $1 OR from_community_id = $2 ORDER BY id DESC LIMIT $3`,
		-communityID, communityID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	ms, err := collect(rows, scanMessage)
	return ms, s.err(err)
}
