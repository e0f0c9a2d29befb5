// Package storagetest is the conformance suite every storage backend runs:
// the same behaviours, the same errors, on SQLite and on PostgreSQL.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Run runs every suite of the conformance suite against the backend
// newStore opens (a fresh, empty store per case), one subtest per concern.
func Run(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	for _, suite := range []struct {
		name string
		run  func(*testing.T, func(*testing.T) storage.Storage)
	}{
		{"users", RunUsers},
		{"apps", RunApps},
		{"communities", RunCommunities},
		{"consents", RunConsents},
		{"grants", RunGrants},
		{"tokens", RunTokens},
		{"credentials", RunCredentials},
		{"messages", RunMessages},
		{"bots", RunBots},
		{"callbacks", RunCallbacks},
		{"audit", RunAudit},
		{"cluster", RunCluster},
		{"upkeep", RunUpkeep},
	} {
		t.Run(suite.name, func(t *testing.T) { suite.run(t, newStore) })
	}
}

// A case is one behaviour of a concern, run on a fresh store.
type testCase struct {
	name string
	fn   func(*testing.T, storage.Storage)
}

func runCases(t *testing.T, newStore func(t *testing.T) storage.Storage, cases []testCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// RunUsers is the suite of storage.Users: the people who sign in.
func RunUsers(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"users: create, get, by login, many", testUsers},
		{"users: a taken login is a conflict", testUserConflict},
		{"users: listed by id, password set, disabled", testUserAdmin},
		{"users: a disabled user's tokens and refresh tokens are not stored", testDisabledUserGetsNothing},
		{"users: tokens stored while the user is disabled are refused or revoked", testConcurrentDisable},
	})
}

// RunApps is the suite of storage.Apps: apps, their secrets and service tokens.
func RunApps(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"apps: create, get, update, list", testApps},
		{"apps: unknown owner is not found", testAppUnknownOwner},
		{"apps: delete removes tokens, codes, consents and returns live hashes", testDeleteApp},
		{"concurrent app updates: none lost", testConcurrentAppUpdates},
		{"service token replaced while read: always exactly one live", testConcurrentServiceTokens},
	})
}

// RunCommunities is the suite of storage.Communities: communities and their admins.
func RunCommunities(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"communities: admins added, listed, the last one kept", testCommunities},
	})
}

// RunConsents is the suite of storage.Consents: what users granted apps.
func RunConsents(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"consents: merge adds scopes, count, delete", testConsents},
		{"concurrent consent merges: no scope lost", testConcurrentConsents},
	})
}

// RunGrants is the suite of storage.Grants: codes, pushed requests, device codes, refresh tokens, whole grants.
func RunGrants(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"codes: used once, second use is a conflict", testCodes},
		{"concurrent code use: exactly one winner", testConcurrentCodeUse},
		{"pushed requests: the app's, spent once, until they expire", testPushedRequests},
		{"device codes: by user code, a taken user code, updated in one transaction", testDeviceCodes},
		{"refresh tokens: read with their holder, spent once and only by a use that names it", testRefreshHolder},
		{"refresh tokens: revoked by family, by app and user, by user", testRevokeRefreshTokens},
		{"grants: revoked in one write, and nothing stored into them afterwards", testRevokeGrant},
	})
}

// RunTokens is the suite of storage.Tokens: access tokens, their revocation log, DPoP proofs.
func RunTokens(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"tokens: create, get, list, revoke by filter", testTokens},
		{"tokens: an empty filter is refused", testEmptyFilter},
		{"tokens: what was exchanged from a token, at any depth", testDerivedTokens},
		{"tokens: created in bulk, all or none", testCreateTokens},
		{"tokens: without an app, and last use recorded", testAppLessTokenAndTouch},
		{"revocation log: every revocation appended, read in order, pruned", testRevocationLog},
		{"reusable tokens: live, same scope, sealed, not expiring too soon", testReusableToken},
		{"DPoP proofs: a second use is a replay", testProofs},
	})
}

// RunCredentials is the suite of storage.Credentials: signing keys and admin tokens.
func RunCredentials(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"signing keys: newest first, retired once", testSigningKeys},
		{"admin tokens: by hash, a taken name, deleted", testAdminTokens},
	})
}

// RunMessages is the suite of storage.Messages: messages, notifications, app events.
func RunMessages(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"notifications, app events", testNotificationsAndEvents},
		{"messages: random_id deduplicates per sender and app", testMessages},
		{"messages: a new message stores its event in the same write, a duplicate none", testMessageEvent},
		{"messages: a user's to communities, a community's both ways", testMessageViews},
	})
}

// RunBots is the suite of storage.Bots: community events, Long Poll settings, message permissions.
func RunBots(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"community events: numbered per community, never going back, listed from a number", testCommunityEvents},
		{"community events: concurrent writers get distinct numbers", testConcurrentCommunityEvents},
		{"long poll settings: default off, set, replaced", testLongPollSettings},
		{"message permissions: allowed until denied, the caller's event stored with the change", testMessagePermissions},
	})
}

// RunCallbacks is the suite of storage.Callbacks: Callback API servers and deliveries.
func RunCallbacks(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"callback servers: confirmation queued, claimed once, retried when due, deleted with their deliveries", testCallbackServers},
	})
}

// RunAudit is the suite of storage.Audit: the audit log.
func RunAudit(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"audit: added and listed newest first", testAudit},
	})
}

// RunCluster is the suite of storage.Cluster: heartbeats, throttles, exclusive jobs.
func RunCluster(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"throttles: attempts counted per window, refunded, reset, pruned", testThrottles},
		{"throttles: concurrent attempts never pass the limit", testConcurrentAttempts},
		{"nodes: heartbeats counted while fresh, forgotten after a minute", testHeartbeat},
		{"run exclusive: one runner at a time", testRunExclusive},
	})
}

// RunUpkeep is the suite of storage.Upkeep: concurrency of the writer, expiry, closing.
func RunUpkeep(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"concurrent writers do not lose or fail writes", testConcurrentWriters},
		{"concurrent writes that fail or are abandoned leave the others whole", testConcurrentFailingWrites},
		{"expired codes, expired and long-revoked tokens are deleted in batches, nothing else", testDeleteExpired},
		{"ping and close", testPingAndClose},
	})
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ctx() context.Context { return context.Background() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func newUser(t *testing.T, s storage.Storage, login string) storage.User {
	t.Helper()
	u := storage.User{Login: login, PasswordHash: "$argon2id$x", FirstName: "First " + login, LastName: "Last", Email: login + "@example.com", CreatedAt: t0}
	must(t, s.CreateUser(ctx(), &u))
	if u.ID == 0 {
		t.Fatal("CreateUser did not set ID")
	}
	return u
}

func newApp(t *testing.T, s storage.Storage, owner int64) storage.App {
	t.Helper()
	a := storage.App{
		OwnerID: owner, Title: "App", Type: storage.Web,
		RedirectURIs:       []string{"https://app.example/cb", "https://app.example/cb2"},
		Secret:             storage.ClientSecret{Hash: token.HashOf(fmt.Sprint("secret", owner, time.Now().UnixNano())), Sealed: []byte{1, 2, 3}, CreatedAt: t0},
		ServiceTokenSealed: []byte("sealed first service token"),
		CreatedAt:          t0,
	}
	svc := storage.Token{Hash: hash(fmt.Sprint("service", owner, time.Now().UnixNano())), Kind: token.Service, IssuedAt: t0, Flow: storage.FlowServiceToken}
	must(t, s.CreateApp(ctx(), &a, svc))
	if a.ID == 0 {
		t.Fatal("CreateApp did not set ID")
	}
	if got, err := s.GetToken(ctx(), svc.Hash); err != nil || got.AppID != a.ID {
		t.Fatalf("CreateApp's service token = %+v, %v; want it stored for app %d", got, err, a.ID)
	}
	return a
}

func hash(s string) token.Hash { return token.HashOf(s) }

func newToken(t *testing.T, s storage.Storage, name string, kind token.Kind, app, user, community int64) storage.Token {
	t.Helper()
	tok := storage.Token{Hash: hash(name), Kind: kind, AppID: app, UserID: user, CommunityID: community,
		Scope: scope.Friends | scope.Offline, IssuedAt: t0, IP: "203.0.113.7", Flow: storage.FlowImplicit}
	must(t, s.CreateToken(ctx(), tok))
	return tok
}

func testUsers(t *testing.T, s storage.Storage) {
	a := newUser(t, s, "alice")
	b := newUser(t, s, "bob")
	got, err := s.GetUser(ctx(), a.ID)
	must(t, err)
	if got != a {
		t.Fatalf("GetUser = %+v, want %+v", got, a)
	}
	got, err = s.GetUserByLogin(ctx(), "bob")
	must(t, err)
	if got != b {
		t.Fatalf("GetUserByLogin = %+v, want %+v", got, b)
	}
	_, err = s.GetUser(ctx(), 999999)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetUserByLogin(ctx(), "nobody")
	wantErr(t, err, storage.ErrNotFound)
	must(t, s.UpdateUserName(ctx(), b.ID, "Robert", "Tables"))
	if got, _ := s.GetUser(ctx(), b.ID); got.FirstName != "Robert" || got.LastName != "Tables" {
		t.Fatalf("after UpdateUserName: %+v", got)
	}
	b.FirstName, b.LastName = "Robert", "Tables"
	wantErr(t, s.UpdateUserName(ctx(), 999999, "x", "y"), storage.ErrNotFound)
	logout := t0.Add(1500 * time.Millisecond)
	must(t, s.EndSessions(ctx(), a.ID, logout))
	if got, _ := s.GetUser(ctx(), a.ID); !got.SessionsAfter.Equal(logout) {
		t.Fatalf("SessionsAfter = %v, want %v (to the millisecond)", got.SessionsAfter, logout)
	}
	a.SessionsAfter = logout
	wantErr(t, s.EndSessions(ctx(), 999999, logout), storage.ErrNotFound)
	many, err := s.GetUsers(ctx(), []int64{b.ID, 999999, a.ID})
	must(t, err)
	if len(many) != 2 || many[0].ID != b.ID || many[1].ID != a.ID {
		t.Fatalf("GetUsers = %+v, want bob then alice", many)
	}
	none, err := s.GetUsers(ctx(), nil)
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("GetUsers(nil) = %v", none)
	}
}

