package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The records the first suite did not reach: pushed requests, device
// codes, DPoP proofs, signing keys, refresh tokens revoked by user or
// app, messages seen from a community's side and the user's, message
// permissions, callback servers and their deliveries, and the store's
// own Ping and Close.

// unbound is the holders of a refresh token bound to no key or device.
var unbound = []storage.Holder{{}}

func testPushedRequests(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "pusher")
	a := newApp(t, s, u.ID)
	b := newApp(t, s, u.ID)
	h := hash("pushed")
	must(t, s.CreatePushedRequest(ctx(), h, a.ID, "scope=friends&state=x", t0.Add(time.Minute)))
	if _, err := s.UsePushedRequest(ctx(), h, b.ID, t0, false); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another app's pushed request: %v", err)
	}
	for _, spend := range []bool{false, true} {
		params, err := s.UsePushedRequest(ctx(), h, a.ID, t0, spend)
		if err != nil || params != "scope=friends&state=x" {
			t.Fatalf("the app's pushed request (spend %v): %q %v", spend, params, err)
		}
	}
	if _, err := s.UsePushedRequest(ctx(), h, a.ID, t0, false); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a spent pushed request: %v", err)
	}
	late := hash("pushed, expiring")
	must(t, s.CreatePushedRequest(ctx(), late, a.ID, "x=1", t0.Add(time.Minute)))
	if _, err := s.UsePushedRequest(ctx(), late, a.ID, t0.Add(time.Minute), false); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an expired pushed request: %v", err)
	}
}

func testDeviceCodes(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "viewer")
	a := newApp(t, s, u.ID)
	d := storage.DeviceCode{Hash: hash("device"), UserCode: hash("BCDFGHJK"), AppID: a.ID, Scope: scope.Friends, Status: storage.DevicePending,
		Interval: 5 * time.Second, IssuedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
	must(t, s.CreateDeviceCode(ctx(), d))
	dup := d
	dup.Hash = hash("another device, the same user code")
	wantErr(t, s.CreateDeviceCode(ctx(), dup), storage.ErrConflict)
	got, err := s.DeviceCodeByUserCode(ctx(), d.UserCode)
	must(t, err)
	if got.Hash != d.Hash || got.AppID != a.ID || got.Scope != scope.Friends || got.Status != storage.DevicePending || got.Interval != 5*time.Second || !got.ExpiresAt.Equal(d.ExpiresAt) {
		t.Fatalf("DeviceCodeByUserCode = %+v, want %+v", got, d)
	}
	_, err = s.DeviceCodeByUserCode(ctx(), hash("no such user code"))
	wantErr(t, err, storage.ErrNotFound)
	approved, err := s.UpdateDeviceCode(ctx(), d.Hash, 0, func(d *storage.DeviceCode) error {
		d.Status, d.UserID, d.LastPollAt = storage.DeviceApproved, u.ID, t0.Add(time.Minute)
		return nil
	})
	must(t, err)
	if approved.Status != storage.DeviceApproved || approved.UserID != u.ID || !approved.LastPollAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("UpdateDeviceCode = %+v", approved)
	}
	_, err = s.UpdateDeviceCode(ctx(), d.Hash, a.ID+1000, func(*storage.DeviceCode) error { return nil })
	wantErr(t, err, storage.ErrNotFound) // another app's
	refused := errors.New("refused")
	if _, err := s.UpdateDeviceCode(ctx(), d.Hash, a.ID, func(d *storage.DeviceCode) error { d.Status = storage.DeviceUsed; return refused }); !errors.Is(err, refused) {
		t.Fatalf("an update that fails: %v", err)
	}
	if got, _ := s.DeviceCodeByUserCode(ctx(), d.UserCode); got.Status != storage.DeviceApproved {
		t.Fatalf("after a failed update: %s, want approved (unchanged)", got.Status)
	}
}

