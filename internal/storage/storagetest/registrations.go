package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// RunRegistrations is the suite of storage.Registrations: apps registered
// by their clients and the initial access tokens of registration.
func RunRegistrations(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"registrations: register, get, update, delete with the app", testRegistrations},
		{"registrations: an initial access token is spent, expires, is revoked; a refusal stores nothing", testRegistrationTokens},
		{"registrations: the last use of an initial access token goes to one of many at once", testConcurrentRegistrationTokenUses},
		{"registrations: those that issued no token since the cutoff expire, with their tokens", testExpireRegistrations},
		{"registrations: user 0, who owns them, is found by no lookup", testNobodyIsNotAUser},
		{"client documents: created once per URL, refreshed, gone with their app", testClientDocuments},
	})
}

func registered(t *testing.T, s storage.Storage, name string, initial token.Hash, now time.Time) (storage.App, storage.Registration, error) {
	t.Helper()
	a := storage.App{Title: name, Type: storage.Standalone, RedirectURIs: []string{"http://127.0.0.1/cb"},
		Secret:             storage.ClientSecret{Hash: hash("secret of " + name), Sealed: []byte{1}, CreatedAt: now},
		ServiceTokenSealed: []byte("sealed"), CreatedAt: now}
	svc := storage.Token{Hash: hash("service of " + name), Kind: token.Service, IssuedAt: now, Flow: storage.FlowServiceToken}
	r := storage.Registration{AccessHash: hash("access of " + name), Metadata: []byte(`{"client_name":"` + name + `"}`), Address: "203.0.113.9", CreatedAt: now}
	err := s.Register(ctx(), &a, svc, &r, initial, now)
	return a, r, err
}

func testRegistrations(t *testing.T, s storage.Storage) {
	a, r, err := registered(t, s, "agent", token.Hash{}, t0)
	must(t, err)
	if a.ID == 0 || r.AppID != a.ID {
		t.Fatalf("Register set ids %d %d", a.ID, r.AppID)
	}
	got, err := s.GetRegistration(ctx(), a.ID)
	must(t, err)
	if got.AccessHash != r.AccessHash || string(got.Metadata) != string(r.Metadata) || got.Address != "203.0.113.9" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetRegistration = %+v, want %+v", got, r)
	}
	if app, err := s.GetApp(ctx(), a.ID); err != nil || app.OwnerID != 0 || app.Title != "agent" {
		t.Fatalf("the registered app: %+v %v", app, err)
	}
	if list, err := s.ListApps(ctx(), storage.AppFilter{Registered: true}); err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("ListApps(registered) = %v %v", list, err)
	}
	app, reg, err := s.UpdateRegistration(ctx(), a.ID, func(app *storage.App, r *storage.Registration) error {
		app.Title, r.Metadata = "agent 2", []byte(`{"client_name":"agent 2"}`)
		return nil
	})
	must(t, err)
	if app.Title != "agent 2" || string(reg.Metadata) != `{"client_name":"agent 2"}` {
		t.Fatalf("UpdateRegistration = %+v %+v", app, reg)
	}
	if got, _ := s.GetRegistration(ctx(), a.ID); string(got.Metadata) != `{"client_name":"agent 2"}` {
		t.Fatalf("the update was not stored: %s", got.Metadata)
	}
	_, _, err = s.UpdateRegistration(ctx(), a.ID+100, func(*storage.App, *storage.Registration) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.DeleteApp(ctx(), a.ID)
	must(t, err)
	_, err = s.GetRegistration(ctx(), a.ID)
	wantErr(t, err, storage.ErrNotFound)
}