func testUserConflict(t *testing.T, s storage.Storage) {
	newUser(t, s, "alice")
	u := storage.User{Login: "alice", PasswordHash: "x", CreatedAt: t0}
	wantErr(t, s.CreateUser(ctx(), &u), storage.ErrConflict)
}

func testApps(t *testing.T, s storage.Storage) {
	owner := newUser(t, s, "owner")
	other := newUser(t, s, "other")
	a := newApp(t, s, owner.ID)
	got, err := s.GetApp(ctx(), a.ID)
	must(t, err)
	if got.Title != "App" || got.Type != storage.Web || !slices.Equal(got.RedirectURIs, a.RedirectURIs) ||
		got.Secret.Hash != a.Secret.Hash || string(got.Secret.Sealed) != string(a.Secret.Sealed) ||
		!got.Secret.CreatedAt.Equal(t0) || got.OldSecret != nil || got.ClientCredentials || got.OwnerID != owner.ID {
		t.Fatalf("GetApp = %+v, want %+v", got, a)
	}

	got, err = s.UpdateApp(ctx(), a.ID, func(got *storage.App) error {
		got.Title = "Renamed"
		got.RedirectURIs = []string{"https://new.example/cb"}
		got.OldSecret = &storage.ClientSecret{Hash: hash("old"), Sealed: []byte("o"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		got.ClientCredentials = true
		got.ServiceTokenSealed = []byte("sealed service token")
		got.IFrameURL = "https://app.example/frame"
		got.IFrameScope = scope.Friends | scope.Photos
		return nil
	})
	must(t, err)
	again, err := s.GetApp(ctx(), a.ID)
	must(t, err)
	if again.Title != "Renamed" || !slices.Equal(again.RedirectURIs, got.RedirectURIs) || !again.ClientCredentials ||
		again.OldSecret == nil || again.OldSecret.Hash != hash("old") || !again.OldSecret.ExpiresAt.Equal(t0.Add(time.Hour)) ||
		string(again.ServiceTokenSealed) != "sealed service token" || again.IFrameURL != got.IFrameURL || again.IFrameScope != got.IFrameScope {
		t.Fatalf("after UpdateApp: %+v", again)
	}
	if _, err := s.UpdateApp(ctx(), a.ID, func(a *storage.App) error { a.OldSecret = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetApp(ctx(), a.ID); g.OldSecret != nil {
		t.Fatal("UpdateApp did not clear OldSecret")
	}
	refused := errors.New("refused")
	if _, err := s.UpdateApp(ctx(), a.ID, func(a *storage.App) error { a.Title = "Not saved"; return refused }); err != refused {
		t.Fatalf("UpdateApp returned %v, want the updater's own error", err)
	}
	if g, _ := s.GetApp(ctx(), a.ID); g.Title != "Renamed" {
		t.Fatalf("a refused update was written: title %q", g.Title)
	}
	_, err = s.UpdateApp(ctx(), 999999, func(*storage.App) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetApp(ctx(), 999999)
	wantErr(t, err, storage.ErrNotFound)

	b := newApp(t, s, owner.ID)
	newApp(t, s, other.ID)
	list, err := s.ListApps(ctx(), storage.AppFilter{OwnerID: owner.ID})
	must(t, err)
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("ListApps = %d apps, want [%d %d]", len(list), a.ID, b.ID)
	}
	all, err := s.ListApps(ctx(), storage.AppFilter{})
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("every app: %d, want 3", len(all))
	}
	page, err := s.ListApps(ctx(), storage.AppFilter{After: all[0].ID, Limit: 1})
	must(t, err)
	if len(page) != 1 || page[0].ID != all[1].ID {
		t.Fatalf("a page of one after %d: %+v", all[0].ID, page)
	}
	if web, err := s.ListApps(ctx(), storage.AppFilter{Type: storage.Web}); err != nil || len(web) != 3 {
		t.Fatalf("the web apps: %d (%v), want 3", len(web), err)
	}
	if none, err := s.ListApps(ctx(), storage.AppFilter{Type: storage.IFrame, OwnerID: owner.ID}); err != nil || len(none) != 0 {
		t.Fatalf("the owner's iframe apps: %d (%v), want none", len(none), err)
	}
}

func testAppUnknownOwner(t *testing.T, s storage.Storage) {
	a := storage.App{OwnerID: 424242, Title: "x", Type: storage.Web, Secret: storage.ClientSecret{Hash: hash("s"), Sealed: []byte{1}}, CreatedAt: t0}
	svc := storage.Token{Hash: hash("orphan service token"), Kind: token.Service, IssuedAt: t0, Flow: storage.FlowServiceToken}
	wantErr(t, s.CreateApp(ctx(), &a, svc), storage.ErrNotFound)
	if _, err := s.GetToken(ctx(), svc.Hash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the service token of an app that was not created exists: %v", err)
	}
}

func testDeleteApp(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	keep := newApp(t, s, u.ID)
	live := newToken(t, s, "live", token.User, a.ID, u.ID, 0)
	dead := newToken(t, s, "dead", token.User, a.ID, u.ID, 0)
	other := newToken(t, s, "other", token.User, keep.ID, u.ID, 0)
	_, err := s.RevokeTokens(ctx(), storage.TokenFilter{Hash: &dead.Hash}, storage.RevokedByApp, t0)
	must(t, err)
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: a.ID, Scope: scope.Friends, CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.CreateCode(ctx(), storage.Code{Hash: hash("code"), AppID: a.ID, UserID: u.ID, RedirectURI: "x", IssuedAt: t0, ExpiresAt: t0.Add(time.Minute)}))

	hashes, err := s.DeleteApp(ctx(), a.ID)
	must(t, err)
	if len(hashes) != 2 || !slices.Contains(hashes, live.Hash) || slices.Contains(hashes, dead.Hash) {
		t.Fatalf("DeleteApp returned %d hashes, want the live user token and the service token", len(hashes))
	}
	_, err = s.GetApp(ctx(), a.ID)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetToken(ctx(), live.Hash)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetConsent(ctx(), u.ID, a.ID)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.UseCode(ctx(), hash("code"), t0)
	wantErr(t, err, storage.ErrNotFound)
	if _, err := s.GetToken(ctx(), other.Hash); err != nil {
		t.Fatalf("another app's token was deleted: %v", err)
	}
	_, err = s.DeleteApp(ctx(), a.ID)
	wantErr(t, err, storage.ErrNotFound)
}

func testCommunities(t *testing.T, s storage.Storage) {
	owner := newUser(t, s, "owner")
	second := newUser(t, s, "second")
	c := storage.Community{Name: "Cats", CreatedAt: t0}
	must(t, s.CreateCommunity(ctx(), &c, owner.ID))
	if c.ID == 0 {
		t.Fatal("CreateCommunity did not set ID")
	}
	got, err := s.GetCommunity(ctx(), c.ID)
	must(t, err)
	if got != c {
		t.Fatalf("GetCommunity = %+v, want %+v", got, c)
	}
	_, err = s.GetCommunity(ctx(), 999999)
	wantErr(t, err, storage.ErrNotFound)
	bad := storage.Community{Name: "Orphan", CreatedAt: t0}
	wantErr(t, s.CreateCommunity(ctx(), &bad, 999999), storage.ErrNotFound)

	isAdmin := func(u int64) bool {
		ok, err := s.IsCommunityAdmin(ctx(), c.ID, u)
		must(t, err)
		return ok
	}
	if !isAdmin(owner.ID) || isAdmin(second.ID) {
		t.Fatal("owner must be the first and only admin")
	}
	must(t, s.AddCommunityAdmin(ctx(), c.ID, second.ID, t0.Add(time.Second)))
	must(t, s.AddCommunityAdmin(ctx(), c.ID, second.ID, t0.Add(time.Second))) // idempotent
	wantErr(t, s.AddCommunityAdmin(ctx(), 999999, second.ID, t0), storage.ErrNotFound)
	admins, err := s.ListCommunityAdmins(ctx(), c.ID)
	must(t, err)
	if len(admins) != 2 || admins[0].ID != owner.ID || admins[1].ID != second.ID {
		t.Fatalf("ListCommunityAdmins = %+v", admins)
	}
	mine, err := s.ListAdminCommunities(ctx(), second.ID)
	must(t, err)
	if len(mine) != 1 || mine[0].ID != c.ID {
		t.Fatalf("ListAdminCommunities = %+v", mine)
	}

	must(t, s.RemoveCommunityAdmin(ctx(), c.ID, owner.ID))
	if isAdmin(owner.ID) {
		t.Fatal("removed admin is still an admin")
	}
	wantErr(t, s.RemoveCommunityAdmin(ctx(), c.ID, second.ID), storage.ErrConflict)
	if !isAdmin(second.ID) {
		t.Fatal("the last admin was removed")
	}
	wantErr(t, s.RemoveCommunityAdmin(ctx(), c.ID, owner.ID), storage.ErrNotFound)
	wantErr(t, s.RemoveCommunityAdmin(ctx(), 999999, owner.ID), storage.ErrNotFound)
}

func testConsents(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	v := newUser(t, s, "v")
	a := newApp(t, s, u.ID)
	b := newApp(t, s, u.ID)
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: a.ID, Scope: scope.Friends, CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: a.ID, Scope: scope.Photos, CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}))
	c, err := s.GetConsent(ctx(), u.ID, a.ID)
	must(t, err)
	if c.Scope != scope.Friends|scope.Photos || !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("GetConsent after merge = %+v, want both scopes, first creation time, last update", c)
	}
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: b.ID, Scope: scope.Email, CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: v.ID, AppID: a.ID, Scope: scope.Email, CreatedAt: t0, UpdatedAt: t0}))
	list, err := s.ListConsentsByUser(ctx(), u.ID)
	must(t, err)
	if len(list) != 2 || list[0].AppID != a.ID {
		t.Fatalf("ListConsentsByUser = %+v, want newest (app %d) first", list, a.ID)
	}
	n, err := s.CountAppUsers(ctx(), a.ID)
	must(t, err)
	if n != 2 {
		t.Fatalf("CountAppUsers = %d, want 2", n)
	}
	must(t, s.DeleteConsent(ctx(), u.ID, a.ID))
	_, err = s.GetConsent(ctx(), u.ID, a.ID)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteConsent(ctx(), u.ID, a.ID), storage.ErrNotFound)
	wantErr(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: 999999, CreatedAt: t0, UpdatedAt: t0}), storage.ErrNotFound)
}

