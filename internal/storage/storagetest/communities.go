package storagetest

import (
	"testing"
	"time"

	"latchkey/internal/storage"
)

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