func testRegistrationTokens(t *testing.T, s storage.Storage) {
	once := storage.RegistrationToken{Name: "once", Hash: hash("once"), MaxUses: 1, CreatedAt: t0}
	expiring := storage.RegistrationToken{Name: "expiring", Hash: hash("expiring"), ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	must(t, s.CreateRegistrationToken(ctx(), &once))
	must(t, s.CreateRegistrationToken(ctx(), &expiring))
	if once.ID == 0 || expiring.ID == once.ID {
		t.Fatalf("ids %d %d", once.ID, expiring.ID)
	}
	_, _, err := registered(t, s, "first", once.Hash, t0)
	must(t, err)
	_, _, err = registered(t, s, "second", once.Hash, t0)
	wantErr(t, err, storage.ErrNotFound)
	_, _, err = registered(t, s, "late", expiring.Hash, t0.Add(2*time.Hour))
	wantErr(t, err, storage.ErrNotFound)
	_, _, err = registered(t, s, "in time", expiring.Hash, t0.Add(time.Minute))
	must(t, err)
	must(t, s.RevokeRegistrationToken(ctx(), expiring.ID, t0.Add(2*time.Minute)))
	wantErr(t, s.RevokeRegistrationToken(ctx(), expiring.ID, t0.Add(3*time.Minute)), storage.ErrNotFound)
	_, _, err = registered(t, s, "revoked", expiring.Hash, t0.Add(3*time.Minute))
	wantErr(t, err, storage.ErrNotFound)
	_, _, err = registered(t, s, "made up", hash("made up"), t0)
	wantErr(t, err, storage.ErrNotFound)
	list, err := s.ListRegistrationTokens(ctx())
	must(t, err)
	if len(list) != 2 || list[0].Uses != 1 || list[1].Uses != 1 || list[1].RevokedAt.IsZero() || !list[1].ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("ListRegistrationTokens = %+v", list)
	}
	if apps, _ := s.ListApps(ctx(), storage.AppFilter{Registered: true}); len(apps) != 2 {
		t.Fatalf("%d registered apps, want the 2 accepted ones: refusals must store nothing", len(apps))
	}
}