func testCodes(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	c := storage.Code{Hash: hash("code-1"), AppID: a.ID, UserID: u.ID, CommunityIDs: []int64{5, 7}, Scope: scope.Messages,
		RedirectURI: "https://app.example/cb", CodeChallenge: "abc", CodeChallengeMethod: "S256", IP: "198.51.100.1",
		IssuedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
	must(t, s.CreateCode(ctx(), c))
	wantErr(t, s.CreateCode(ctx(), c), storage.ErrConflict)
	got, err := s.GetCode(ctx(), c.Hash)
	must(t, err)
	if got.Hash != c.Hash || got.AppID != a.ID || !slices.Equal(got.CommunityIDs, c.CommunityIDs) || got.CodeChallenge != "abc" || !got.UsedAt.IsZero() {
		t.Fatalf("GetCode = %+v, want %+v", got, c)
	}
	_, err = s.GetCode(ctx(), hash("nope"))
	wantErr(t, err, storage.ErrNotFound)

	used, err := s.UseCode(ctx(), c.Hash, t0.Add(time.Minute))
	must(t, err)
	c.UsedAt = t0.Add(time.Minute)
	if used.Hash != c.Hash || used.AppID != a.ID || used.UserID != u.ID || !slices.Equal(used.CommunityIDs, c.CommunityIDs) ||
		used.Scope != c.Scope || used.RedirectURI != c.RedirectURI || used.CodeChallenge != "abc" || used.CodeChallengeMethod != "S256" ||
		used.IP != c.IP || !used.IssuedAt.Equal(t0) || !used.ExpiresAt.Equal(c.ExpiresAt) || !used.UsedAt.Equal(c.UsedAt) {
		t.Fatalf("UseCode = %+v, want %+v", used, c)
	}
	again, err := s.UseCode(ctx(), c.Hash, t0.Add(2*time.Minute))
	wantErr(t, err, storage.ErrConflict)
	if again.Hash != c.Hash || !again.UsedAt.Equal(c.UsedAt) {
		t.Fatalf("replayed UseCode returned %+v; want the code with its first use time", again)
	}
	_, err = s.UseCode(ctx(), hash("nope"), t0)
	wantErr(t, err, storage.ErrNotFound)
	if got, err = s.GetCode(ctx(), c.Hash); err != nil || !got.UsedAt.Equal(c.UsedAt) {
		t.Fatalf("GetCode of the used code = %+v, %v; want it with its use time", got, err)
	}
	wantErr(t, s.CreateCode(ctx(), storage.Code{Hash: hash("orphan"), AppID: 999999, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0}), storage.ErrNotFound)
}

func testTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	v := newUser(t, s, "v")
	a := newApp(t, s, u.ID)
	b := newApp(t, s, u.ID)
	code := hash("the code")
	tok := storage.Token{Hash: hash("t1"), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Friends | scope.Email,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), IP: "192.0.2.1", Flow: storage.FlowCode, CodeHash: &code}
	must(t, s.CreateToken(ctx(), tok))
	wantErr(t, s.CreateToken(ctx(), tok), storage.ErrConflict)
	got, err := s.GetToken(ctx(), tok.Hash)
	must(t, err)
	if got.Hash != tok.Hash || got.Kind != token.User || got.AppID != a.ID || got.UserID != u.ID || got.Scope != tok.Scope ||
		!got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(tok.ExpiresAt) || got.IP != tok.IP || got.Flow != storage.FlowCode ||
		got.CodeHash == nil || *got.CodeHash != code || !got.RevokedAt.IsZero() {
		t.Fatalf("GetToken = %+v, want %+v", got, tok)
	}
	if got.Expired(t0.Add(59*time.Minute)) || !got.Expired(t0.Add(time.Hour)) {
		t.Fatal("Expired is wrong around ExpiresAt")
	}
	_, err = s.GetToken(ctx(), hash("missing"))
	wantErr(t, err, storage.ErrNotFound)

	svc := newToken(t, s, "svc", token.Service, a.ID, 0, 0)
	if svc.Expired(t0.Add(100 * 365 * 24 * time.Hour)) {
		t.Fatal("a token without expiry expired")
	}
	newToken(t, s, "t2", token.User, a.ID, u.ID, 0)
	newToken(t, s, "t3", token.User, a.ID, v.ID, 0)
	newToken(t, s, "t4", token.User, b.ID, u.ID, 0)
	newToken(t, s, "g1", token.Community, a.ID, u.ID, 77)
	wantErr(t, s.CreateToken(ctx(), storage.Token{Hash: hash("orphan"), Kind: token.User, AppID: 999999, IssuedAt: t0, Flow: storage.FlowCode}), storage.ErrNotFound)

	list, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID, Kind: token.User})
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("ListTokens(app a, user u) = %d tokens, want 2", len(list))
	}
	list, err = s.ListTokens(ctx(), storage.TokenFilter{CommunityID: 77})
	must(t, err)
	if len(list) != 1 || list[0].Kind != token.Community || list[0].CommunityID != 77 {
		t.Fatalf("ListTokens(community) = %+v", list)
	}

	// The user revokes app a: only u's tokens of a go, and only once.
	revoked, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID, Kind: token.User}, storage.RevokedByUser, t0.Add(time.Minute))
	must(t, err)
	if len(revoked) != 2 {
		t.Fatalf("RevokeTokens returned %d hashes, want 2", len(revoked))
	}
	got, _ = s.GetToken(ctx(), tok.Hash)
	if !got.RevokedAt.Equal(t0.Add(time.Minute)) || got.RevokeReason != storage.RevokedByUser {
		t.Fatalf("RevokedAt = %v, reason %q", got.RevokedAt, got.RevokeReason)
	}
	again, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID}, storage.RevokedByAdmin, t0.Add(2*time.Minute))
	must(t, err)
	if len(again) != 1 || again[0] != hash("g1") {
		t.Fatalf("second revoke returned %d hashes; already revoked tokens must not be returned again", len(again))
	}
	live, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, LiveOnly: true})
	must(t, err)
	if len(live) != 3 { // the app's own service token, svc, t3
		t.Fatalf("live tokens of app a = %d, want 3", len(live))
	}
	secret := hash("a client secret")
	cc := storage.Token{Hash: hash("cc"), Kind: token.Service, AppID: b.ID, IssuedAt: t0, Flow: storage.FlowClientCredentials, SecretHash: &secret}
	must(t, s.CreateToken(ctx(), cc))
	if got, _ := s.GetToken(ctx(), cc.Hash); got.SecretHash == nil || *got.SecretHash != secret {
		t.Fatalf("SecretHash not stored: %+v", got)
	}
	bySecret, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: b.ID, SecretHash: &secret}, storage.RevokedSecret, t0)
	must(t, err)
	if len(bySecret) != 1 || bySecret[0] != cc.Hash {
		t.Fatalf("revoking by secret revoked %d tokens, want the one minted with it", len(bySecret))
	}
	byCode, err := s.RevokeTokens(ctx(), storage.TokenFilter{CodeHash: &code}, storage.RevokedCodeReplay, t0)
	must(t, err)
	if len(byCode) != 0 {
		t.Fatal("revoking by code returned an already revoked token")
	}
	if g, _ := s.GetToken(ctx(), hash("t4")); !g.RevokedAt.IsZero() {
		t.Fatal("another app's token was revoked")
	}
}

func testDerivedTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "deriver")
	a := newApp(t, s, u.ID)
	tree := map[string]string{"root": "", "child": "root", "grandchild": "child", "other child": "root", "stranger": ""}
	for _, name := range []string{"root", "stranger", "child", "other child", "grandchild"} {
		tok := storage.Token{Hash: hash(name), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowExchange}
		if p := tree[name]; p != "" {
			parent := hash(p)
			tok.Parent = &parent
		}
		must(t, s.CreateToken(ctx(), tok))
	}
	derived := func(name string) []token.Hash {
		h := hash(name)
		ts, err := s.ListTokens(ctx(), storage.TokenFilter{DerivedFrom: &h})
		must(t, err)
		var out []token.Hash
		for _, tok := range ts {
			out = append(out, tok.Hash)
		}
		slices.SortFunc(out, func(a, b token.Hash) int { return slices.Compare(a[:], b[:]) })
		return out
	}
	sorted := func(names ...string) []token.Hash {
		var out []token.Hash
		for _, n := range names {
			out = append(out, hash(n))
		}
		slices.SortFunc(out, func(a, b token.Hash) int { return slices.Compare(a[:], b[:]) })
		return out
	}
	if got := derived("root"); !slices.Equal(got, sorted("child", "grandchild", "other child")) {
		t.Fatalf("derived from root: %x", got)
	}
	if got := derived("grandchild"); len(got) != 0 {
		t.Fatalf("derived from a leaf: %x", got)
	}
	child := hash("child")
	revoked, err := s.RevokeTokens(ctx(), storage.TokenFilter{DerivedFrom: &child}, storage.RevokedByApp, t0)
	must(t, err)
	if !slices.Equal(revoked, []token.Hash{hash("grandchild")}) {
		t.Fatalf("revoking what came from child revoked %x", revoked)
	}
}

func testAppLessTokenAndTouch(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	tok := storage.Token{Hash: hash("community, created here"), Kind: token.Community, UserID: u.ID, CommunityID: 5, Scope: scope.CommunityManage, IssuedAt: t0, Flow: storage.FlowConsole}
	must(t, s.CreateToken(ctx(), tok))
	got, err := s.GetToken(ctx(), tok.Hash)
	must(t, err)
	if got.AppID != 0 || got.Flow != storage.FlowConsole || !got.LastUsedAt.IsZero() {
		t.Fatalf("app-less token = %+v", got)
	}
	must(t, s.TouchTokens(ctx(), map[token.Hash]time.Time{tok.Hash: t0.Add(time.Hour), hash("unknown"): t0}))
	must(t, s.TouchTokens(ctx(), map[token.Hash]time.Time{tok.Hash: t0.Add(time.Minute)})) // older: ignored
	got, _ = s.GetToken(ctx(), tok.Hash)
	if !got.LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, t0.Add(time.Hour))
	}
	list, err := s.ListTokens(ctx(), storage.TokenFilter{CommunityID: 5, LiveOnly: true})
	must(t, err)
	if len(list) != 1 || list[0].AppID != 0 {
		t.Fatalf("ListTokens(community) = %+v", list)
	}
}

func testCreateTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	var ts []storage.Token
	for i := range 1203 { // more than one statement's worth, and a remainder
		code := hash(fmt.Sprint("code-", i%7))
		ts = append(ts, storage.Token{Hash: hash(fmt.Sprint("bulk-", i)), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Mask(i),
			IssuedAt: t0, ExpiresAt: t0.Add(time.Duration(i) * time.Second), Flow: storage.FlowCode, CodeHash: &code, IP: "192.0.2.1"})
	}
	must(t, s.CreateTokens(ctx(), ts))
	for _, i := range []int{0, 499, 500, 1202} {
		got, err := s.GetToken(ctx(), ts[i].Hash)
		must(t, err)
		if got.Scope != ts[i].Scope || !got.ExpiresAt.Equal(ts[i].ExpiresAt) || *got.CodeHash != *ts[i].CodeHash || got.IP != "192.0.2.1" || got.AppID != a.ID {
			t.Fatalf("bulk token %d read back as %+v, want %+v", i, got, ts[i])
		}
	}
	listed, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID})
	must(t, err)
	if len(listed) != len(ts) {
		t.Fatalf("%d tokens listed after a bulk create of %d", len(listed), len(ts))
	}
	// One taken hash in the last statement: nothing of the call is kept.
	more := []storage.Token{{Hash: hash("fresh-1"), Kind: token.User, AppID: a.ID, IssuedAt: t0, Flow: storage.FlowCode}}
	for i := range 600 {
		more = append(more, storage.Token{Hash: hash(fmt.Sprint("fresh-more-", i)), Kind: token.User, AppID: a.ID, IssuedAt: t0, Flow: storage.FlowCode})
	}
	more = append(more, ts[5])
	wantErr(t, s.CreateTokens(ctx(), more), storage.ErrConflict)
	if _, err := s.GetToken(ctx(), hash("fresh-1")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a bulk create that failed kept its first token: %v", err)
	}
}

