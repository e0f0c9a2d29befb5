package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

func testCodes(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	c := storage.Code{Hash: hash("code-1"), AppID: a.ID, UserID: u.ID, CommunityIDs: []int64{5, 7}, Scope: scope.Messages,
		RedirectURI: "https://app.example/cb", CodeChallenge: "abc", CodeChallengeMethod: "S256", IP: "198.51.100.1",
		IssuedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), Authn: storage.Authn{AuthTime: t0.Add(-time.Hour), AMR: []string{"pwd", "otp", "mfa"}, SID: "sid-1"}}
	must(t, s.CreateCode(ctx(), c))
	wantErr(t, s.CreateCode(ctx(), c), storage.ErrConflict)
	got, err := s.GetCode(ctx(), c.Hash)
	must(t, err)
	if got.Hash != c.Hash || got.AppID != a.ID || !slices.Equal(got.CommunityIDs, c.CommunityIDs) || got.CodeChallenge != "abc" || !got.UsedAt.IsZero() ||
		!got.AuthTime.Equal(c.AuthTime) || !slices.Equal(got.AMR, c.AMR) || got.SID != c.SID {
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

func testIssueGrant(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	grant := func(name string, code storage.Code) storage.GrantTokens {
		return storage.GrantTokens{Spent: &code,
			Access:  storage.Token{Hash: hash(name + " access"), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Friends, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), Flow: storage.FlowCode, CodeHash: &code.Hash},
			Refresh: &storage.RefreshToken{Hash: hash(name + " refresh"), Family: code.Hash, AppID: a.ID, UserID: u.ID, Scope: scope.Friends, IssuedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}}
	}
	stored := func(g storage.GrantTokens) (code, access, refresh bool) {
		_, err := s.GetCode(ctx(), g.Spent.Hash)
		code = err == nil
		_, err = s.GetToken(ctx(), g.Access.Hash)
		access = err == nil
		_, err = s.GetRefreshToken(ctx(), g.Refresh.Hash, a.ID)
		return code, access, err == nil
	}
	c := storage.Code{Hash: hash("grant code"), AppID: a.ID, UserID: u.ID, Scope: scope.Friends, RedirectURI: "https://app.example/cb",
		IssuedAt: t0, ExpiresAt: t0.Add(time.Minute), UsedAt: t0.Add(time.Second)}
	first := grant("first", c)
	must(t, s.IssueGrant(ctx(), first))
	if code, access, refresh := stored(first); !code || !access || !refresh {
		t.Fatalf("after IssueGrant: code %v, access token %v, refresh token %v stored; want all", code, access, refresh)
	}
	if got, err := s.GetCode(ctx(), c.Hash); err != nil || !got.UsedAt.Equal(c.UsedAt) || got.UserID != u.ID {
		t.Fatalf("the spent code's row: %+v, %v", got, err)
	}
	if got, err := s.GetToken(ctx(), first.Access.Hash); err != nil || got.CodeHash == nil || *got.CodeHash != c.Hash || got.Scope != scope.Friends {
		t.Fatalf("the grant's access token: %+v, %v", got, err)
	}
	// The code spent again: a conflict, and nothing of the second grant.
	second := grant("second", c)
	wantErr(t, s.IssueGrant(ctx(), second), storage.ErrConflict)
	if _, access, refresh := stored(second); access || refresh {
		t.Fatalf("a second spend of the code stored its access token (%v) or refresh token (%v)", access, refresh)
	}
	// A grant refused for its revoked family stores nothing, its code's row
	// neither: the code is not spent by a refused issuance.
	revoked := c
	revoked.Hash = hash("revoked grant code")
	if _, err := s.RevokeGrant(ctx(), revoked.Hash, storage.RevokedCodeReplay, t0); err != nil {
		t.Fatal(err)
	}
	third := grant("third", revoked)
	wantErr(t, s.IssueGrant(ctx(), third), storage.ErrGrantRevoked)
	if code, access, refresh := stored(third); code || access || refresh {
		t.Fatalf("a refused grant stored: code %v, access token %v, refresh token %v", code, access, refresh)
	}
	// Without a code to spend nor a refresh token: the access token alone.
	lone := grant("lone", c)
	lone.Spent, lone.Refresh = nil, nil
	must(t, s.IssueGrant(ctx(), lone))
	if _, err := s.GetToken(ctx(), lone.Access.Hash); err != nil {
		t.Fatalf("the lone access token: %v", err)
	}
	// Of concurrent spends of one code exactly one stores its tokens.
	race := c
	race.Hash = hash("raced grant code")
	const n = 8
	results := make(chan error, n)
	for i := range n {
		go func() { results <- s.IssueGrant(ctx(), grant(fmt.Sprint("raced ", i), race)) }()
	}
	wins := 0
	for range n {
		switch err := <-results; {
		case err == nil:
			wins++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("IssueGrant: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent spends of one code stored their tokens, want exactly 1", wins)
	}
}

func testRefreshHolder(t *testing.T, s storage.Storage) {
	u := &storage.User{Login: "holder", PasswordHash: "h", CreatedAt: t0}
	must(t, s.CreateUser(ctx(), u))
	a := newApp(t, s, u.ID)
	r := storage.RefreshToken{Hash: token.HashOf("refresh-holder"), Family: token.HashOf("family"), AppID: a.ID, UserID: u.ID,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), Holder: storage.Holder{JKT: "key", DeviceID: "phone"},
		Authn: storage.Authn{AuthTime: t0.Add(-time.Minute), AMR: []string{"hwk", "user"}, SID: "sid-2"}}
	must(t, s.CreateRefreshToken(ctx(), r))
	got, err := s.GetRefreshToken(ctx(), r.Hash, a.ID)
	must(t, err)
	if got.Holder != r.Holder || got.Family != r.Family || got.UserID != u.ID || !got.ExpiresAt.Equal(r.ExpiresAt) || !got.UsedAt.IsZero() ||
		!got.AuthTime.Equal(r.AuthTime) || !slices.Equal(got.AMR, r.AMR) || got.SID != r.SID {
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

// testConcurrentRevokeGrant stores tokens and refresh tokens into a grant
// while the grant is revoked: every one is then either refused or revoked,
// none live (a rotation racing a reuse leaves nothing for a thief).
func testConcurrentRevokeGrant(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "revoked-while-issuing")
	a := newApp(t, s, u.ID)
	for round := range 5 {
		family := hash(fmt.Sprint("racing grant ", round))
		const writers, each = 4, 10
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					name := fmt.Sprint("racing ", round, " ", w, " ", i)
					err := s.CreateToken(ctx(), storage.Token{Hash: hash(name), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowRefresh, CodeHash: &family})
					if err != nil && !errors.Is(err, storage.ErrGrantRevoked) {
						t.Error(err)
					}
					err = s.CreateRefreshToken(ctx(), storage.RefreshToken{Hash: hash("refresh " + name), Family: family, AppID: a.ID, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)})
					if err != nil && !errors.Is(err, storage.ErrGrantRevoked) {
						t.Error(err)
					}
				}
			})
		}
		_, err := s.RevokeGrant(ctx(), family, storage.RevokedRefreshReuse, t0)
		must(t, err)
		wg.Wait()
		live, err := s.ListTokens(ctx(), storage.TokenFilter{UserID: u.ID, LiveOnly: true})
		must(t, err)
		if len(live) > 0 {
			t.Fatalf("round %d: %d tokens stored while their grant was revoked are live", round, len(live))
		}
		for w := range writers {
			for i := range each {
				_, err := s.UseRefreshToken(ctx(), hash(fmt.Sprint("refresh racing ", round, " ", w, " ", i)), a.ID, t0, unbound)
				if err == nil {
					t.Fatalf("round %d: a refresh token stored while its grant was revoked is live", round)
				}
			}
		}
	}
}
