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
	keyed, err := s.UpdateApp(ctx(), a.ID, func(got *storage.App) error {
		got.AuthMethod, got.JWKS, got.JWKSURI = "private_key_jwt", `{"keys":[]}`, ""
		return nil
	})
	must(t, err)
	if reread, _ := s.GetApp(ctx(), a.ID); keyed.AuthMethod != "private_key_jwt" || reread.AuthMethod != "private_key_jwt" || reread.JWKS != `{"keys":[]}` {
		t.Fatalf("the authentication method and keys were not kept: %+v", reread)
	}
	if _, err := s.UpdateApp(ctx(), a.ID, func(got *storage.App) error { got.AuthMethod, got.JWKS = "", ""; return nil }); err != nil {
		t.Fatal(err)
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