func testThrottles(t *testing.T, s storage.Storage) {
	k := hash("ip:192.0.2.1")
	window := 15 * time.Minute
	take := func(now time.Time) (bool, time.Time) {
		t.Helper()
		ok, started, err := s.TakeAttempt(ctx(), k, 3, now.Add(-window), now)
		must(t, err)
		return ok, started
	}
	for i := range 3 {
		if ok, started := take(t0.Add(time.Duration(i) * time.Second)); !ok || !started.Equal(t0) {
			t.Fatalf("attempt %d: %v, window from %v, want counted in the window from %v", i+1, ok, started, t0)
		}
	}
	if ok, started := take(t0.Add(time.Minute)); ok || !started.Equal(t0) {
		t.Fatalf("a 4th attempt of 3: %v (window from %v), want refused, the window from %v", ok, started, t0)
	}
	must(t, s.RefundAttempt(ctx(), k, t0.Add(time.Minute).Add(-window)))
	if ok, _ := take(t0.Add(time.Minute)); !ok {
		t.Fatal("a refunded attempt was not given back")
	}
	if ok, _ := take(t0.Add(time.Minute)); ok {
		t.Fatal("a refund gave back more than one attempt")
	}
	later := t0.Add(window + time.Second)
	if ok, started := take(later); !ok || !started.Equal(later) {
		t.Fatalf("after the window: %v from %v, want a new window from %v", ok, started, later)
	}
	must(t, s.ResetAttempts(ctx(), k))
	for range 3 {
		if ok, _ := take(later); !ok {
			t.Fatal("attempts still counted after a reset")
		}
	}
	other := hash("login:alice")
	if ok, _, err := s.TakeAttempt(ctx(), other, 1, later.Add(-window), later); err != nil || !ok {
		t.Fatalf("another key shares the count: %v %v", ok, err)
	}
	n, err := s.PruneAttempts(ctx(), later.Add(time.Second))
	must(t, err)
	if n != 2 {
		t.Fatalf("pruned %d windows, want 2", n)
	}
}

func testConcurrentAttempts(t *testing.T, s storage.Storage) {
	k := hash("login:bob")
	const n, limit = 24, 5
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			passed, _, err := s.TakeAttempt(ctx(), k, limit, t0.Add(-time.Hour), t0)
			if err != nil {
				t.Error(err)
			}
			if passed {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit {
		t.Fatalf("%d of %d concurrent attempts passed a limit of %d", ok.Load(), n, limit)
	}
}

func testHeartbeat(t *testing.T, s storage.Storage) {
	beat := func(node string, now time.Time) int {
		t.Helper()
		n, err := s.Heartbeat(ctx(), node, now, now.Add(-3*time.Second), now.Add(-time.Minute))
		must(t, err)
		return n
	}
	if n := beat("a", t0); n != 1 {
		t.Fatalf("one node: %d live", n)
	}
	if n := beat("b", t0.Add(time.Second)); n != 2 {
		t.Fatalf("two nodes: %d live", n)
	}
	if n := beat("a", t0.Add(2*time.Second)); n != 2 {
		t.Fatalf("a beating again: %d live, want 2", n)
	}
	if n := beat("a", t0.Add(5*time.Second)); n != 1 {
		t.Fatalf("b silent for 4 s: %d live, want 1", n)
	}
	if n, err := s.Heartbeat(ctx(), "a", t0.Add(2*time.Minute), t0, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("b, silent for two minutes, was not forgotten: %d live since its last beat (%v)", n, err)
	}
	beat("b", t0.Add(2*time.Minute))
	must(t, s.ForgetNode(ctx(), "b"))
	if n := beat("a", t0.Add(2*time.Minute)); n != 1 {
		t.Fatalf("after b left: %d live, want 1", n)
	}
}

func testEmptyFilter(t *testing.T, s storage.Storage) {
	if _, err := s.RevokeTokens(ctx(), storage.TokenFilter{}, storage.RevokedByApp, t0); err == nil {
		t.Fatal("RevokeTokens with an empty filter must fail, not revoke everything")
	}
	if _, err := s.ListTokens(ctx(), storage.TokenFilter{LiveOnly: true}); err == nil {
		t.Fatal("ListTokens with an empty filter must fail")
	}
}

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

func testAudit(t *testing.T, s storage.Storage) {
	for i, action := range []storage.AuditAction{storage.AuditSecretRotate, storage.AuditServiceTokenNew, storage.AuditCommunityTokenNew} {
		e := storage.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), ActorUserID: 1, AppID: 10, Action: action, IP: "192.0.2.9", Detail: "d"}
		if action == storage.AuditCommunityTokenNew {
			e.AppID, e.CommunityID = 0, 20
		}
		must(t, s.AddAudit(ctx(), e))
	}
	es, err := s.ListAudit(ctx(), storage.AuditFilter{AppID: 10})
	must(t, err)
	if len(es) != 2 || es[0].Action != "service_token.new" || es[0].IP != "192.0.2.9" || !es[0].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("ListAudit(app) = %+v", es)
	}
	es, err = s.ListAudit(ctx(), storage.AuditFilter{CommunityID: 20})
	must(t, err)
	if len(es) != 1 || es[0].Action != storage.AuditCommunityTokenNew {
		t.Fatalf("ListAudit(community) = %+v", es)
	}
	es, err = s.ListAudit(ctx(), storage.AuditFilter{Limit: 1})
	must(t, err)
	if len(es) != 1 {
		t.Fatalf("ListAudit(limit 1) = %d events", len(es))
	}
}

func testDeleteExpired(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	now := t0.Add(24 * time.Hour)
	for i := range 5 {
		must(t, s.CreateCode(ctx(), storage.Code{Hash: hash(fmt.Sprint("old code", i)), AppID: a.ID, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}))
		must(t, s.CreateToken(ctx(), storage.Token{Hash: hash(fmt.Sprint("old token", i)), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), Flow: storage.FlowImplicit}))
	}
	must(t, s.CreateCode(ctx(), storage.Code{Hash: hash("live code"), AppID: a.ID, UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("live token"), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Flow: storage.FlowImplicit}))
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("forever"), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowImplicit}))
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("revoked long ago"), Kind: token.Service, AppID: a.ID, IssuedAt: t0, RevokedAt: t0, Flow: storage.FlowServiceToken}))
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("recently revoked"), Kind: token.Service, AppID: a.ID, IssuedAt: t0, RevokedAt: now.Add(-time.Hour), Flow: storage.FlowServiceToken}))
	// Retained: expired, but after tokensBefore.
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("recently expired"), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), Flow: storage.FlowImplicit}))

	codes, tokens, err := s.DeleteExpired(ctx(), now, now.Add(-3*time.Hour), now.Add(-2*time.Hour), 3)
	must(t, err)
	if codes != 3 || tokens != 4 {
		t.Fatalf("first batch deleted %d codes, %d tokens; want 3, and 3 expired (the limit) and 1 revoked long ago", codes, tokens)
	}
	codes, tokens, err = s.DeleteExpired(ctx(), now, now.Add(-3*time.Hour), now.Add(-2*time.Hour), 3)
	must(t, err)
	if codes != 2 || tokens != 2 {
		t.Fatalf("second batch deleted %d codes, %d tokens; want 2 and 2", codes, tokens)
	}
	codes, tokens, err = s.DeleteExpired(ctx(), now, now.Add(-3*time.Hour), now.Add(-2*time.Hour), 3)
	must(t, err)
	if codes != 0 || tokens != 0 {
		t.Fatalf("third batch deleted %d codes, %d tokens; want none", codes, tokens)
	}
	for _, name := range []string{"live token", "forever", "recently revoked", "recently expired"} {
		if _, err := s.GetToken(ctx(), hash(name)); err != nil {
			t.Errorf("token %q was deleted: %v", name, err)
		}
	}
	if _, err := s.GetToken(ctx(), hash("revoked long ago")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a token revoked before the retention was kept: %v", err)
	}
	if _, err := s.UseCode(ctx(), hash("live code"), now); err != nil {
		t.Errorf("the live code was deleted: %v", err)
	}
}

func testRunExclusive(t *testing.T, s storage.Storage) {
	ran, err := s.RunExclusive(ctx(), "job", func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("RunExclusive alone: ran %v, %v", ran, err)
	}
	inner := errors.New("inner")
	if _, err := s.RunExclusive(ctx(), "job", func(context.Context) error { return inner }); !errors.Is(err, inner) {
		t.Fatalf("RunExclusive lost fn's error: %v", err)
	}
}

