package platform

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlite"
	"latchkey/internal/token"
)

// Client authentication reads the app through a short-lived cache: this
// node's own changes show at once, another process's within appTTL.
func TestAppCacheSeesChanges(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "apps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, _ := token.NewKeyring("app-cache-test-secret-0123456789abcdef")
	p := New(Options{Store: s, Keys: keys, Now: time.Now})
	age := time.Duration(0)
	p.Apps.cache.since = func(time.Time) time.Duration { return age }
	u, err := p.Users.CreateUser(ctx, NewUser{Login: "owner", Password: "owner-password"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := p.Apps.CreateApp(ctx, CLI, NewApp{OwnerID: u.ID, Title: "Cached", Type: storage.Web, RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Apps.AuthenticateClient(ctx, app.ID, app.ClientSecret); err != nil {
		t.Fatal(err)
	}

	// This node rotates and retires: the old secret stops at once.
	rotated, err := p.Apps.RotateSecret(ctx, CLI, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apps.RetireSecret(ctx, CLI, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Apps.AuthenticateClient(ctx, app.ID, app.ClientSecret); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("a secret this node retired: %v, want ErrBadSecret", err)
	}
	if _, _, err := p.Apps.AuthenticateClient(ctx, app.ID, rotated.ClientSecret); err != nil {
		t.Fatalf("the new secret: %v", err)
	}

	// Another process changes the secret: seen once the record is appTTL old.
	if _, err := s.UpdateApp(ctx, app.ID, func(a *storage.App) error {
		a.Secret.Hash = token.HashOf("changed elsewhere")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	age = appTTL / 2
	if _, _, err := p.Apps.AuthenticateClient(ctx, app.ID, rotated.ClientSecret); err != nil {
		t.Fatalf("within appTTL the cached record answers: %v", err)
	}
	age = appTTL
	if _, _, err := p.Apps.AuthenticateClient(ctx, app.ID, rotated.ClientSecret); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("after appTTL another process's change: %v, want ErrBadSecret", err)
	}

	// What a caller does to its record stays its own.
	a, err := p.Apps.LookupApp(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.RedirectURIs[0] = "https://evil.example/cb"
	if b, _ := p.Apps.LookupApp(ctx, app.ID); b.RedirectURIs[0] != "https://app.example/cb" {
		t.Fatalf("a caller's change reached the cache: %v", b.RedirectURIs)
	}
	if _, err := p.Apps.DeleteApp(ctx, CLI, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apps.LookupApp(ctx, app.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted app: %v, want not found", err)
	}
}
