package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// RunSessions is the suite of storage.Sessions: browser sessions recorded.
func RunSessions(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"sessions: created, read with their user, touched, raised, listed", testSessions},
		{"sessions: ended one by one, all others, by logout, password and disabling", testEndSessions},
		{"sessions: those ended long ago, or older than their lifetime, deleted with their apps", testDeleteOldSessions},
	})
}

// RunFactors is the suite of storage.Factors: second factors and recovery
// codes.
func RunFactors(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"factors: added, listed, found by credential, removed, reset", testFactors},
		{"factors: a time step is accepted once, however many try it at once", testFactorStepOnce},
		{"recovery codes: replaced, each used once", testRecoveryCodes},
		{"users: a second factor required", testRequireMFA},
	})
}

func newSession(t *testing.T, s storage.Storage, userID int64, name string, at time.Time) storage.Session {
	t.Helper()
	ss := storage.Session{Hash: hash(name), UserID: userID, SID: "sid-" + name, AuthTime: at, AMR: []string{"pwd"},
		Device: "Firefox", Address: "192.0.2.1", CreatedAt: at, LastSeenAt: at}
	must(t, s.CreateSession(ctx(), &ss))
	if ss.ID == 0 {
		t.Fatal("CreateSession set no id")
	}
	return ss
}

func testSessions(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	a := newSession(t, s, u.ID, "a", t0)
	b := newSession(t, s, u.ID, "b", t0.Add(time.Minute))
	got, user, err := s.SessionUser(ctx(), a.Hash)
	must(t, err)
	if got.ID != a.ID || got.SID != "sid-a" || got.UserID != u.ID || !got.AuthTime.Equal(t0) || !slices.Equal(got.AMR, []string{"pwd"}) ||
		got.Device != "Firefox" || got.Address != "192.0.2.1" || !got.LastSeenAt.Equal(t0) || !got.EndedAt.IsZero() {
		t.Fatalf("SessionUser = %+v, want %+v", got, a)
	}
	if user != u {
		t.Fatalf("SessionUser's user = %+v, want %+v", user, u)
	}
	_, _, err = s.SessionUser(ctx(), hash("nope"))
	wantErr(t, err, storage.ErrNotFound)
	must(t, s.TouchSession(ctx(), a.ID, t0.Add(time.Hour), "198.51.100.7"))
	must(t, s.RaiseSession(ctx(), a.ID, t0.Add(2*time.Hour), []string{"pwd", "otp", "mfa"}))
	got, _, err = s.SessionUser(ctx(), a.Hash)
	must(t, err)
	if !got.LastSeenAt.Equal(t0.Add(time.Hour)) || got.Address != "198.51.100.7" || !got.AuthTime.Equal(t0.Add(2*time.Hour)) ||
		!slices.Equal(got.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("after a touch and a raise: %+v", got)
	}
	wantErr(t, s.TouchSession(ctx(), 999999, t0, ""), storage.ErrNotFound)
	wantErr(t, s.RaiseSession(ctx(), 999999, t0, nil), storage.ErrNotFound)
	list, err := s.ListSessions(ctx(), u.ID)
	must(t, err)
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("ListSessions = %+v, want a (last used) then b", list)
	}
	// The apps a session signed in to, each once.
	app := newApp(t, s, u.ID)
	must(t, s.AddSessionApp(ctx(), a.SID, app.ID))
	must(t, s.AddSessionApp(ctx(), a.SID, app.ID))
	if ids, err := s.SessionApps(ctx(), a.SID); err != nil || !slices.Equal(ids, []int64{app.ID}) {
		t.Fatalf("SessionApps = %v, %v", ids, err)
	}
	if ids, _ := s.SessionApps(ctx(), b.SID); len(ids) != 0 {
		t.Fatalf("another session's apps: %v", ids)
	}
	// A session id is unique, as is its secret.
	dup := storage.Session{Hash: a.Hash, UserID: u.ID, SID: "other", CreatedAt: t0}
	wantErr(t, s.CreateSession(ctx(), &dup), storage.ErrConflict)
}