func testProofs(t *testing.T, s storage.Storage) {
	h := hash("key thumbprint + jti")
	must(t, s.UseProof(ctx(), h, t0.Add(time.Minute)))
	wantErr(t, s.UseProof(ctx(), h, t0.Add(time.Minute)), storage.ErrConflict)
	must(t, s.UseProof(ctx(), hash("another jti"), t0.Add(time.Minute)))
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	older := storage.SigningKey{KID: "k1", Algorithm: "RS256", Sealed: []byte("sealed 1"), CreatedAt: t0}
	newer := storage.SigningKey{KID: "k2", Algorithm: "RS256", Sealed: []byte("sealed 2"), CreatedAt: t0.Add(time.Hour)}
	must(t, s.CreateSigningKey(ctx(), older))
	must(t, s.CreateSigningKey(ctx(), newer))
	wantErr(t, s.CreateSigningKey(ctx(), older), storage.ErrConflict)
	keys, err := s.ListSigningKeys(ctx())
	must(t, err)
	if len(keys) != 2 || keys[0].KID != "k2" || keys[1].KID != "k1" || string(keys[1].Sealed) != "sealed 1" || !keys[0].RetiredAt.IsZero() {
		t.Fatalf("ListSigningKeys = %+v, want k2 then k1", keys)
	}
	must(t, s.RetireSigningKey(ctx(), "k1", t0.Add(2*time.Hour)))
	wantErr(t, s.RetireSigningKey(ctx(), "k1", t0.Add(3*time.Hour)), storage.ErrNotFound) // retired already
	wantErr(t, s.RetireSigningKey(ctx(), "no such key", t0), storage.ErrNotFound)
	keys, _ = s.ListSigningKeys(ctx())
	if len(keys) != 2 || !keys[1].RetiredAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after retiring k1: %+v", keys)
	}
}

func testRevokeRefreshTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "refresher")
	other := newUser(t, s, "other-refresher")
	a := newApp(t, s, u.ID)
	b := newApp(t, s, u.ID)
	mk := func(name string, app, user int64, family string) storage.RefreshToken {
		r := storage.RefreshToken{Hash: hash(name), Family: hash(family), AppID: app, UserID: user, Scope: scope.Friends, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		must(t, s.CreateRefreshToken(ctx(), r))
		return r
	}
	mk("r1", a.ID, u.ID, "f1")
	mk("r2", a.ID, u.ID, "f1")
	mk("r3", b.ID, u.ID, "f2")
	mk("r4", a.ID, other.ID, "f3")
	f1 := hash("f1")
	if n, err := s.RevokeRefreshTokens(ctx(), &f1, 0, 0, t0); err != nil || n != 2 {
		t.Fatalf("revoking family f1: %d %v, want 2", n, err)
	}
	if n, err := s.RevokeRefreshTokens(ctx(), &f1, 0, 0, t0); err != nil || n != 0 {
		t.Fatalf("revoking f1 again: %d %v, want 0", n, err)
	}
	if n, err := s.RevokeRefreshTokens(ctx(), nil, b.ID, u.ID, t0); err != nil || n != 1 {
		t.Fatalf("revoking the user's tokens of app b: %d %v, want 1", n, err)
	}
	if n, err := s.RevokeRefreshTokens(ctx(), nil, 0, other.ID, t0); err != nil || n != 1 {
		t.Fatalf("revoking the other user's tokens in every app: %d %v, want 1", n, err)
	}
	if _, err := s.UseRefreshToken(ctx(), hash("r4"), a.ID, t0, unbound); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a revoked refresh token: %v, want a conflict", err)
	}
}

func testMessageViews(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "writer")
	const community = 77
	for i, m := range []storage.Message{
		{AppID: 1, FromUserID: u.ID, PeerID: -community, Text: "hello, community", RandomID: 1, CreatedAt: t0},
		{AppID: 1, FromCommunityID: community, PeerID: u.ID, Text: "hello, user", RandomID: 2, CreatedAt: t0.Add(time.Second)},
		{AppID: 1, FromUserID: u.ID, PeerID: -community, Text: "again", RandomID: 3, CreatedAt: t0.Add(2 * time.Second)},
		{AppID: 1, FromUserID: u.ID, PeerID: -(community + 1), Text: "to another", RandomID: 4, CreatedAt: t0.Add(3 * time.Second)},
	} {
		must(t, s.CreateMessage(ctx(), &m, func(storage.Message) *storage.CommunityEvent { return nil }))
		if m.ID == 0 {
			t.Fatalf("message %d has no id", i)
		}
	}
	sent, err := s.ListSentToCommunities(ctx(), u.ID, 10)
	must(t, err)
	if len(sent) != 3 || sent[0].Text != "to another" || sent[2].Text != "hello, community" {
		t.Fatalf("ListSentToCommunities = %+v, want the user's three, newest first", sent)
	}
	if one, _ := s.ListSentToCommunities(ctx(), u.ID, 1); len(one) != 1 {
		t.Fatalf("a limit of 1: %d", len(one))
	}
	both, err := s.ListCommunityMessages(ctx(), community, 10)
	must(t, err)
	if len(both) != 3 || both[0].Text != "again" || both[1].Text != "hello, user" || both[2].Text != "hello, community" {
		t.Fatalf("ListCommunityMessages = %+v, want both sides, newest first", both)
	}
}

