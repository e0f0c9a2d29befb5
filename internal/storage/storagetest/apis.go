package storagetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

func newAPI(t *testing.T, s storage.Storage, owner int64, identifier, slug string) storage.API {
	t.Helper()
	a := storage.API{Identifier: identifier, Name: "Orders", OwnerID: owner, TokenFormat: storage.TokenOpaque, TokenTTL: time.Hour,
		Scopes:     []storage.APIScope{{Name: "orders:read", Bit: 0, EN: "Read your orders", RU: "Читать ваши заказы"}, {Name: "orders:write", Bit: 1, EN: "Place orders", RU: "Оформлять заказы"}},
		Slug:       slug,
		SecretHash: hash("introspection secret of " + identifier), CreatedAt: t0}
	must(t, s.CreateAPI(ctx(), &a))
	if a.ID == 0 {
		t.Fatal("CreateAPI set no id")
	}
	return a
}

func testAPIs(t *testing.T, s storage.Storage) {
	owner := newUser(t, s, "api-owner")
	other := newUser(t, s, "other-owner")
	a := newAPI(t, s, owner.ID, "https://orders.example/api", "orders")
	b := newAPI(t, s, other.ID, "https://files.example", "")
	got, err := s.GetAPI(ctx(), a.ID)
	must(t, err)
	if got.Identifier != a.Identifier || got.Name != "Orders" || got.OwnerID != owner.ID || !slices.Equal(got.Scopes, a.Scopes) ||
		got.TokenFormat != storage.TokenOpaque || got.TokenTTL != time.Hour || got.Slug != "orders" || got.SecretHash != a.SecretHash ||
		!got.CreatedAt.Equal(t0) || got.Routes == nil && len(a.Routes) > 0 {
		t.Fatalf("GetAPI = %+v, want %+v", got, a)
	}
	if byID, err := s.APIByIdentifier(ctx(), "https://files.example"); err != nil || byID.ID != b.ID {
		t.Fatalf("APIByIdentifier = %+v %v", byID, err)
	}
	_, err = s.APIByIdentifier(ctx(), "https://files.example/")
	wantErr(t, err, storage.ErrNotFound)
	if mine, err := s.ListAPIs(ctx(), owner.ID); err != nil || len(mine) != 1 || mine[0].ID != a.ID {
		t.Fatalf("ListAPIs(owner) = %v %v", mine, err)
	}
	if all, err := s.ListAPIs(ctx(), 0); err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("ListAPIs(0) = %v %v", all, err)
	}

	updated, err := s.UpdateAPI(ctx(), a.ID, func(a *storage.API) error {
		a.Name = "Orders v2"
		a.Scopes[1].Removed = true
		a.Scopes = append(a.Scopes, storage.APIScope{Name: "orders:cancel", Bit: 2, EN: "Cancel orders", RU: "Отменять заказы"})
		a.TokenFormat, a.TokenTTL, a.Rate = storage.TokenJWT, 5*time.Minute, 50
		a.Upstream, a.Slug = "http://10.0.0.5:8080", "orders-v2"
		a.Routes = []storage.APIRoute{{Method: "POST", Prefix: "/orders", Scope: "orders:write"}}
		a.SecretHash = hash("rotated")
		return nil
	})
	must(t, err)
	again, err := s.GetAPI(ctx(), a.ID)
	must(t, err)
	if again.Name != "Orders v2" || len(again.Scopes) != 3 || !again.Scopes[1].Removed || again.Scopes[2].Bit != 2 ||
		again.TokenFormat != storage.TokenJWT || again.TokenTTL != 5*time.Minute || again.Rate != 50 || again.Upstream != updated.Upstream ||
		again.Slug != "orders-v2" || !slices.Equal(again.Routes, updated.Routes) || again.SecretHash != hash("rotated") || again.Identifier != a.Identifier {
		t.Fatalf("after UpdateAPI: %+v", again)
	}
	refused := errors.New("refused")
	if _, err := s.UpdateAPI(ctx(), a.ID, func(a *storage.API) error { a.Name = "Not saved"; return refused }); err != refused {
		t.Fatalf("UpdateAPI returned %v, want the updater's own error", err)
	}
	if g, _ := s.GetAPI(ctx(), a.ID); g.Name != "Orders v2" {
		t.Fatalf("a refused update was written: %q", g.Name)
	}
	_, err = s.UpdateAPI(ctx(), 999999, func(*storage.API) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetAPI(ctx(), 999999)
	wantErr(t, err, storage.ErrNotFound)
}