func testEndSessions(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	other := newUser(t, s, "bob")
	a := newSession(t, s, u.ID, "a", t0)
	b := newSession(t, s, u.ID, "b", t0)
	c := newSession(t, s, u.ID, "c", t0)
	theirs := newSession(t, s, other.ID, "theirs", t0)
	wantErr(t, s.EndSession(ctx(), u.ID, theirs.ID, t0), storage.ErrNotFound) // not alice's
	must(t, s.EndSession(ctx(), u.ID, a.ID, t0.Add(time.Minute)))
	wantErr(t, s.EndSession(ctx(), u.ID, a.ID, t0.Add(time.Minute)), storage.ErrNotFound) // already ended
	wantErr(t, s.RaiseSession(ctx(), a.ID, t0, nil), storage.ErrNotFound)
	if got, _, _ := s.SessionUser(ctx(), a.Hash); !got.EndedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ended session = %+v", got)
	}
	n, err := s.EndOtherSessions(ctx(), u.ID, b.ID, t0.Add(2*time.Minute))
	must(t, err)
	if n != 1 {
		t.Fatalf("EndOtherSessions ended %d, want 1 (c)", n)
	}
	list, _ := s.ListSessions(ctx(), u.ID)
	if len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("left: %+v, want b", list)
	}
	if list, _ := s.ListSessions(ctx(), other.ID); len(list) != 1 {
		t.Fatalf("bob's sessions: %+v, want his one untouched", list)
	}
	_ = c
	for i, end := range []func(at time.Time) error{
		func(at time.Time) error { return s.EndSessions(ctx(), u.ID, at) },
		func(at time.Time) error { return s.SetPassword(ctx(), u.ID, "$argon2id$new", at) },
		func(at time.Time) error { return s.DisableUser(ctx(), u.ID, at) },
	} {
		ss := newSession(t, s, u.ID, fmt.Sprint("again ", i), t0.Add(time.Hour))
		must(t, end(t0.Add(2*time.Hour)))
		if got, _, _ := s.SessionUser(ctx(), ss.Hash); !got.EndedAt.Equal(t0.Add(2 * time.Hour)) {
			t.Fatalf("case %d: the session outlived the end of all: %+v", i, got)
		}
	}
	if list, _ := s.ListSessions(ctx(), u.ID); len(list) != 0 {
		t.Fatalf("after ending all: %+v", list)
	}
}