func testMessagePermissions(t *testing.T, s storage.Storage) {
	const community, user = 88, 9
	if ok, err := s.MessagesAllowed(ctx(), community, user); err != nil || !ok {
		t.Fatalf("before any choice: %v %v, want allowed", ok, err)
	}
	event := func(typ string) *storage.CommunityEvent {
		return &storage.CommunityEvent{CommunityID: community, Type: typ, Object: "{}", CreatedAt: t0}
	}
	// The caller decides which changes are events (the platform: every
	// allow, and a deny that changes something); storage says what changed
	// and stores the event in the same write.
	for i, c := range []struct {
		allowed, changed, due bool
	}{{false, true, true}, {false, false, false}, {true, true, true}, {true, false, true}} {
		typ := "message_deny"
		if c.allowed {
			typ = "message_allow"
		}
		e := event(typ)
		var sawChange bool
		stored, err := s.SetMessagesAllowed(ctx(), community, user, c.allowed, t0, func(changed bool) *storage.CommunityEvent {
			sawChange = changed
			if c.due {
				return e
			}
			return nil
		})
		must(t, err)
		if stored != c.due || (stored && e.Seq == 0) || sawChange != c.changed {
			t.Fatalf("step %d (allowed %v): stored %v, seq %d, changed %v; want stored %v, changed %v", i, c.allowed, stored, e.Seq, sawChange, c.due, c.changed)
		}
		if ok, _ := s.MessagesAllowed(ctx(), community, user); ok != c.allowed {
			t.Fatalf("step %d: MessagesAllowed %v, want %v", i, ok, c.allowed)
		}
	}
}

