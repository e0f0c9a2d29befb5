// Package storagetest is the conformance suite every storage backend runs:
// the same behaviours, the same errors, on SQLite and on PostgreSQL.
package storagetest

import (
	"context"
	"errors"
	"fmt"
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
		{"apis", RunAPIs},
		{"communities", RunCommunities},
		{"consents", RunConsents},
		{"grants", RunGrants},
		{"tokens", RunTokens},
		{"credentials", RunCredentials},
		{"messages", RunMessages},
		{"bots", RunBots},
		{"callbacks", RunCallbacks},
		{"registrations", RunRegistrations},
		{"sessions", RunSessions},
		{"factors", RunFactors},
		{"upstreams", RunUpstreams},
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

// RunAPIs is the suite of storage.APIs: the resource servers apps get
// tokens for.
func RunAPIs(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"apis: create, get, by identifier, list, update", testAPIs},
		{"apis: a taken identifier or slug is a conflict, an unknown owner not found", testAPIConflicts},
		{"apis: delete revokes the API's tokens only, and logs them", testDeleteAPI},
		{"apis: codes, refresh tokens and consents for an API", testAPIGrants},
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
		{"a grant's code use and tokens: one write, all or none, the code spent once", testIssueGrant},
		{"pushed requests: the app's, spent once, until they expire", testPushedRequests},
		{"device codes: by user code, a taken user code, updated in one transaction", testDeviceCodes},
		{"refresh tokens: read with their holder, spent once and only by a use that names it", testRefreshHolder},
		{"refresh tokens: revoked by family, by app and user, by user", testRevokeRefreshTokens},
		{"grants: revoked in one write, and nothing stored into them afterwards", testRevokeGrant},
		{"grants: tokens stored while the grant is revoked are refused or revoked", testConcurrentRevokeGrant},
	})
}

// RunTokens is the suite of storage.Tokens: access tokens, their revocation log, DPoP proofs.
func RunTokens(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	runCases(t, newStore, []testCase{
		{"tokens: create, get, list, revoke by filter", testTokens},
		{"tokens: an empty filter is refused", testEmptyFilter},
		{"tokens: what was exchanged from a token, at any depth", testDerivedTokens},
		{"tokens: created in bulk, all or none", testCreateTokens},
		{"tokens: revoked by user alone, in every app and in none", testRevokeByUser},
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
		{"deliveries to apps: queued, claimed in order per app beside the servers', gone with their app", testAppDeliveries},
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