func testFactors(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	other := newUser(t, s, "bob")
	key := storage.Factor{UserID: u.ID, Kind: storage.FactorPasskey, Name: "Laptop", CredentialID: []byte{1, 2, 3}, Data: []byte(`{"k":1}`), CreatedAt: t0}
	must(t, s.AddFactor(ctx(), &key))
	app := storage.Factor{UserID: u.ID, Kind: storage.FactorTOTP, Name: "Phone", CredentialID: []byte("totp:1"), Data: []byte("sealed"), Step: 100, CreatedAt: t0}
	must(t, s.AddFactor(ctx(), &app))
	again := storage.Factor{UserID: other.ID, Kind: storage.FactorPasskey, CredentialID: []byte{1, 2, 3}, Data: []byte("x"), CreatedAt: t0}
	wantErr(t, s.AddFactor(ctx(), &again), storage.ErrConflict)
	list, err := s.ListFactors(ctx(), u.ID)
	must(t, err)
	if len(list) != 2 || list[0].ID != key.ID || list[0].Name != "Laptop" || string(list[0].Data) != `{"k":1}` || list[1].Kind != storage.FactorTOTP || list[1].Step != 100 {
		t.Fatalf("ListFactors = %+v", list)
	}
	got, err := s.FactorByCredential(ctx(), []byte{1, 2, 3})
	must(t, err)
	if got.ID != key.ID || got.UserID != u.ID {
		t.Fatalf("FactorByCredential = %+v", got)
	}
	_, err = s.FactorByCredential(ctx(), []byte{9})
	wantErr(t, err, storage.ErrNotFound)
	ok, err := s.UseFactor(ctx(), key.ID, 0, []byte(`{"k":2}`), t0.Add(time.Minute))
	must(t, err)
	if got, _ := s.FactorByCredential(ctx(), key.CredentialID); !ok || string(got.Data) != `{"k":2}` || !got.LastUsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after UseFactor with data: %v %+v", ok, got)
	}
	ok, err = s.UseFactor(ctx(), key.ID, 0, nil, t0.Add(2*time.Minute))
	must(t, err)
	if got, _ := s.FactorByCredential(ctx(), key.CredentialID); !ok || string(got.Data) != `{"k":2}` {
		t.Fatalf("UseFactor without data changed it: %+v", got)
	}
	_, err = s.RemoveFactor(ctx(), other.ID, key.ID)
	wantErr(t, err, storage.ErrNotFound) // not bob's
	removed, err := s.RemoveFactor(ctx(), u.ID, key.ID)
	must(t, err)
	if removed.ID != key.ID || removed.Kind != storage.FactorPasskey {
		t.Fatalf("RemoveFactor = %+v", removed)
	}
	must(t, s.SetRecoveryCodes(ctx(), u.ID, []token.Hash{hash("r1")}))
	gone, err := s.ResetFactors(ctx(), u.ID)
	must(t, err)
	if len(gone) != 1 || gone[0].ID != app.ID {
		t.Fatalf("ResetFactors = %+v, want the authenticator app", gone)
	}
	if list, _ := s.ListFactors(ctx(), u.ID); len(list) != 0 {
		t.Fatalf("after a reset: %+v", list)
	}
	if n, _ := s.RecoveryCodesLeft(ctx(), u.ID); n != 0 {
		t.Fatalf("recovery codes after a reset: %d", n)
	}
}

func testFactorStepOnce(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	f := storage.Factor{UserID: u.ID, Kind: storage.FactorTOTP, CredentialID: []byte("totp"), Data: []byte("sealed"), Step: 10, CreatedAt: t0}
	must(t, s.AddFactor(ctx(), &f))
	if ok, err := s.UseFactor(ctx(), f.ID, 10, nil, t0); err != nil || ok {
		t.Fatalf("the enrolment's step again: %v %v, want refused", ok, err)
	}
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range n {
		wg.Go(func() {
			ok, err := s.UseFactor(ctx(), f.ID, 11, nil, t0)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				accepted++
			}
		})
	}
	wg.Wait()
	if accepted != 1 {
		t.Fatalf("step 11 accepted %d times of %d, want once", accepted, n)
	}
	if ok, _ := s.UseFactor(ctx(), f.ID, 10, nil, t0); ok {
		t.Fatal("an earlier step accepted after a later one")
	}
	if ok, _ := s.UseFactor(ctx(), f.ID, 12, nil, t0); !ok {
		t.Fatal("the next step refused")
	}
}