func testCallbackServers(t *testing.T, s storage.Storage) {
	const community = 99
	srv := storage.CallbackServer{CommunityID: community, URL: "https://bot.example/vk", Title: "Bot", SecretSealed: []byte("sealed"),
		CreatorID: 1, Status: storage.CallbackUnconfirmed, APIVersion: "5.199"}
	must(t, s.CreateCallbackServer(ctx(), &srv, t0))
	if srv.ID == 0 {
		t.Fatal("CreateCallbackServer did not set ID")
	}
	list, err := s.CallbackServers(ctx(), community)
	must(t, err)
	if len(list) != 1 || list[0].URL != srv.URL || list[0].Status != storage.CallbackUnconfirmed || len(list[0].Events) != 0 {
		t.Fatalf("CallbackServers = %+v", list)
	}
	// Its confirmation is queued and due at once; one claim at a time.
	due, err := s.NextDeliveries(ctx(), t0, t0.Add(30*time.Second), 10)
	must(t, err)
	if len(due) != 1 || due[0].Type != "confirmation" || due[0].ServerID != srv.ID || due[0].Status != storage.DeliveryPending {
		t.Fatalf("the confirmation due: %+v", due)
	}
	if again, _ := s.NextDeliveries(ctx(), t0, t0.Add(30*time.Second), 10); len(again) != 0 {
		t.Fatalf("a claimed delivery claimed again: %+v", again)
	}
	d := due[0]
	d.Status, d.Attempts, d.UpdatedAt = storage.CallbackOK, 1, t0
	must(t, s.FinishDelivery(ctx(), d))
	if list, _ := s.CallbackServers(ctx(), community); list[0].Status != storage.CallbackOK {
		t.Fatalf("after a delivered confirmation: %s, want ok", list[0].Status)
	}
	updated, err := s.UpdateCallbackServer(ctx(), community, srv.ID, func(c *storage.CallbackServer) error {
		c.Events, c.APIVersion = []string{"message_new"}, "5.131"
		return nil
	})
	must(t, err)
	if len(updated.Events) != 1 || updated.APIVersion != "5.131" {
		t.Fatalf("UpdateCallbackServer = %+v", updated)
	}
	_, err = s.UpdateCallbackServer(ctx(), community+1, srv.ID, func(*storage.CallbackServer) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	// An event the server takes is queued with it; a failed attempt comes
	// due again at its NextAt.
	e := storage.CommunityEvent{CommunityID: community, Type: "message_new", Object: "{}", CreatedAt: t0.Add(time.Minute)}
	must(t, addEvent(s, &e))
	due, err = s.NextDeliveries(ctx(), t0.Add(time.Minute), t0.Add(2*time.Minute), 10)
	must(t, err)
	if len(due) != 1 || due[0].Type != "message_new" || due[0].Seq != e.Seq {
		t.Fatalf("the event due: %+v", due)
	}
	d = due[0]
	d.Attempts, d.NextAt, d.LastError, d.UpdatedAt = 1, t0.Add(time.Minute+5*time.Second), "answered 500", t0.Add(time.Minute)
	must(t, s.FinishDelivery(ctx(), d))
	if early, _ := s.NextDeliveries(ctx(), t0.Add(time.Minute+4*time.Second), t0.Add(time.Hour), 10); len(early) != 0 {
		t.Fatalf("a retry before it is due: %+v", early)
	}
	retry, err := s.NextDeliveries(ctx(), t0.Add(time.Minute+5*time.Second), t0.Add(time.Hour), 10)
	must(t, err)
	if len(retry) != 1 || retry[0].Attempts != 1 || retry[0].LastError != "answered 500" {
		t.Fatalf("the retry when due: %+v", retry)
	}
	latest, err := s.Deliveries(ctx(), community, 10)
	must(t, err)
	if len(latest) != 2 || latest[0].Type != "message_new" || latest[1].Type != "confirmation" {
		t.Fatalf("Deliveries = %+v, want the event then the confirmation", latest)
	}
	must(t, s.DeleteCallbackServer(ctx(), community, srv.ID))
	if list, _ := s.CallbackServers(ctx(), community); len(list) != 0 {
		t.Fatalf("after DeleteCallbackServer: %+v", list)
	}
	if latest, _ := s.Deliveries(ctx(), community, 10); len(latest) != 0 {
		t.Fatalf("a deleted server's deliveries: %+v", latest)
	}
}

func testRevokeGrant(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "granted")
	a := newApp(t, s, u.ID)
	family, other := hash("a grant's code"), hash("another grant's code")
	for i, f := range []token.Hash{family, family, other} {
		tok := storage.Token{Hash: hash(fmt.Sprint("grant token ", i)), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowCode, CodeHash: &f}
		must(t, s.CreateToken(ctx(), tok))
		must(t, s.CreateRefreshToken(ctx(), storage.RefreshToken{Hash: hash(fmt.Sprint("grant refresh ", i)), Family: f, AppID: a.ID, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	seq, err := s.LastRevocation(ctx())
	must(t, err)
	revoked, err := s.RevokeGrant(ctx(), family, storage.RevokedRefreshReuse, t0)
	must(t, err)
	if len(revoked) != 2 {
		t.Fatalf("RevokeGrant revoked %d access tokens, want the grant's 2", len(revoked))
	}
	if logged, _, err := s.RevocationsAfter(ctx(), seq, 100); err != nil || len(logged) != 2 {
		t.Fatalf("the revocation log after RevokeGrant: %d entries (%v), want 2: other nodes learn of them from it", len(logged), err)
	}
	if tok, _ := s.GetToken(ctx(), hash("grant token 2")); !tok.RevokedAt.IsZero() {
		t.Fatal("another grant's token was revoked")
	}
	if tok, _ := s.GetToken(ctx(), hash("grant token 0")); tok.RevokeReason != storage.RevokedRefreshReuse {
		t.Fatalf("the revoked token's reason: %q", tok.RevokeReason)
	}
	if _, err := s.UseRefreshToken(ctx(), hash("grant refresh 0"), a.ID, t0, unbound); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a refresh token of the revoked grant: %v, want a conflict", err)
	}
	// Nothing is stored into the revoked grant afterwards; the other grant
	// goes on.
	wantErr(t, s.CreateToken(ctx(), storage.Token{Hash: hash("late access"), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowRefresh, CodeHash: &family}), storage.ErrGrantRevoked)
	wantErr(t, s.CreateRefreshToken(ctx(), storage.RefreshToken{Hash: hash("late refresh"), Family: family, AppID: a.ID, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}), storage.ErrGrantRevoked)
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("other grant, later"), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowRefresh, CodeHash: &other}))
	if again, err := s.RevokeGrant(ctx(), family, storage.RevokedRefreshReuse, t0); err != nil || len(again) != 0 {
		t.Fatalf("revoking the grant again: %d %v, want nothing more", len(again), err)
	}
}

func testPingAndClose(t *testing.T, s storage.Storage) {
	must(t, s.Ping(ctx()))
	must(t, s.Close())
}
