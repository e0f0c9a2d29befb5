package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"latchkey/internal/storage"
)

// ---- callback servers and their deliveries

const callbackCols = `id, community_id, url, title, secret_sealed, creator_id, status, api_version, events, created_at`

func scanCallback(row scanner) (storage.CallbackServer, error) {
	var c storage.CallbackServer
	var events string
	var created int64
	err := row.Scan(&c.ID, &c.CommunityID, &c.URL, &c.Title, &c.SecretSealed, &c.CreatorID, &c.Status, &c.APIVersion, &events, &created)
	if err != nil {
		return c, err
	}
	c.CreatedAt = at(created)
	return c, json.Unmarshal([]byte(events), &c.Events)
}

func (s *Store) CreateCallbackServer(ctx context.Context, c *storage.CallbackServer, now time.Time) error {
	if c.Events == nil {
		c.Events = []string{}
	}
	return s.tx(ctx, "CreateCallbackServer", func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO callback_servers (community_id, url, title, secret_sealed, creator_id, status, api_version, events, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			c.CommunityID, c.URL, c.Title, c.SecretSealed, c.CreatorID, c.Status, c.APIVersion, jsonText(c.Events), ts(c.CreatedAt)).Scan(&c.ID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deliveries (server_id, community_id, seq, type, status, attempts, next_at, last_error, updated_at)
			VALUES ($1, $2, 0, 'confirmation', $3, 0, $4, '', $4)`, c.ID, c.CommunityID, storage.DeliveryPending, ts(now))
		return err
	})
}

func (s *Store) CallbackServers(ctx context.Context, communityID int64) ([]storage.CallbackServer, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+callbackCols+` FROM callback_servers WHERE community_id = $1 ORDER BY id`, communityID)
	if err != nil {
		return nil, s.err(err)
	}
	cs, err := collect(rows, scanCallback)
	return cs, s.err(err)
}

func (s *Store) UpdateCallbackServer(ctx context.Context, communityID, id int64, update func(*storage.CallbackServer) error) (storage.CallbackServer, error) {
	var c storage.CallbackServer
	err := s.tx(ctx, "UpdateCallbackServer", func(tx *Tx) error {
		var err error
		c, err = scanCallback(tx.QueryRowContext(ctx, `SELECT `+callbackCols+` FROM callback_servers WHERE id = $1 AND community_id = $2`+s.ForUpdate, id, communityID))
		if err != nil {
			return err
		}
		if err := update(&c); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE callback_servers SET url = $1, title = $2, secret_sealed = $3, status = $4, api_version = $5, events = $6 WHERE id = $7`,
			c.URL, c.Title, c.SecretSealed, c.Status, c.APIVersion, jsonText(c.Events), id)
		return err
	})
	return c, s.err(err)
}

func (s *Store) DeleteCallbackServer(ctx context.Context, communityID, id int64) error {
	return s.tx(ctx, "DeleteCallbackServer", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE server_id = $1 AND community_id = $2`, id, communityID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM callback_servers WHERE id = $1 AND community_id = $2`, id, communityID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

const deliveryCols = `id, COALESCE(server_id, 0), COALESCE(app_id, 0), community_id, seq, type, url, payload, status, attempts, next_at, last_error, updated_at`

func scanDelivery(row scanner) (storage.Delivery, error) {
	var d storage.Delivery
	var next, updated int64
	err := row.Scan(&d.ID, &d.ServerID, &d.AppID, &d.CommunityID, &d.Seq, &d.Type, &d.URL, &d.Payload, &d.Status, &d.Attempts, &next, &d.LastError, &updated)
	d.NextAt, d.UpdatedAt = at(next), at(updated)
	return d, err
}

func (s *Store) QueueDeliveries(ctx context.Context, ds []storage.Delivery) error {
	return s.tx(ctx, "QueueDeliveries", func(tx *Tx) error {
		for _, d := range ds {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (app_id, type, url, payload, status, attempts, next_at, last_error, updated_at)
				VALUES ($1, $2, $3, $4, $5, 0, $6, '', $6)`, d.AppID, d.Type, d.URL, d.Payload, storage.DeliveryPending, ts(d.NextAt)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) AppDeliveries(ctx context.Context, appID int64, limit int) ([]storage.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE app_id = $1 ORDER BY id DESC LIMIT $2`, appID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	ds, err := collect(rows, scanDelivery)
	return ds, s.err(err)
}

func (s *Store) NextDeliveries(ctx context.Context, now, lease time.Time, limit int) ([]storage.Delivery, error) {
	var claimed []storage.Delivery
	err := s.tx(ctx, "NextDeliveries", func(tx *Tx) error {
		// The first pending delivery of each server and of each app, if
		// it is due.
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries d
			WHERE d.status = $1 AND d.next_at <= $2
			AND d.id = COALESCE((SELECT MIN(x.id) FROM deliveries x WHERE x.server_id = d.server_id AND x.status = $1),
				(SELECT MIN(x.id) FROM deliveries x WHERE x.app_id = d.app_id AND x.status = $1))
			ORDER BY d.id LIMIT $3`, storage.DeliveryPending, ts(now), limit)
		if err != nil {
			return err
		}
		due, err := collect(rows, scanDelivery)
		if err != nil {
			return err
		}
		for _, d := range due {
			// Claimed only if no other node moved it meanwhile.
			res, err := tx.ExecContext(ctx, `UPDATE deliveries SET next_at = $1 WHERE id = $2 AND next_at = $3 AND status = $4`,
				ts(lease), d.ID, ts(d.NextAt), storage.DeliveryPending)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				claimed = append(claimed, d)
			}
		}
		return nil
	})
	return claimed, s.err(err)
}

func (s *Store) FinishDelivery(ctx context.Context, d storage.Delivery) error {
	return s.tx(ctx, "FinishDelivery", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = $1, attempts = $2, next_at = $3, last_error = $4, updated_at = $5 WHERE id = $6`,
			d.Status, d.Attempts, ts(d.NextAt), d.LastError, ts(d.UpdatedAt), d.ID); err != nil {
			return err
		}
		if d.Type == "confirmation" && d.ServerID != 0 && d.Status != storage.DeliveryPending {
			_, err := tx.ExecContext(ctx, `UPDATE callback_servers SET status = $1 WHERE id = $2`, d.Status, d.ServerID)
			return err
		}
		return nil
	})
}

func (s *Store) Deliveries(ctx context.Context, communityID int64, limit int) ([]storage.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE community_id = $1 ORDER BY id DESC LIMIT $2`, communityID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	ds, err := collect(rows, scanDelivery)
	return ds, s.err(err)
}