func testConcurrentWriters(t *testing.T, s storage.Storage) {
	owner := newUser(t, s, "owner")
	a := newApp(t, s, owner.ID)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				u := storage.User{Login: fmt.Sprintf("w%d-%d", w, i), PasswordHash: "x", CreatedAt: t0}
				if err := s.CreateUser(ctx(), &u); err != nil {
					errs <- err
					continue
				}
				tok := storage.Token{Hash: hash(u.Login), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowImplicit}
				if err := s.CreateToken(ctx(), tok); err != nil {
					errs <- err
				}
				if err := s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: a.ID, Scope: scope.Friends, CreatedAt: t0, UpdatedAt: t0}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	tokens, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, Kind: token.User})
	must(t, err)
	n, err := s.CountAppUsers(ctx(), a.ID)
	must(t, err)
	if len(tokens) != writers*each || n != writers*each {
		t.Fatalf("after concurrent writes: %d tokens, %d consents, want %d each", len(tokens), n, writers*each)
	}
}

// Writes that fail (a taken hash, a refused update, a missing owner) or
// whose callers give up run beside writes that succeed, as group commit
// puts them in one transaction: each failure undoes only its own write.
func testConcurrentFailingWrites(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	taken := newToken(t, s, "taken", token.User, a.ID, u.ID, 0)
	other := newUser(t, s, "other")
	const rounds = 40
	refused := errors.New("refused by the callback")
	var wg sync.WaitGroup
	var abandoned sync.Map // hash → the caller's error
	for i := range rounds {
		wg.Go(func() {
			tok := storage.Token{Hash: hash(fmt.Sprint("ok-", i)), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowImplicit}
			if err := s.CreateToken(ctx(), tok); err != nil {
				t.Errorf("CreateToken: %v", err)
			}
		})
		wg.Go(func() {
			dup := taken
			dup.Scope = 1 << 20
			wantErr(t, s.CreateToken(ctx(), dup), storage.ErrConflict)
		})
		wg.Go(func() {
			_, err := s.UpdateApp(ctx(), a.ID, func(a *storage.App) error {
				a.RedirectURIs = append(a.RedirectURIs, fmt.Sprintf("https://app.example/cb/%d", i))
				if i%2 == 1 {
					return refused
				}
				return nil
			})
			if i%2 == 1 && !errors.Is(err, refused) || i%2 == 0 && err != nil {
				t.Errorf("UpdateApp %d: %v", i, err)
			}
		})
		wg.Go(func() {
			// The app row is written, then its service token fails on
			// a taken hash: the app must go with it.
			half := storage.App{OwnerID: other.ID, Title: "half", Type: storage.Web, Secret: storage.ClientSecret{Hash: hash(fmt.Sprint("half-", i)), Sealed: []byte("s")}, ServiceTokenSealed: []byte("s")}
			err := s.CreateApp(ctx(), &half, storage.Token{Hash: taken.Hash, Kind: token.Service, IssuedAt: t0, Flow: storage.FlowServiceToken})
			wantErr(t, err, storage.ErrConflict)
		})
		wg.Go(func() {
			c, cancel := context.WithCancel(ctx())
			h := hash(fmt.Sprint("gave-up-", i))
			go cancel()
			err := s.CreateToken(c, storage.Token{Hash: h, Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowImplicit})
			abandoned.Store(h, err)
		})
	}
	wg.Wait()
	for i := range rounds {
		if _, err := s.GetToken(ctx(), hash(fmt.Sprint("ok-", i))); err != nil {
			t.Errorf("token ok-%d: %v", i, err)
		}
	}
	if half, err := s.ListApps(ctx(), storage.AppFilter{OwnerID: other.ID}); err != nil || len(half) != 0 {
		t.Errorf("apps whose service token failed: %d kept (%v), want none", len(half), err)
	}
	abandoned.Range(func(k, v any) bool {
		// A caller told its write failed finds it absent; one told it
		// succeeded finds it (the write may also have committed after
		// its caller stopped waiting, never the reverse).
		_, err := s.GetToken(ctx(), k.(token.Hash))
		if v == nil && err != nil {
			t.Errorf("a write acknowledged to a caller about to give up is missing: %v", err)
		}
		return true
	})
	got, err := s.GetToken(ctx(), taken.Hash)
	must(t, err)
	if got.Scope != taken.Scope {
		t.Errorf("a conflicting insert changed the existing token: scope %v, want %v", got.Scope, taken.Scope)
	}
	app, err := s.GetApp(ctx(), a.ID)
	must(t, err)
	if want := len(a.RedirectURIs) + rounds/2; len(app.RedirectURIs) != want {
		t.Fatalf("after %d updates, half refused: %d redirect URIs, want %d", rounds, len(app.RedirectURIs), want)
	}
	for _, uri := range app.RedirectURIs[len(a.RedirectURIs):] {
		var i int
		fmt.Sscanf(uri, "https://app.example/cb/%d", &i)
		if i%2 == 1 {
			t.Errorf("a refused update was kept: %s", uri)
		}
	}
}

func testConcurrentCodeUse(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	c := storage.Code{Hash: hash("race"), AppID: a.ID, UserID: u.ID, RedirectURI: "x", IssuedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	must(t, s.CreateCode(ctx(), c))
	const n = 8
	results := make(chan error, n)
	for range n {
		go func() {
			_, err := s.UseCode(ctx(), c.Hash, t0)
			results <- err
		}()
	}
	wins := 0
	for range n {
		err := <-results
		switch {
		case err == nil:
			wins++
		case errors.Is(err, storage.ErrConflict):
		default:
			t.Errorf("UseCode: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent uses of one code succeeded, want exactly 1", wins)
	}
}

// Each updater appends its own redirect URI: with read-modify-write outside
// one transaction, two that read the same row lose one of them.
func testConcurrentAppUpdates(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	const n = 12
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := s.UpdateApp(ctx(), a.ID, func(a *storage.App) error {
				a.RedirectURIs = append(a.RedirectURIs, fmt.Sprintf("https://app.example/cb/%d", i))
				time.Sleep(time.Millisecond) // widen the window a lost update needs
				return nil
			})
			if err != nil {
				t.Errorf("UpdateApp: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetApp(ctx(), a.ID)
	must(t, err)
	if len(got.RedirectURIs) != len(a.RedirectURIs)+n {
		t.Fatalf("after %d concurrent updates: %d redirect URIs, want %d", n, len(got.RedirectURIs), len(a.RedirectURIs)+n)
	}
}

// Each grant adds one scope bit: the consent ends with all of them.
func testConcurrentConsents(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	bits := []scope.Mask{scope.Notify, scope.Friends, scope.Photos, scope.Audio, scope.Video, scope.Messages, scope.Wall, scope.Email}
	var wg sync.WaitGroup
	var want scope.Mask
	for _, b := range bits {
		want |= b
		wg.Go(func() {
			if err := s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: a.ID, Scope: b, CreatedAt: t0, UpdatedAt: t0}); err != nil {
				t.Errorf("MergeConsent: %v", err)
			}
		})
	}
	wg.Wait()
	c, err := s.GetConsent(ctx(), u.ID, a.ID)
	must(t, err)
	if c.Scope != want {
		t.Fatalf("after concurrent grants: scope %b, want %b", c.Scope, want)
	}
}

// Regenerations race each other and readers: a reader always finds the
// sealed token, and at the end exactly one service token is live, the one
// whose sealed value the app holds.
func testConcurrentServiceTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	const n = 8
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := s.GetApp(ctx(), a.ID)
			if err != nil {
				t.Errorf("GetApp during regeneration: %v", err)
				return
			}
			if len(got.ServiceTokenSealed) == 0 {
				t.Error("a reader saw the app without a service token")
				return
			}
		}
	})
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprint("regenerated ", i)
			tok := storage.Token{Hash: hash(name), Kind: token.Service, AppID: a.ID, IssuedAt: t0.Add(time.Second), Flow: storage.FlowServiceToken}
			if _, err := s.ReplaceServiceToken(ctx(), tok, []byte(name)); err != nil {
				t.Errorf("ReplaceServiceToken: %v", err)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	live, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, Kind: token.Service, LiveOnly: true})
	must(t, err)
	got, err := s.GetApp(ctx(), a.ID)
	must(t, err)
	if len(live) != 1 || live[0].Hash != hash(string(got.ServiceTokenSealed)) {
		t.Fatalf("after %d concurrent regenerations: %d live service tokens (the app holds %q), want exactly the app's one", n, len(live), got.ServiceTokenSealed)
	}
	if live[0].RevokeReason != "" {
		t.Fatalf("live token has a revoke reason %q", live[0].RevokeReason)
	}
	all, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, Kind: token.Service})
	must(t, err)
	for _, tok := range all {
		if tok.Hash != live[0].Hash && tok.RevokeReason != storage.RevokedReplaced {
			t.Fatalf("a replaced service token has reason %q, want %q", tok.RevokeReason, storage.RevokedReplaced)
		}
	}
	_, err = s.ReplaceServiceToken(ctx(), storage.Token{Hash: hash("no app"), Kind: token.Service, AppID: 999999, IssuedAt: t0, Flow: storage.FlowServiceToken}, []byte("x"))
	wantErr(t, err, storage.ErrNotFound)
}

