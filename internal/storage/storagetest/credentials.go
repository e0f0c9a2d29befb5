package storagetest

import (
	"errors"
	"testing"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

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

func testSigningKeys(t *testing.T, s storage.Storage) {
	older := storage.SigningKey{KID: "k1", Algorithm: "RS256", Sealed: []byte("sealed 1"), CreatedAt: t0}
	newer := storage.SigningKey{KID: "k2", Algorithm: "RS256", Sealed: []byte("sealed 2"), CreatedAt: t0.Add(time.Hour)}
	must(t, s.CreateSigningKey(ctx(), older))
	must(t, s.CreateSigningKey(ctx(), newer))
	wantErr(t, s.CreateSigningKey(ctx(), older), storage.ErrConflict)
	keys, err := s.ListSigningKeys(ctx())
	must(t, err)
	if len(keys) != 2 || keys[0].KID != "k2" || keys[1].KID != "k1" || string(keys[1].Sealed) != "sealed 1" || !keys[0].RetiredAt.IsZero() {
		t.Fatalf("ListSigningKeys = %+v, want k2 then k1", keys)
	}
	must(t, s.RetireSigningKey(ctx(), "k1", t0.Add(2*time.Hour)))
	wantErr(t, s.RetireSigningKey(ctx(), "k1", t0.Add(3*time.Hour)), storage.ErrNotFound) // retired already
	wantErr(t, s.RetireSigningKey(ctx(), "no such key", t0), storage.ErrNotFound)
	keys, _ = s.ListSigningKeys(ctx())
	if len(keys) != 2 || !keys[1].RetiredAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after retiring k1: %+v", keys)
	}
}
