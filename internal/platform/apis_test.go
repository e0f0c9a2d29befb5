package platform_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// An API's settings are checked as the contract says; a scope keeps its
// bit for life; the gateway fields are an operator's; a change shows at
// once on the node that made it.
func TestAPIRules(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		owner := platform.Actor{UserID: f.owner.ID}
		read := platform.ScopeSpec{Name: "orders:read", EN: "Read your orders", RU: "Читать ваши заказы"}
		write := platform.ScopeSpec{Name: "orders:write", EN: "Place orders", RU: "Оформлять заказы"}
		good := platform.NewAPI{OwnerID: f.owner.ID, Identifier: "https://orders.example/api", APISettings: platform.APISettings{Name: "Orders", Scopes: []platform.ScopeSpec{read, write}}}
		bad := func(name string, change func(a *platform.NewAPI), field string) {
			t.Helper()
			a := good
			a.Scopes = append([]platform.ScopeSpec(nil), good.Scopes...)
			change(&a)
			_, err := f.p.APIs.CreateAPI(ctx, owner, a)
			var pe *platform.Error
			if !errors.As(err, &pe) || pe.Field != field {
				t.Errorf("%s: %v, want an error about %s", name, err, field)
			}
		}
		bad("plain http", func(a *platform.NewAPI) { a.Identifier = "http://orders.example" }, "identifier")
		bad("a fragment", func(a *platform.NewAPI) { a.Identifier = "https://orders.example/#x" }, "identifier")
		bad("a relative identifier", func(a *platform.NewAPI) { a.Identifier = "/api" }, "identifier")
		bad("the built-in API's", func(a *platform.NewAPI) { a.Identifier = "https://lk.example/method" }, "identifier")
		bad("no name", func(a *platform.NewAPI) { a.Name = " " }, "name")
		bad("an upper-case scope", func(a *platform.NewAPI) { a.Scopes[0].Name = "Orders" }, "scope")
		bad("OpenID Connect's scope", func(a *platform.NewAPI) { a.Scopes[0].Name = "openid" }, "scope")
		bad("a scope twice", func(a *platform.NewAPI) { a.Scopes[1].Name = a.Scopes[0].Name }, "scope")
		bad("no Russian description", func(a *platform.NewAPI) { a.Scopes[0].RU = "" }, "scope")
		bad("an unknown format", func(a *platform.NewAPI) { a.TokenFormat = "paseto" }, "token format")
		bad("a lifetime of a second", func(a *platform.NewAPI) { a.TokenTTL = time.Second }, "token ttl")
		bad("an upstream without a slug", func(a *platform.NewAPI) { a.Upstream = "http://10.0.0.1" }, "upstream")
		if _, err := f.p.APIs.CreateAPI(ctx, owner, platform.NewAPI{OwnerID: f.owner.ID, APISettings: platform.APISettings{Name: "GW", Slug: "gw", Upstream: "http://10.0.0.1"}}); platform.KindOf(err) != platform.Forbidden {
			t.Errorf("a developer setting an upstream: %v, want forbidden (an upstream is a place in the operator's network)", err)
		}

		v, err := f.p.APIs.CreateAPI(ctx, owner, good)
		if err != nil {
			t.Fatal(err)
		}
		if v.TokenFormat != storage.TokenOpaque || v.TokenTTL != time.Hour || v.IntrospectionSecret == "" || v.IntrospectionClientID != "api-"+itoa(v.ID) {
			t.Fatalf("defaults and credentials: %+v", v)
		}
		if _, err := f.p.APIs.CreateAPI(ctx, owner, good); platform.KindOf(err) != platform.Conflict {
			t.Fatalf("the same identifier again: %v", err)
		}
		api, err := f.p.APIs.Resource(ctx, good.Identifier)
		if err != nil || api == nil || api.ID != v.ID {
			t.Fatalf("Resource: %v %v", api, err)
		}
		both, err := platform.Scopes(api, []string{"orders:read", "orders:write"})
		if err != nil || both != 0b11 {
			t.Fatalf("scopes by name: %b %v", both, err)
		}
		// Removing orders:read and adding orders:cancel: write keeps bit 1,
		// cancel takes bit 2, bit 0 is never given again.
		cancel := platform.ScopeSpec{Name: "orders:cancel", EN: "Cancel orders", RU: "Отменять заказы"}
		if _, err := f.p.APIs.UpdateAPI(ctx, owner, v.ID, platform.APISettings{Name: "Orders", Scopes: []platform.ScopeSpec{write, cancel}}); err != nil {
			t.Fatal(err)
		}
		api, _ = f.p.APIs.Resource(ctx, good.Identifier)
		if m, err := platform.Scopes(api, []string{"orders:write", "orders:cancel"}); err != nil || m != 0b110 {
			t.Fatalf("after the change (seen at once on this node): %b %v", m, err)
		}
		if _, err := platform.Scopes(api, []string{"orders:read"}); !errors.Is(err, platform.ErrUndefinedScope) {
			t.Fatalf("a removed scope: %v", err)
		}
		if names := platform.ScopeNames(api, scope.Mask(0b111)); strings.Join(names, " ") != "orders:write orders:cancel" {
			t.Fatalf("names of an old token's bits: %v (a removed scope grants nothing)", names)
		}
		if _, err := f.p.APIs.UpdateAPI(ctx, platform.Actor{UserID: f.user(t, "stranger").ID}, v.ID, platform.APISettings{Name: "Mine"}); platform.KindOf(err) != platform.Forbidden {
			t.Fatalf("another developer's change: %v", err)
		}

		// The introspection secret: the current one only.
		if _, err := f.p.APIs.AuthenticateAPI(ctx, v.IntrospectionClientID, v.IntrospectionSecret); err != nil {
			t.Fatal(err)
		}
		rotated, err := f.p.APIs.RotateSecret(ctx, owner, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ id, secret string }{{v.IntrospectionClientID, v.IntrospectionSecret}, {"api-x", rotated.IntrospectionSecret}, {itoa(v.ID), rotated.IntrospectionSecret}} {
			if _, err := f.p.APIs.AuthenticateAPI(ctx, c.id, c.secret); !errors.Is(err, platform.ErrBadAPICredentials) {
				t.Fatalf("%q with an old or wrong secret: %v", c.id, err)
			}
		}
		if _, err := f.p.APIs.AuthenticateAPI(ctx, rotated.IntrospectionClientID, rotated.IntrospectionSecret); err != nil {
			t.Fatal(err)
		}

		// Deleted: the resource names nothing, at once.
		if _, err := f.p.APIs.DeleteAPI(ctx, owner, v.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.APIs.Resource(ctx, good.Identifier); !errors.Is(err, platform.ErrUnknownResource) {
			t.Fatalf("a deleted API's resource: %v", err)
		}
		if api, err := f.p.APIs.Resource(ctx, "https://lk.example/method"); api != nil || err != nil {
			t.Fatalf("the built-in API's identifier: %v %v, want nil (the built-in API)", api, err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// With an ES256 key, JWT access tokens are signed ES256 (id_tokens stay
// RS256), verify, and are checked like every token; retiring the ES256 key
// goes back to RS256; the current RS256 key cannot be retired.
func TestES256AccessTokens(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if _, err := f.p.Signing.RotateAlg(ctx, platform.CLI, "HS256"); !errors.Is(err, platform.ErrKeyAlgorithm) {
			t.Fatalf("an HMAC signing key: %v", err)
		}
		api, err := f.p.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: f.owner.ID, Identifier: "https://orders.example/api",
			APISettings: platform.APISettings{Name: "Orders", TokenFormat: storage.TokenJWT, Scopes: []platform.ScopeSpec{{Name: "orders:read", EN: "Read", RU: "Читать"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Apps.SetClientCredentials(ctx, platform.CLI, f.app.ID, true); err != nil {
			t.Fatal(err)
		}
		app, _ := f.p.Apps.LookupApp(ctx, f.app.ID)
		alg := func(raw string) string {
			t.Helper()
			h, _, _ := strings.Cut(raw, ".")
			b, err := base64.RawURLEncoding.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			var header struct{ Alg string }
			json.Unmarshal(b, &header)
			return header.Alg
		}
		issue := func() string {
			t.Helper()
			tok, err := f.p.Issuer.ClientCredentials(ctx, app, app.Secret.Hash, "", &api.API, 1, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.p.Tokens.CheckAccessToken(ctx, tok.Access); err != nil {
				t.Fatalf("a %s access token does not check: %v", alg(tok.Access), err)
			}
			return tok.Access
		}
		if a := alg(issue()); a != "RS256" {
			t.Fatalf("without an ES256 key: %s", a)
		}
		es, err := f.p.Signing.RotateAlg(ctx, platform.CLI, "ES256")
		if err != nil {
			t.Fatal(err)
		}
		if a := alg(issue()); a != "ES256" {
			t.Fatalf("with an ES256 key: %s", a)
		}
		if id, err := f.p.Signing.Sign(ctx, map[string]any{"sub": "1"}); err != nil || alg(id) != "RS256" {
			t.Fatalf("an id_token with an ES256 key about: %v %v", alg(id), err)
		}
		keys, err := f.p.Signing.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		current := 0
		for _, k := range keys {
			if k.Current {
				current++
				if k.Algorithm == "RS256" {
					if err := f.p.Signing.Retire(ctx, platform.CLI, k.KID); !errors.Is(err, platform.ErrCurrentKey) {
						t.Fatalf("retiring the current RS256 key: %v", err)
					}
				}
			}
		}
		if current != 2 {
			t.Fatalf("keys %+v, want a current key of each algorithm", keys)
		}
		if err := f.p.Signing.Retire(ctx, platform.CLI, es.KID); err != nil {
			t.Fatalf("retiring the ES256 key: %v", err)
		}
		if a := alg(issue()); a != "RS256" {
			t.Fatalf("after retiring the ES256 key: %s", a)
		}
	})
}