func testAPIConflicts(t *testing.T, s storage.Storage) {
	owner := newUser(t, s, "api-owner")
	a := newAPI(t, s, owner.ID, "https://orders.example/api", "orders")
	newAPI(t, s, owner.ID, "https://other.example", "")
	newAPI(t, s, owner.ID, "https://third.example", "") // two without a slug are no conflict
	dup := storage.API{Identifier: a.Identifier, Name: "Again", OwnerID: owner.ID, TokenFormat: storage.TokenOpaque, TokenTTL: time.Hour, CreatedAt: t0}
	wantErr(t, s.CreateAPI(ctx(), &dup), storage.ErrConflict)
	sameSlug := storage.API{Identifier: "https://new.example", Name: "Slug", OwnerID: owner.ID, TokenFormat: storage.TokenOpaque, TokenTTL: time.Hour, Slug: "orders", CreatedAt: t0}
	wantErr(t, s.CreateAPI(ctx(), &sameSlug), storage.ErrConflict)
	orphan := storage.API{Identifier: "https://orphan.example", Name: "Orphan", OwnerID: 999999, TokenFormat: storage.TokenOpaque, TokenTTL: time.Hour, CreatedAt: t0}
	wantErr(t, s.CreateAPI(ctx(), &orphan), storage.ErrNotFound)
	apis, err := s.ListAPIs(ctx(), 0)
	must(t, err)
	_, err = s.UpdateAPI(ctx(), apis[1].ID, func(b *storage.API) error { b.Slug = "orders"; return nil })
	wantErr(t, err, storage.ErrConflict)
}

func testDeleteAPI(t *testing.T, s storage.Storage) {
	owner := newUser(t, s, "api-owner")
	app := newApp(t, s, owner.ID)
	a := newAPI(t, s, owner.ID, "https://orders.example/api", "")
	b := newAPI(t, s, owner.ID, "https://files.example", "")
	for i, api := range []int64{a.ID, a.ID, b.ID, 0} {
		tok := storage.Token{Hash: hash("api token " + string(rune('a'+i))), Kind: token.User, AppID: app.ID, UserID: owner.ID, Scope: scope.Mask(1), IssuedAt: t0, Flow: storage.FlowCode, APIID: api}
		must(t, s.CreateToken(ctx(), tok))
		if got, err := s.GetToken(ctx(), tok.Hash); err != nil || got.APIID != api {
			t.Fatalf("a token's API: %d %v, want %d", got.APIID, err, api)
		}
	}
	if listed, err := s.ListTokens(ctx(), storage.TokenFilter{APIID: a.ID, LiveOnly: true}); err != nil || len(listed) != 2 {
		t.Fatalf("the API's live tokens: %d %v, want 2", len(listed), err)
	}
	seq, err := s.LastRevocation(ctx())
	must(t, err)
	revoked, err := s.DeleteAPI(ctx(), a.ID, t0.Add(time.Minute))
	must(t, err)
	if len(revoked) != 2 {
		t.Fatalf("DeleteAPI revoked %d tokens, want the API's 2", len(revoked))
	}
	if logged, _, err := s.RevocationsAfter(ctx(), seq, 10); err != nil || len(logged) != 2 {
		t.Fatalf("the revocation log after DeleteAPI: %d %v, want 2", len(logged), err)
	}
	if got, _ := s.GetToken(ctx(), hash("api token a")); got.RevokedAt.IsZero() || got.RevokeReason != storage.RevokedAPIDeleted {
		t.Fatalf("the deleted API's token: %+v", got)
	}
	for _, h := range []string{"api token c", "api token d"} {
		if got, _ := s.GetToken(ctx(), hash(h)); !got.RevokedAt.IsZero() {
			t.Fatalf("%s of another API (or none) was revoked", h)
		}
	}
	_, err = s.GetAPI(ctx(), a.ID)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.DeleteAPI(ctx(), a.ID, t0)
	wantErr(t, err, storage.ErrNotFound)
}