func testRecoveryCodes(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	other := newUser(t, s, "bob")
	must(t, s.SetRecoveryCodes(ctx(), u.ID, []token.Hash{hash("r1"), hash("r2")}))
	if n, err := s.RecoveryCodesLeft(ctx(), u.ID); err != nil || n != 2 {
		t.Fatalf("RecoveryCodesLeft = %d, %v", n, err)
	}
	if ok, _ := s.UseRecoveryCode(ctx(), other.ID, hash("r1"), t0); ok {
		t.Fatal("alice's code used by bob")
	}
	if ok, err := s.UseRecoveryCode(ctx(), u.ID, hash("r1"), t0); err != nil || !ok {
		t.Fatalf("UseRecoveryCode = %v, %v", ok, err)
	}
	if ok, _ := s.UseRecoveryCode(ctx(), u.ID, hash("r1"), t0); ok {
		t.Fatal("a recovery code used twice")
	}
	if n, _ := s.RecoveryCodesLeft(ctx(), u.ID); n != 1 {
		t.Fatalf("left %d, want 1", n)
	}
	must(t, s.SetRecoveryCodes(ctx(), u.ID, []token.Hash{hash("r3")}))
	if ok, _ := s.UseRecoveryCode(ctx(), u.ID, hash("r2"), t0); ok {
		t.Fatal("a replaced code still works")
	}
	if ok, _ := s.UseRecoveryCode(ctx(), u.ID, hash("r3"), t0); !ok {
		t.Fatal("a new code refused")
	}
}

func testRequireMFA(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	must(t, s.SetRequireMFA(ctx(), u.ID, true))
	if got, _ := s.GetUser(ctx(), u.ID); !got.RequireMFA {
		t.Fatal("RequireMFA not kept")
	}
	must(t, s.SetRequireMFA(ctx(), u.ID, false))
	if got, _ := s.GetUser(ctx(), u.ID); got.RequireMFA {
		t.Fatal("RequireMFA not cleared")
	}
	wantErr(t, s.SetRequireMFA(ctx(), 999999, true), storage.ErrNotFound)
}

// RunUpstreams is the suite of storage.Upstreams: identity providers and
// the links of users to their people.
func RunUpstreams(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"upstreams: created, listed, found by name, removed with their links, the users kept", testUpstreams},
		{"user links: one user per subject, created with the user in one write", testUserLinks},
	})
}

func testUpstreams(t *testing.T, s storage.Storage) {
	up := storage.Upstream{Name: "corp", Kind: storage.UpstreamOIDC, Config: []byte(`{"issuer":"https://id.example"}`), SecretSealed: []byte("sealed"), CreatedAt: t0}
	must(t, s.CreateUpstream(ctx(), &up))
	dup := storage.Upstream{Name: "corp", Kind: storage.UpstreamLDAP, Config: []byte(`{}`), SecretSealed: []byte("x"), CreatedAt: t0}
	wantErr(t, s.CreateUpstream(ctx(), &dup), storage.ErrConflict)
	dir := storage.Upstream{Name: "dir", Kind: storage.UpstreamLDAP, Config: []byte(`{"url":"ldap://x"}`), SecretSealed: []byte("y"), CreatedAt: t0}
	must(t, s.CreateUpstream(ctx(), &dir))
	list, err := s.ListUpstreams(ctx())
	must(t, err)
	if len(list) != 2 || list[0].Name != "corp" || list[1].Kind != storage.UpstreamLDAP || string(list[0].Config) != `{"issuer":"https://id.example"}` {
		t.Fatalf("ListUpstreams = %+v", list)
	}
	got, err := s.UpstreamByName(ctx(), "dir")
	must(t, err)
	if got.ID != dir.ID || string(got.SecretSealed) != "y" {
		t.Fatalf("UpstreamByName = %+v", got)
	}
	u := newUser(t, s, "alice")
	must(t, s.LinkUser(ctx(), storage.UserLink{UpstreamID: up.ID, Subject: "sub-1", UserID: u.ID, CreatedAt: t0}))
	must(t, s.DeleteUpstream(ctx(), "corp"))
	wantErr(t, s.DeleteUpstream(ctx(), "corp"), storage.ErrNotFound)
	_, err = s.UpstreamByName(ctx(), "corp")
	wantErr(t, err, storage.ErrNotFound)
	if links, _ := s.UserLinks(ctx(), u.ID); len(links) != 0 {
		t.Fatalf("links outlived their upstream: %+v", links)
	}
	if _, err := s.GetUser(ctx(), u.ID); err != nil {
		t.Fatalf("the linked user went with the upstream: %v", err)
	}
}

