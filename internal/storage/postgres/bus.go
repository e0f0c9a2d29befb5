package postgres

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"latchkey/internal/token"
)

// channel is the NOTIFY channel revocations travel on; events that of
// community events (the community's id), which wake waiting polls.
const (
	channel = "latchkey_revoke"
	events  = "latchkey_events"
)

// hashesPerNotice keeps each payload (64 hex digits a hash) well under
// PostgreSQL's 8000-byte limit.
const hashesPerNotice = 100

// Bus carries revocations between the nodes sharing one PostgreSQL
// database: Publish sends the hashes of revoked tokens with NOTIFY, and
// Listen delivers every node's notices to this node's token cache.
type Bus struct {
	DSN string
	DB  *sql.DB // for publishing
	Log *slog.Logger
	// Events, when set, is told of every node's community events.
	Events func(communityID int64)
}

// PublishEvent tells every node that the community has a new event.
func (b *Bus) PublishEvent(ctx context.Context, communityID int64) error {
	_, err := b.DB.ExecContext(ctx, `SELECT pg_notify($1, $2)`, events, strconv.FormatInt(communityID, 10))
	return mapErr(err)
}

// Publish tells every node (this one included) that the tokens stopped
// working.
func (b *Bus) Publish(ctx context.Context, hashes []token.Hash) error {
	for len(hashes) > 0 {
		n := min(len(hashes), hashesPerNotice)
		parts := make([]string, n)
		for i, h := range hashes[:n] {
			parts[i] = hex.EncodeToString(h[:])
		}
		if _, err := b.DB.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, strings.Join(parts, ",")); err != nil {
			return mapErr(err)
		}
		hashes = hashes[n:]
	}
	return nil
}

// Listen receives revocations until ctx ends. It calls up once it listens,
// revoke for each notice, and down as soon as the connection fails: a node
// that may have missed notices must stop trusting its cache until it
// listens again. It reconnects by itself, with backoff.
func (b *Bus) Listen(ctx context.Context, revoke func([]token.Hash), down, up func()) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.listenOnce(ctx, revoke, up, func() { backoff = 100 * time.Millisecond })
		down()
		if ctx.Err() != nil {
			return
		}
		b.Log.WarnContext(ctx, "revocation listener disconnected; token cache off until it is back", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (b *Bus) listenOnce(ctx context.Context, revoke func([]token.Hash), up, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, b.DSN)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+events); err != nil {
		return err
	}
	connected()
	up()
	b.Log.InfoContext(ctx, "listening for revocations")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n.Channel == events {
			if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil && b.Events != nil {
				b.Events(id)
			}
			continue
		}
		hashes, err := parseNotice(n.Payload)
		if err != nil {
			b.Log.WarnContext(ctx, "bad revocation notice ignored", "err", err)
			continue
		}
		revoke(hashes)
	}
}

func parseNotice(payload string) ([]token.Hash, error) {
	var out []token.Hash
	for part := range strings.SplitSeq(payload, ",") {
		var h token.Hash
		if n, err := hex.Decode(h[:], []byte(part)); err != nil || n != len(h) {
			return nil, errors.New("revocation notice: not a list of hashes")
		}
		out = append(out, h)
	}
	return out, nil
}
