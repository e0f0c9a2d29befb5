package storagetest

import (
	"sync"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

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