func testUserLinks(t *testing.T, s storage.Storage) {
	up := storage.Upstream{Name: "corp", Kind: storage.UpstreamOIDC, Config: []byte(`{}`), SecretSealed: []byte("s"), CreatedAt: t0}
	must(t, s.CreateUpstream(ctx(), &up))
	a := newUser(t, s, "alice")
	b := newUser(t, s, "bob")
	must(t, s.LinkUser(ctx(), storage.UserLink{UpstreamID: up.ID, Subject: "s-a", UserID: a.ID, CreatedAt: t0}))
	wantErr(t, s.LinkUser(ctx(), storage.UserLink{UpstreamID: up.ID, Subject: "s-a", UserID: b.ID, CreatedAt: t0}), storage.ErrConflict)
	got, err := s.LinkedUser(ctx(), up.ID, "s-a")
	must(t, err)
	if got != a {
		t.Fatalf("LinkedUser = %+v, want %+v", got, a)
	}
	_, err = s.LinkedUser(ctx(), up.ID, "nobody")
	wantErr(t, err, storage.ErrNotFound)
	links, err := s.UserLinks(ctx(), a.ID)
	must(t, err)
	if len(links) != 1 || links[0].Subject != "s-a" || links[0].UpstreamID != up.ID {
		t.Fatalf("UserLinks = %+v", links)
	}
	wantErr(t, s.Unlink(ctx(), b.ID, up.ID), storage.ErrNotFound)
	must(t, s.Unlink(ctx(), a.ID, up.ID))
	nu := storage.User{Login: "carol", FirstName: "Carol", CreatedAt: t0}
	must(t, s.CreateLinkedUser(ctx(), &nu, storage.UserLink{UpstreamID: up.ID, Subject: "s-c", CreatedAt: t0}))
	if got, err := s.LinkedUser(ctx(), up.ID, "s-c"); err != nil || got.ID != nu.ID || got.Login != "carol" {
		t.Fatalf("the user created linked: %+v %v", got, err)
	}
	// A taken login stores neither the user nor the link.
	taken := storage.User{Login: "alice", CreatedAt: t0}
	wantErr(t, s.CreateLinkedUser(ctx(), &taken, storage.UserLink{UpstreamID: up.ID, Subject: "s-d", CreatedAt: t0}), storage.ErrConflict)
	_, err = s.LinkedUser(ctx(), up.ID, "s-d")
	wantErr(t, err, storage.ErrNotFound)
}

func testDeleteOldSessions(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	app := newApp(t, s, u.ID)
	now := t0.Add(storage.SessionLifetime + time.Hour)
	ended := newSession(t, s, u.ID, "ended", now.Add(-3*time.Hour))
	must(t, s.EndSession(ctx(), u.ID, ended.ID, now.Add(-3*time.Hour)))
	old := newSession(t, s, u.ID, "old", t0)
	live := newSession(t, s, u.ID, "live", now.Add(-time.Hour))
	for _, ss := range []storage.Session{ended, old, live} {
		must(t, s.AddSessionApp(ctx(), ss.SID, app.ID))
	}
	if _, _, err := s.DeleteExpired(ctx(), now, now.Add(-2*time.Hour), now.Add(-2*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	for _, ss := range []storage.Session{ended, old} {
		if _, _, err := s.SessionUser(ctx(), ss.Hash); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session %s kept: %v", ss.SID, err)
		}
		if ids, _ := s.SessionApps(ctx(), ss.SID); len(ids) != 0 {
			t.Errorf("session %s's apps kept", ss.SID)
		}
	}
	if _, _, err := s.SessionUser(ctx(), live.Hash); err != nil {
		t.Errorf("the live session was deleted: %v", err)
	}
	if ids, _ := s.SessionApps(ctx(), live.SID); len(ids) != 1 {
		t.Error("the live session's apps were deleted")
	}
}