func testRevocationLog(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	start, err := s.LastRevocation(ctx())
	must(t, err)
	t1 := newToken(t, s, "t1", token.User, a.ID, u.ID, 0)
	t2 := newToken(t, s, "t2", token.User, a.ID, u.ID, 0)
	_, err = s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, Kind: token.User}, storage.RevokedByUser, t0)
	must(t, err)
	if _, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, Kind: token.User}, storage.RevokedByUser, t0); err != nil {
		t.Fatal(err) // nothing live: nothing logged
	}
	svc := storage.Token{Hash: hash("next service"), Kind: token.Service, AppID: a.ID, IssuedAt: t0, Flow: storage.FlowServiceToken}
	replaced, err := s.ReplaceServiceToken(ctx(), svc, []byte("x"))
	must(t, err)
	deleted, err := s.DeleteApp(ctx(), a.ID)
	must(t, err)
	want := []token.Hash{t1.Hash, t2.Hash}
	slices.SortFunc(want, func(x, y token.Hash) int { return slices.Compare(x[:], y[:]) })
	want = append(append(want, replaced...), deleted...)
	var got []token.Hash
	seq := start
	for {
		page, next, err := s.RevocationsAfter(ctx(), seq, 2)
		must(t, err)
		if len(page) == 0 {
			if next != seq {
				t.Fatalf("an empty page moved the position from %d to %d", seq, next)
			}
			break
		}
		got, seq = append(got, page...), next
	}
	first2 := got[:min(2, len(got))]
	slices.SortFunc(first2, func(x, y token.Hash) int { return slices.Compare(x[:], y[:]) })
	if !slices.Equal(got, want) {
		t.Fatalf("the log holds %d hashes %x, want %d: the two revoked, the replaced service token, then the deleted app's", len(got), got, len(want))
	}
	last, err := s.LastRevocation(ctx())
	must(t, err)
	if last != seq {
		t.Fatalf("LastRevocation = %d, want %d", last, seq)
	}
	n, err := s.PruneRevocations(ctx(), t0.Add(time.Second))
	must(t, err)
	if n < 3 {
		t.Fatalf("pruned %d entries, want at least the three made at t0", n)
	}
}

func testReusableToken(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	_, _, err := s.ReusableToken(ctx(), a.ID, u.ID, storage.FlowIFrame, scope.Friends, t0)
	wantErr(t, err, storage.ErrNotFound)
	tok := storage.Token{Hash: hash("launch"), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Friends,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), Flow: storage.FlowIFrame, Sealed: []byte("sealed launch")}
	must(t, s.CreateToken(ctx(), tok))
	// Not kept sealed: never handed out again.
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("plain"), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Friends,
		IssuedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour), Flow: storage.FlowIFrame}))
	got, sealed, err := s.ReusableToken(ctx(), a.ID, u.ID, storage.FlowIFrame, scope.Friends, t0.Add(30*time.Minute))
	if err != nil || got.Hash != tok.Hash || string(sealed) != "sealed launch" {
		t.Fatalf("ReusableToken = %x %q %v, want the sealed launch token", got.Hash, sealed, err)
	}
	if again, err := s.GetToken(ctx(), tok.Hash); err != nil || again.Sealed != nil {
		t.Fatalf("GetToken carries the sealed token (%q, %v): only ReusableToken reads it", again.Sealed, err)
	}
	for name, q := range map[string]struct {
		m     scope.Mask
		until time.Time
		user  int64
	}{
		"other scopes":              {scope.Friends | scope.Photos, t0, u.ID},
		"expires before validUntil": {scope.Friends, t0.Add(2 * time.Hour), u.ID},
		"another user":              {scope.Friends, t0, u.ID + 1},
	} {
		if _, _, err := s.ReusableToken(ctx(), a.ID, q.user, storage.FlowIFrame, q.m, q.until); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
	_, err = s.RevokeTokens(ctx(), storage.TokenFilter{Hash: &tok.Hash}, storage.RevokedByUser, t0)
	must(t, err)
	_, _, err = s.ReusableToken(ctx(), a.ID, u.ID, storage.FlowIFrame, scope.Friends, t0)
	wantErr(t, err, storage.ErrNotFound)
}

func testUserAdmin(t *testing.T, s storage.Storage) {
	var ids []int64
	for _, login := range []string{"ua", "ub", "uc"} {
		u := &storage.User{Login: login, PasswordHash: "h", CreatedAt: t0}
		must(t, s.CreateUser(ctx(), u))
		ids = append(ids, u.ID)
	}
	page, err := s.ListUsers(ctx(), ids[0], 1)
	must(t, err)
	if len(page) != 1 || page[0].ID != ids[1] {
		t.Fatalf("ListUsers(after %d, 1) = %+v", ids[0], page)
	}
	must(t, s.SetPassword(ctx(), ids[1], "new-hash", t0.Add(time.Minute)))
	must(t, s.DisableUser(ctx(), ids[2], t0.Add(2*time.Minute)))
	b, err := s.GetUser(ctx(), ids[1])
	must(t, err)
	c, err := s.GetUser(ctx(), ids[2])
	must(t, err)
	if b.PasswordHash != "new-hash" || !b.SessionsAfter.Equal(t0.Add(time.Minute)) || !b.DisabledAt.IsZero() {
		t.Fatalf("after SetPassword: %+v", b)
	}
	if !c.DisabledAt.Equal(t0.Add(2*time.Minute)) || !c.SessionsAfter.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("after DisableUser: %+v", c)
	}
	if err := s.SetPassword(ctx(), 1<<40, "x", t0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("SetPassword of no one: %v", err)
	}
	if err := s.DisableUser(ctx(), 1<<40, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("DisableUser of no one: %v", err)
	}
}

func testDisabledUserGetsNothing(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "soon-disabled")
	a := newApp(t, s, u.ID)
	must(t, s.DisableUser(ctx(), u.ID, t0))
	for _, kind := range []token.Kind{token.User, token.Community} {
		tok := storage.Token{Hash: hash("disabled " + kind.String()), Kind: kind, AppID: a.ID, UserID: u.ID, Scope: scope.Friends, IssuedAt: t0, Flow: storage.FlowCode}
		wantErr(t, s.CreateToken(ctx(), tok), storage.ErrUserDisabled)
		_, err := s.GetToken(ctx(), tok.Hash)
		wantErr(t, err, storage.ErrNotFound)
	}
	r := storage.RefreshToken{Hash: hash("disabled refresh"), Family: hash("family"), AppID: a.ID, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	wantErr(t, s.CreateRefreshToken(ctx(), r), storage.ErrUserDisabled)
	_, err := s.GetRefreshToken(ctx(), r.Hash, a.ID)
	wantErr(t, err, storage.ErrNotFound)
	// The app's own tokens do not speak for its owner.
	svc := storage.Token{Hash: hash("service of a disabled owner"), Kind: token.Service, AppID: a.ID, IssuedAt: t0, Flow: storage.FlowClientCredentials}
	must(t, s.CreateToken(ctx(), svc))
}

// testConcurrentDisable stores tokens for a user while the user is
// disabled and their tokens revoked, as DisableUser's caller does: every
// token is then either refused or revoked, none live.
func testConcurrentDisable(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "disabled-while-issuing")
	a := newApp(t, s, u.ID)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				h := hash(fmt.Sprint("racing ", w, " ", i))
				err := s.CreateToken(ctx(), storage.Token{Hash: h, Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowRefresh})
				if err != nil && !errors.Is(err, storage.ErrUserDisabled) {
					t.Error(err)
				}
			}
		})
	}
	must(t, s.DisableUser(ctx(), u.ID, t0))
	_, err := s.RevokeTokens(ctx(), storage.TokenFilter{UserID: u.ID}, storage.RevokedByAdmin, t0)
	must(t, err)
	wg.Wait()
	live, err := s.ListTokens(ctx(), storage.TokenFilter{UserID: u.ID, LiveOnly: true})
	must(t, err)
	if len(live) > 0 {
		t.Fatalf("%d tokens stored while the user was disabled are live", len(live))
	}
}

