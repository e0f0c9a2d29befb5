package storagetest

import (
	"fmt"
	"testing"
	"time"

	"latchkey/internal/storage"
)

func testNotificationsAndEvents(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	for i, text := range []string{"first", "second"} {
		n := storage.Notification{AppID: a.ID, UserID: u.ID, Message: text, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		must(t, s.CreateNotification(ctx(), &n))
		if n.ID == 0 {
			t.Fatal("CreateNotification did not set ID")
		}
	}
	ns, err := s.ListNotifications(ctx(), u.ID)
	must(t, err)
	if len(ns) != 2 || ns[0].Message != "second" || !ns[0].ReadAt.IsZero() {
		t.Fatalf("ListNotifications = %+v, want newest first, unread", ns)
	}
	must(t, s.MarkNotificationsRead(ctx(), u.ID, t0.Add(time.Hour)))
	ns, _ = s.ListNotifications(ctx(), u.ID)
	if !ns[0].ReadAt.Equal(t0.Add(time.Hour)) || !ns[1].ReadAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("not marked read: %+v", ns)
	}
	wantErr(t, s.CreateNotification(ctx(), &storage.Notification{AppID: a.ID, UserID: 999999, Message: "x", CreatedAt: t0}), storage.ErrNotFound)

	e := storage.AppEvent{AppID: a.ID, UserID: u.ID, ActivityID: 2, Value: 15, CreatedAt: t0}
	must(t, s.CreateAppEvent(ctx(), &e))
	es, err := s.ListAppEvents(ctx(), a.ID)
	must(t, err)
	if len(es) != 1 || es[0] != e {
		t.Fatalf("ListAppEvents = %+v, want [%+v]", es, e)
	}
}

func testMessages(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	peer := newUser(t, s, "peer")
	m1 := storage.Message{AppID: 1, FromUserID: u.ID, PeerID: peer.ID, Text: "hi", RandomID: 42, CreatedAt: t0}
	must(t, s.CreateMessage(ctx(), &m1, nil))
	dup := storage.Message{AppID: 1, FromUserID: u.ID, PeerID: peer.ID, Text: "hi again", RandomID: 42, CreatedAt: t0.Add(time.Second)}
	must(t, s.CreateMessage(ctx(), &dup, nil))
	if !dup.Duplicate || m1.Duplicate {
		t.Fatalf("Duplicate: first %v, second %v; want false, true", m1.Duplicate, dup.Duplicate)
	}
	if dup.ID != m1.ID || dup.Text != "hi" {
		t.Fatalf("duplicate random_id gave message %d %q, want the first (%d)", dup.ID, dup.Text, m1.ID)
	}
	fromGroup := storage.Message{FromCommunityID: 9, PeerID: peer.ID, Text: "from a community", RandomID: 42, CreatedAt: t0}
	must(t, s.CreateMessage(ctx(), &fromGroup, nil))
	noRandom1 := storage.Message{FromUserID: u.ID, PeerID: peer.ID, Text: "a", CreatedAt: t0}
	noRandom2 := storage.Message{FromUserID: u.ID, PeerID: peer.ID, Text: "a", CreatedAt: t0}
	must(t, s.CreateMessage(ctx(), &noRandom1, nil))
	must(t, s.CreateMessage(ctx(), &noRandom2, nil))
	// random_id deduplicates within one app: another app's message from
	// the same sender with the same random_id is a message of its own.
	otherApp := storage.Message{AppID: 2, FromUserID: u.ID, PeerID: peer.ID, Text: "from another app", RandomID: 42, CreatedAt: t0}
	must(t, s.CreateMessage(ctx(), &otherApp, nil))
	if fromGroup.ID == m1.ID || noRandom1.ID == noRandom2.ID || otherApp.ID == m1.ID || otherApp.Text != "from another app" {
		t.Fatal("messages that are not duplicates were merged")
	}
	ms, err := s.ListMessages(ctx(), peer.ID)
	must(t, err)
	if len(ms) != 5 || ms[0].ID != otherApp.ID || !ms[0].ReadAt.IsZero() {
		t.Fatalf("ListMessages = %d messages, want 5 newest first, unread", len(ms))
	}
	must(t, s.MarkMessagesRead(ctx(), peer.ID, t0.Add(time.Hour)))
	ms, _ = s.ListMessages(ctx(), peer.ID)
	for _, m := range ms {
		if !m.ReadAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("message %d not marked read", m.ID)
		}
	}
	if mine, _ := s.ListMessages(ctx(), u.ID); len(mine) != 0 {
		t.Fatal("messages listed for the wrong peer")
	}
}

func testMessageEvent(t *testing.T, s storage.Storage) {
	u := &storage.User{Login: "eventful", PasswordHash: "h", CreatedAt: t0}
	must(t, s.CreateUser(ctx(), u))
	event := func(m storage.Message) *storage.CommunityEvent {
		return &storage.CommunityEvent{CommunityID: 42, Type: "message_new", Object: fmt.Sprintf(`{"id":%d}`, m.ID), CreatedAt: t0}
	}
	m := storage.Message{FromUserID: u.ID, PeerID: -42, Text: "hi", RandomID: 5, CreatedAt: t0}
	must(t, s.CreateMessage(ctx(), &m, event))
	again := storage.Message{FromUserID: u.ID, PeerID: -42, Text: "hi", RandomID: 5, CreatedAt: t0}
	must(t, s.CreateMessage(ctx(), &again, event))
	es, err := s.CommunityEvents(ctx(), 42, 1, 10)
	must(t, err)
	if len(es) != 1 || es[0].Object != fmt.Sprintf(`{"id":%d}`, m.ID) || !again.Duplicate || again.ID != m.ID {
		t.Fatalf("events %+v, duplicate %+v", es, again)
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
