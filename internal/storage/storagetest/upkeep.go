package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

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

func testPingAndClose(t *testing.T, s storage.Storage) {
	must(t, s.Ping(ctx()))
	must(t, s.Close())
}
