package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

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
	code := storage.Code{Hash: hash("disabled code"), AppID: a.ID, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Minute), UsedAt: t0}
	wantErr(t, s.IssueGrant(ctx(), storage.GrantTokens{Spent: &code, Refresh: &r,
		Access: storage.Token{Hash: hash("disabled grant"), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowCode, CodeHash: &code.Hash}}), storage.ErrUserDisabled)
	_, err = s.GetCode(ctx(), code.Hash)
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
