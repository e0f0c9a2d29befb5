package platform

import (
	"context"
	"crypto/rand"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/storage"
)

// BackChannel tells apps that a session which signed in to them ended
// (OpenID Connect Back-Channel Logout 1.0): at logout, when a session is
// ended from the security page (one, or all others), when the password is
// set and when the user is disabled. Each app with a back-channel logout
// URI gets a logout token through the Callback API's delivery queue: the
// same retries, the same outbound address rules.
type BackChannel struct {
	*core
	sessions storage.Sessions
	queue    storage.Callbacks
	apps     *Apps
	signing  *Signing
	// issuer is the id_tokens' issuer; wake starts the queue's runner.
	issuer func() string
	wake   func()
}

// LogoutEvent is the logout token's event (Back-Channel Logout §2.4).
const LogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL covers the deliveries' retries (5 attempts over about
// three and a half minutes).
const logoutTokenTTL = 10 * time.Minute

// LogoutClaims are a logout token's claims: never a nonce (§2.4).
type LogoutClaims struct {
	Issuer   string                    `json:"iss"`
	Subject  string                    `json:"sub"`
	Audience string                    `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	Expiry   int64                     `json:"exp"`
	JTI      string                    `json:"jti"`
	SID      string                    `json:"sid"`
	Events   map[string]map[string]any `json:"events"`
}

// ending runs end, which ends some of the user's live sessions (those
// for which ends says so), and tells their apps.
func (b *BackChannel) ending(ctx context.Context, userID int64, ends func(storage.Session) bool, end func() error) error {
	if b == nil {
		return end()
	}
	live, listErr := b.sessions.ListSessions(ctx, userID)
	if err := end(); err != nil {
		return err
	}
	if listErr != nil {
		b.Log.WarnContext(ctx, "back-channel logout: listing the sessions that end", "err", listErr)
		return nil
	}
	var ended []storage.Session
	for _, s := range live {
		if ends(s) {
			ended = append(ended, s)
		}
	}
	b.tell(ctx, ended)
	return nil
}

// tell queues a logout token for every app each ended session signed in
// to that has a back-channel logout URI. The sessions have ended either
// way: a failure here is logged.
func (b *BackChannel) tell(ctx context.Context, ended []storage.Session) {
	now := b.now()
	var ds []storage.Delivery
	for _, s := range ended {
		apps, err := b.sessions.SessionApps(ctx, s.SID)
		if err != nil {
			b.Log.WarnContext(ctx, "back-channel logout: the session's apps", "err", err)
			continue
		}
		for _, id := range apps {
			a, err := b.apps.LookupApp(ctx, id)
			if err != nil || a.BackchannelLogoutURI == "" {
				continue
			}
			raw, err := b.signing.sign(ctx, "logout+jwt", LogoutClaims{Issuer: b.issuer(), Subject: strconv.FormatInt(s.UserID, 10),
				Audience: strconv.FormatInt(a.ID, 10), IssuedAt: now.Unix(), Expiry: now.Add(logoutTokenTTL).Unix(), JTI: rand.Text(),
				SID: s.SID, Events: map[string]map[string]any{LogoutEvent: {}}}, jose.RS256)
			if err != nil {
				b.Log.WarnContext(ctx, "back-channel logout: signing", "err", err)
				continue
			}
			ds = append(ds, storage.Delivery{AppID: a.ID, Type: "logout", URL: a.BackchannelLogoutURI, Payload: raw, NextAt: now})
		}
	}
	if len(ds) == 0 {
		return
	}
	if err := b.queue.QueueDeliveries(ctx, ds); err != nil {
		b.Log.WarnContext(ctx, "back-channel logout: queueing", "err", err)
		return
	}
	b.wake()
}

// SignedInTo records that the session sid signed in to the app, to be
// told when the session ends.
func (p *Sessions) SignedInTo(ctx context.Context, sid string, appID int64) error {
	if sid == "" {
		return nil
	}
	return p.store.AddSessionApp(ctx, sid, appID)
}
