package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"latchkey/internal/storage"
)

// ---- bots: community events and Long Poll settings

// addEvent stores e with its community's next number, in tx.
func addEvent(ctx context.Context, tx *Tx, e *storage.CommunityEvent) error {
	// The counter row serialises a community's writers on both backends.
	err := tx.QueryRowContext(ctx, `INSERT INTO community_event_seq (community_id, last_seq) VALUES ($1, 1)
		ON CONFLICT (community_id) DO UPDATE SET last_seq = community_event_seq.last_seq + 1 RETURNING last_seq`, e.CommunityID).Scan(&e.Seq)
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO community_events (community_id, seq, type, object, created_at) VALUES ($1, $2, $3, $4, $5)`,
		e.CommunityID, e.Seq, e.Type, e.Object, ts(e.CreatedAt)); err != nil {
		return err
	}
	// Each confirmed callback server that takes the type is owed it: queued
	// in the same write.
	_, err = tx.ExecContext(ctx, `INSERT INTO deliveries (server_id, community_id, seq, type, status, attempts, next_at, last_error, updated_at)
		SELECT id, community_id, $1, $2, $3, 0, $4, '', $4 FROM callback_servers
		WHERE community_id = $5 AND status = $6 AND events LIKE $7`,
		e.Seq, e.Type, storage.DeliveryPending, ts(e.CreatedAt), e.CommunityID, storage.CallbackOK, `%"`+e.Type+`"%`)
	return err
}

func (s *Store) CommunityEvents(ctx context.Context, communityID, from int64, limit int) ([]storage.CommunityEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT community_id, seq, type, object, created_at FROM community_events
		WHERE community_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3`, communityID, from, limit)
	if err != nil {
		return nil, s.err(err)
	}
	es, err := collect(rows, func(row scanner) (storage.CommunityEvent, error) {
		var e storage.CommunityEvent
		var created int64
		err := row.Scan(&e.CommunityID, &e.Seq, &e.Type, &e.Object, &created)
		e.CreatedAt = at(created)
		return e, err
	})
	return es, s.err(err)
}

func (s *Store) DeleteCommunityEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM community_events WHERE (community_id, seq) IN
		(SELECT community_id, seq FROM community_events WHERE created_at < $1 LIMIT $2)`, ts(before), limit)
	if err != nil {
		return 0, s.err(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func (s *Store) SetMembership(ctx context.Context, communityID, userID int64, member bool, at time.Time, event *storage.CommunityEvent) (bool, error) {
	var changed bool
	err := s.tx(ctx, "SetMembership", func(tx *Tx) error {
		var res sql.Result
		var err error
		if member {
			res, err = tx.ExecContext(ctx, `INSERT INTO community_members (community_id, user_id, joined_at) VALUES ($1, $2, $3)
				ON CONFLICT (community_id, user_id) DO NOTHING`, communityID, userID, ts(at))
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM community_members WHERE community_id = $1 AND user_id = $2`, communityID, userID)
		}
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if changed = n > 0; changed && event != nil {
			return addEvent(ctx, tx, event)
		}
		return nil
	})
	return changed, s.err(err)
}

func (s *Store) SetMessagesAllowed(ctx context.Context, communityID, userID int64, allowed bool, at time.Time, event func(changed bool) *storage.CommunityEvent) (bool, error) {
	var stored bool
	err := s.tx(ctx, "SetMessagesAllowed", func(tx *Tx) error {
		want := 0
		if allowed {
			want = 1
		}
		var was int64 = 1 // no row: allowed
		err := tx.QueryRowContext(ctx, `SELECT allowed FROM community_message_perms WHERE community_id = $1 AND user_id = $2`+s.ForUpdate, communityID, userID).Scan(&was)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO community_message_perms (community_id, user_id, allowed, at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (community_id, user_id) DO UPDATE SET allowed = excluded.allowed, at = excluded.at`, communityID, userID, want, ts(at)); err != nil {
			return err
		}
		if e := event(was != int64(want)); e != nil {
			stored = true
			return addEvent(ctx, tx, e)
		}
		return nil
	})
	return stored, s.err(err)
}

func (s *Store) MessagesAllowed(ctx context.Context, communityID, userID int64) (bool, error) {
	var allowed int64
	err := s.r.QueryRowContext(ctx, `SELECT allowed FROM community_message_perms WHERE community_id = $1 AND user_id = $2`, communityID, userID).Scan(&allowed)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return allowed == 1, s.err(err)
}

func (s *Store) LastEventSeq(ctx context.Context, communityID int64) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT last_seq FROM community_event_seq WHERE community_id = $1`, communityID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, s.err(err)
}

func (s *Store) LongPollSettings(ctx context.Context, communityID int64) (storage.LongPollSettings, error) {
	ls, err := scanLongPoll(s.r.QueryRowContext(ctx, `SELECT `+longPollCols+` FROM longpoll_settings WHERE community_id = $1`, communityID), communityID)
	return ls, s.err(err)
}

func (s *Store) UpdateLongPollSettings(ctx context.Context, communityID int64, update func(*storage.LongPollSettings) error) (storage.LongPollSettings, error) {
	var ls storage.LongPollSettings
	err := s.tx(ctx, "UpdateLongPollSettings", func(tx *Tx) error {
		// The row is made first, so that FOR UPDATE has one to lock.
		if _, err := tx.ExecContext(ctx, `INSERT INTO longpoll_settings (community_id, enabled, api_version, events) VALUES ($1, 0, $2, '[]')
			ON CONFLICT (community_id) DO NOTHING`, communityID, storage.DefaultLongPollVersion); err != nil {
			return err
		}
		var err error
		ls, err = scanLongPoll(tx.QueryRowContext(ctx, `SELECT `+longPollCols+` FROM longpoll_settings WHERE community_id = $1`+s.ForUpdate, communityID), communityID)
		if err != nil {
			return err
		}
		if err := update(&ls); err != nil {
			return err
		}
		if ls.Events == nil {
			ls.Events = []string{}
		}
		enabled := 0
		if ls.Enabled {
			enabled = 1
		}
		_, err = tx.ExecContext(ctx, `UPDATE longpoll_settings SET enabled = $1, api_version = $2, events = $3 WHERE community_id = $4`,
			enabled, ls.APIVersion, jsonText(ls.Events), communityID)
		return err
	})
	return ls, s.err(err)
}

const longPollCols = `enabled, api_version, events`

// scanLongPoll reads longPollCols; no row is the settings never set.
func scanLongPoll(row *sql.Row, communityID int64) (storage.LongPollSettings, error) {
	ls := storage.LongPollSettings{CommunityID: communityID, APIVersion: storage.DefaultLongPollVersion, Events: []string{}}
	var enabled int64
	var events string
	err := row.Scan(&enabled, &ls.APIVersion, &events)
	if errors.Is(err, sql.ErrNoRows) {
		return ls, nil
	}
	if err != nil {
		return ls, err
	}
	ls.Enabled = enabled == 1
	return ls, json.Unmarshal([]byte(events), &ls.Events)
}