func testConcurrentRegistrationTokenUses(t *testing.T, s storage.Storage) {
	tok := storage.RegistrationToken{Name: "three", Hash: hash("three"), MaxUses: 3, CreatedAt: t0}
	must(t, s.CreateRegistrationToken(ctx(), &tok))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 12 {
		wg.Go(func() {
			if _, _, err := registered(t, s, fmt.Sprint("racer ", i), tok.Hash, t0); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 3 {
		t.Fatalf("%d registrations with a token of 3 uses", ok)
	}
}

func testExpireRegistrations(t *testing.T, s storage.Storage) {
	idle, _, err := registered(t, s, "idle", token.Hash{}, t0)
	must(t, err)
	used, _, err := registered(t, s, "used", token.Hash{}, t0)
	must(t, err)
	young, _, err := registered(t, s, "young", token.Hash{}, t0.Add(20*24*time.Hour))
	must(t, err)
	owner := newUser(t, s, "owner")
	plain := newApp(t, s, owner.ID)
	docApp := storage.App{Title: "document", Type: storage.Standalone, Secret: storage.ClientSecret{Hash: hash("doc secret"), Sealed: []byte{1}, CreatedAt: t0},
		ServiceTokenSealed: []byte("s"), CreatedAt: t0}
	doc := storage.ClientDocument{URL: "https://idle.example/client.json", ExpiresAt: t0}
	must(t, s.CreateClientDocument(ctx(), &doc, &docApp, storage.Token{Hash: hash("doc svc"), Kind: token.Service, IssuedAt: t0, Flow: storage.FlowServiceToken}))
	live := storage.Token{Hash: hash("used's token"), Kind: token.User, AppID: used.ID, UserID: owner.ID, IssuedAt: t0.Add(25 * 24 * time.Hour), Flow: storage.FlowCode}
	must(t, s.CreateToken(ctx(), live))
	old := storage.Token{Hash: hash("idle's old token"), Kind: token.User, AppID: idle.ID, UserID: owner.ID, IssuedAt: t0, Flow: storage.FlowCode}
	must(t, s.CreateToken(ctx(), old))
	revoked, n, err := s.ExpireRegistrations(ctx(), t0.Add(10*24*time.Hour), 100)
	must(t, err)
	if n != 2 {
		t.Fatalf("%d expired, want the idle registration and the idle document's app", n)
	}
	if len(revoked) != 3 { // their service tokens and the idle one's old token
		t.Fatalf("revoked %d hashes, want 3", len(revoked))
	}
	_, err = s.GetClientDocument(ctx(), doc.URL)
	wantErr(t, err, storage.ErrNotFound)
	for _, id := range []int64{used.ID, young.ID, plain.ID} {
		if _, err := s.GetApp(ctx(), id); err != nil {
			t.Fatalf("app %d expired: %v", id, err)
		}
	}
	_, err = s.GetApp(ctx(), idle.ID)
	wantErr(t, err, storage.ErrNotFound)
}

func testNobodyIsNotAUser(t *testing.T, s storage.Storage) {
	_, err := s.GetUser(ctx(), 0)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetUserByLogin(ctx(), "")
	wantErr(t, err, storage.ErrNotFound)
	if users, err := s.ListUsers(ctx(), 0, 10); err != nil || len(users) != 0 {
		t.Fatalf("ListUsers = %v %v", users, err)
	}
}

func testClientDocuments(t *testing.T, s storage.Storage) {
	const u = "https://agent.example/client.json"
	_, err := s.GetClientDocument(ctx(), u)
	wantErr(t, err, storage.ErrNotFound)
	newDoc := func(title string) (storage.ClientDocument, storage.App, error) {
		a := storage.App{Title: title, Type: storage.Standalone, RedirectURIs: []string{"http://127.0.0.1/cb"},
			Secret: storage.ClientSecret{Hash: hash("secret " + title), Sealed: []byte{1}, CreatedAt: t0}, ServiceTokenSealed: []byte("s"), CreatedAt: t0}
		d := storage.ClientDocument{URL: u, ExpiresAt: t0.Add(time.Hour)}
		err := s.CreateClientDocument(ctx(), &d, &a, storage.Token{Hash: hash("svc " + title), Kind: token.Service, IssuedAt: t0, Flow: storage.FlowServiceToken})
		return d, a, err
	}
	d, a, err := newDoc("first")
	must(t, err)
	if d.AppID != a.ID || a.ID == 0 {
		t.Fatalf("CreateClientDocument ids %d %d", d.AppID, a.ID)
	}
	_, _, err = newDoc("second")
	wantErr(t, err, storage.ErrConflict)
	if apps, _ := s.ListApps(ctx(), storage.AppFilter{}); len(apps) != 1 {
		t.Fatalf("a conflicting document stored an app: %d apps", len(apps))
	}
	got, err := s.GetClientDocument(ctx(), u)
	must(t, err)
	if got.AppID != a.ID || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("GetClientDocument = %+v", got)
	}
	app, err := s.RefreshClientDocument(ctx(), u, t0.Add(2*time.Hour), func(a *storage.App) error {
		a.Title, a.RedirectURIs = "renamed", []string{"http://127.0.0.1/other"}
		return nil
	})
	must(t, err)
	if app.Title != "renamed" || len(app.RedirectURIs) != 1 || app.RedirectURIs[0] != "http://127.0.0.1/other" {
		t.Fatalf("RefreshClientDocument = %+v", app)
	}
	if got, _ := s.GetClientDocument(ctx(), u); !got.ExpiresAt.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("the refresh did not store the expiry: %+v", got)
	}
	_, err = s.RefreshClientDocument(ctx(), "https://unknown.example/c.json", t0, func(*storage.App) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.DeleteApp(ctx(), a.ID)
	must(t, err)
	_, err = s.GetClientDocument(ctx(), u)
	wantErr(t, err, storage.ErrNotFound)
}