func testAdminTokens(t *testing.T, s storage.Storage) {
	a := storage.AdminToken{Name: "deploy", Hash: token.HashOf("admin-a"), CreatedAt: t0}
	must(t, s.CreateAdminToken(ctx(), a))
	if err := s.CreateAdminToken(ctx(), storage.AdminToken{Name: "deploy", Hash: token.HashOf("admin-b"), CreatedAt: t0}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a taken name: %v", err)
	}
	got, err := s.AdminToken(ctx(), a.Hash)
	must(t, err)
	if got.Name != "deploy" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("AdminToken = %+v", got)
	}
	must(t, s.DeleteAdminToken(ctx(), "deploy"))
	if _, err := s.AdminToken(ctx(), a.Hash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted admin token: %v", err)
	}
	if err := s.DeleteAdminToken(ctx(), "deploy"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
}

func testRefreshHolder(t *testing.T, s storage.Storage) {
	u := &storage.User{Login: "holder", PasswordHash: "h", CreatedAt: t0}
	must(t, s.CreateUser(ctx(), u))
	a := newApp(t, s, u.ID)
	r := storage.RefreshToken{Hash: token.HashOf("refresh-holder"), Family: token.HashOf("family"), AppID: a.ID, UserID: u.ID,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), Holder: storage.Holder{JKT: "key", DeviceID: "phone"}}
	must(t, s.CreateRefreshToken(ctx(), r))
	got, err := s.GetRefreshToken(ctx(), r.Hash, a.ID)
	must(t, err)
	if got.Holder != r.Holder || got.Family != r.Family || got.UserID != u.ID || !got.ExpiresAt.Equal(r.ExpiresAt) || !got.UsedAt.IsZero() {
		t.Fatalf("GetRefreshToken = %+v, want %+v", got, r)
	}
	_, err = s.GetRefreshToken(ctx(), r.Hash, a.ID+1000)
	wantErr(t, err, storage.ErrNotFound) // another app's
	// Spent only by a use whose holders include the token's.
	for _, holders := range [][]storage.Holder{unbound, {{JKT: "key"}, {DeviceID: "phone"}}, {{JKT: "other", DeviceID: "phone"}}} {
		if got, err := s.UseRefreshToken(ctx(), r.Hash, a.ID, t0, holders); !errors.Is(err, storage.ErrConflict) || !got.UsedAt.IsZero() || got.Holder != r.Holder {
			t.Fatalf("used by %+v: %+v %v, want a conflict, unspent", holders, got, err)
		}
	}
	used, err := s.UseRefreshToken(ctx(), r.Hash, a.ID, t0.Add(time.Minute), []storage.Holder{{}, r.Holder})
	must(t, err)
	if !used.UsedAt.Equal(t0.Add(time.Minute)) || used.Holder != r.Holder {
		t.Fatalf("UseRefreshToken = %+v", used)
	}
	again, err := s.UseRefreshToken(ctx(), r.Hash, a.ID, t0.Add(2*time.Minute), []storage.Holder{r.Holder})
	wantErr(t, err, storage.ErrConflict)
	if !again.UsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("a second use: %+v, want the token with its first use time", again)
	}
	_, err = s.UseRefreshToken(ctx(), hash("no such refresh token"), a.ID, t0, unbound)
	wantErr(t, err, storage.ErrNotFound)
}

func testCommunityEvents(t *testing.T, s storage.Storage) {
	if n, err := s.LastEventSeq(ctx(), 7); err != nil || n != 0 {
		t.Fatalf("no events yet: %d %v", n, err)
	}
	for i, c := range []int64{7, 7, 8, 7} {
		e := storage.CommunityEvent{CommunityID: c, Type: "message_new", Object: fmt.Sprintf(`{"n":%d}`, i), CreatedAt: t0}
		must(t, addEvent(s, &e))
		if want := map[int]int64{0: 1, 1: 2, 2: 1, 3: 3}[i]; e.Seq != want {
			t.Fatalf("event %d of community %d: seq %d, want %d", i, c, e.Seq, want)
		}
	}
	es, err := s.CommunityEvents(ctx(), 7, 2, 10)
	must(t, err)
	if len(es) != 2 || es[0].Seq != 2 || es[1].Seq != 3 || es[1].Object != `{"n":3}` || !es[0].CreatedAt.Equal(t0) {
		t.Fatalf("events of 7 from 2: %+v", es)
	}
	if n, err := s.LastEventSeq(ctx(), 7); err != nil || n != 3 {
		t.Fatalf("LastEventSeq(7) = %d %v", n, err)
	}
	// Old events go; the numbers stay.
	late := storage.CommunityEvent{CommunityID: 7, Type: "group_join", Object: "{}", CreatedAt: t0.Add(time.Hour)}
	must(t, addEvent(s, &late))
	n, err := s.DeleteCommunityEvents(ctx(), t0.Add(time.Minute), 100)
	must(t, err)
	if es, _ := s.CommunityEvents(ctx(), 7, 1, 10); n != 4 || len(es) != 1 || es[0].Seq != 4 {
		t.Fatalf("after deleting the old ones (%d): %+v", n, es)
	}
	next := storage.CommunityEvent{CommunityID: 7, Type: "group_join", Object: "{}", CreatedAt: t0.Add(time.Hour)}
	must(t, addEvent(s, &next))
	if next.Seq != 5 {
		t.Fatalf("the next event after a deletion: seq %d, want 5", next.Seq)
	}
}

// eventJoiner numbers the users addEvent makes join.
var eventJoiner atomic.Int64

// addEvent stores e as the event of a new member joining its community
// (every write that stores an event does so with a change of its own).
func addEvent(s storage.Storage, e *storage.CommunityEvent) error {
	changed, err := s.SetMembership(ctx(), e.CommunityID, 1_000_000+eventJoiner.Add(1), true, e.CreatedAt, e)
	if err == nil && !changed {
		err = fmt.Errorf("joining community %d changed nothing", e.CommunityID)
	}
	return err
}

func testConcurrentCommunityEvents(t *testing.T, s storage.Storage) {
	const n = 16
	seqs := make(chan int64, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := storage.CommunityEvent{CommunityID: 9, Type: "group_join", Object: "{}", CreatedAt: t0}
			if err := addEvent(s, &e); err != nil {
				t.Error(err)
				return
			}
			seqs <- e.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for q := range seqs {
		if seen[q] || q < 1 || q > n {
			t.Fatalf("seq %d repeated or out of 1..%d", q, n)
		}
		seen[q] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct numbers, want %d", len(seen), n)
	}
}

func testLongPollSettings(t *testing.T, s storage.Storage) {
	ls, err := s.LongPollSettings(ctx(), 5)
	must(t, err)
	if ls.Enabled || len(ls.Events) != 0 || ls.APIVersion == "" {
		t.Fatalf("never set: %+v", ls)
	}
	set := func(enabled bool, version string, events ...string) {
		t.Helper()
		got, err := s.UpdateLongPollSettings(ctx(), 5, func(ls *storage.LongPollSettings) error {
			ls.Enabled, ls.APIVersion, ls.Events = enabled, version, events
			return nil
		})
		must(t, err)
		if got.APIVersion != version {
			t.Fatalf("the update returned %+v", got)
		}
	}
	set(true, "5.199", "message_new", "message_reply")
	set(true, "5.131", "message_new")
	// An error from the update changes nothing.
	refused := errors.New("refused")
	if _, err := s.UpdateLongPollSettings(ctx(), 5, func(ls *storage.LongPollSettings) error {
		ls.Enabled = false
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("a refused update: %v", err)
	}
	ls, err = s.LongPollSettings(ctx(), 5)
	must(t, err)
	if !ls.Enabled || ls.APIVersion != "5.131" || len(ls.Events) != 1 || ls.Events[0] != "message_new" {
		t.Fatalf("after two sets: %+v", ls)
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