func testAPIGrants(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "api-user")
	app := newApp(t, s, u.ID)
	a := newAPI(t, s, u.ID, "https://orders.example/api", "")

	code := storage.Code{Hash: hash("api code"), AppID: app.ID, UserID: u.ID, Scope: 0b11, APIID: a.ID, Claims: scope.OpenID | scope.Offline,
		RedirectURI: "https://app.example/cb", IssuedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	must(t, s.CreateCode(ctx(), code))
	got, err := s.GetCode(ctx(), code.Hash)
	must(t, err)
	if got.APIID != a.ID || got.Claims != code.Claims || got.Scope != 0b11 {
		t.Fatalf("a code for an API came back as %+v", got)
	}
	r := storage.RefreshToken{Hash: hash("api refresh"), Family: code.Hash, AppID: app.ID, UserID: u.ID, Scope: 0b1, APIID: a.ID, Claims: scope.OpenID,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, s.CreateRefreshToken(ctx(), r))
	used, err := s.UseRefreshToken(ctx(), r.Hash, app.ID, t0, unbound)
	must(t, err)
	if used.APIID != a.ID || used.Claims != scope.OpenID {
		t.Fatalf("a refresh token for an API came back as %+v", used)
	}
	next := storage.RefreshToken{Hash: hash("api refresh 2"), Family: code.Hash, AppID: app.ID, UserID: u.ID, Scope: 0b1, APIID: a.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, s.CreateRefreshToken(ctx(), next))

	dc := storage.DeviceCode{Hash: hash("api device"), UserCode: hash("API-CODE"), AppID: app.ID, Scope: 0b10, Status: storage.DevicePending,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Minute), APIID: a.ID, Claims: scope.OpenID}
	must(t, s.CreateDeviceCode(ctx(), dc))
	if got, err := s.DeviceCodeByUserCode(ctx(), dc.UserCode); err != nil || got.APIID != a.ID || got.Claims != scope.OpenID || got.Scope != 0b10 {
		t.Fatalf("a device code for an API came back as %+v %v", got, err)
	}

	// Consent to the API, beside consent to the built-in API.
	_, err = s.GetAPIConsent(ctx(), u.ID, app.ID, a.ID)
	wantErr(t, err, storage.ErrNotFound)
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: app.ID, APIID: a.ID, Scope: 0b01, CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: app.ID, APIID: a.ID, Scope: 0b10, CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}))
	c, err := s.GetAPIConsent(ctx(), u.ID, app.ID, a.ID)
	must(t, err)
	if c.Scope != 0b11 || !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0.Add(time.Hour)) || c.APIID != a.ID {
		t.Fatalf("merged API consent: %+v", c)
	}
	if _, err := s.GetConsent(ctx(), u.ID, app.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consent to an API is not consent to the built-in API: %v", err)
	}
	// Forgetting the app's consent forgets it for every API.
	must(t, s.DeleteConsent(ctx(), u.ID, app.ID))
	_, err = s.GetAPIConsent(ctx(), u.ID, app.ID, a.ID)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteConsent(ctx(), u.ID, app.ID), storage.ErrNotFound)

	// Deleting the API revokes its refresh tokens and forgets consent to it.
	must(t, s.MergeConsent(ctx(), storage.Consent{UserID: u.ID, AppID: app.ID, APIID: a.ID, Scope: 0b01, CreatedAt: t0, UpdatedAt: t0}))
	_, err = s.DeleteAPI(ctx(), a.ID, t0)
	must(t, err)
	if _, err := s.UseRefreshToken(ctx(), next.Hash, app.ID, t0, unbound); err == nil {
		t.Fatal("a refresh token of a deleted API still works")
	}
	_, err = s.GetAPIConsent(ctx(), u.ID, app.ID, a.ID)
	wantErr(t, err, storage.ErrNotFound)
}
