package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2/clientcredentials"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// Tokens for a team's own API (RFC 8707 resource indicators): a service
// gets one with golang.org/x/oauth2's client credentials and the resource,
// with the API's scopes by name; the API sees it at introspection with its
// own credentials, another API does not, the built-in API refuses it, and
// revoking it (by the app, or by deleting the API) ends it everywhere.
func TestClientCredentialsForAnAPI(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		dev := e.user("dev", "")
		orders := e.api(dev.ID, "https://orders.example/api", storage.TokenOpaque)
		files := e.api(dev.ID, "https://files.example", storage.TokenOpaque)
		app := e.app(dev.ID, storage.Web, "https://svc.example/cb")
		if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, app.ID, true); err != nil {
			t.Fatal(err)
		}
		conf := clientcredentials.Config{ClientID: fmt.Sprint(app.ID), ClientSecret: app.ClientSecret, TokenURL: e.URL + "/access_token",
			Scopes: []string{"orders:read"}, EndpointParams: url.Values{"resource": {orders.Identifier}}}
		tok, err := conf.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok.AccessToken, "lks1") || tok.Expiry.IsZero() || time.Until(tok.Expiry) > time.Hour+time.Minute {
			t.Fatalf("a token for the API: %q expiring %v, want an opaque token living the API's hour", tok.AccessToken, tok.Expiry)
		}
		if got := tok.Extra("scope"); got != "orders:read" {
			t.Fatalf("scope %v, want orders:read", got)
		}

		m := e.introspectAs(orders, tok.AccessToken)
		if !active(m) || m["aud"] != orders.Identifier || m["scope"] != "orders:read" || m["client_id"] != fmt.Sprint(app.ID) ||
			m["sub"] != fmt.Sprint(app.ID) || m["exp"] == nil || m["iat"] == nil || m["token_type"] != "bearer" {
			t.Fatalf("the API's introspection: %v", m)
		}
		if m := e.introspectAs(files, tok.AccessToken); active(m) || len(m) != 1 {
			t.Fatalf("another API's introspection: %v, want only active:false", m)
		}
		if m := e.introspect(app, tok.AccessToken); !active(m) || m["aud"] != orders.Identifier {
			t.Fatalf("the app's own introspection: %v", m)
		}
		if code, _ := apiError(e.call("utils.getServerTime", tok.AccessToken, nil)); code != 5 {
			t.Fatalf("the built-in API took a token for another API: error %d, want 5", code)
		}
		// The built-in API's own token still introspects as before, and the
		// API does not see it.
		if m := e.introspectAs(orders, app.ServiceToken); active(m) {
			t.Fatalf("the API saw a built-in service token: %v", m)
		}

		// The app revokes it (RFC 7009): the API sees it no more.
		if status, _ := e.postForm("/oauth/revoke", url.Values{"token": {tok.AccessToken}}, fmt.Sprint(app.ID), app.ClientSecret); status != 200 {
			t.Fatalf("revoke: %d", status)
		}
		if m := e.introspectAs(orders, tok.AccessToken); active(m) {
			t.Fatalf("a revoked token: %v", m)
		}
		// Deleting the API ends every token for it.
		again, err := conf.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.P.APIs.DeleteAPI(ctx, platform.CLI, orders.ID); err != nil {
			t.Fatal(err)
		}
		if m := e.introspect(app, again.AccessToken); active(m) {
			t.Fatalf("a token of a deleted API: %v", m)
		}
		if _, err := conf.Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_target") {
			t.Fatalf("a token for a deleted API: %v, want invalid_target", err)
		}
	})
}

// An API that wants to verify tokens itself gets RFC 9068 JWTs, which
// go-jose verifies against /oauth/jwks, before and after a key rotation;
// revoked, one is inactive at introspection.
func TestJWTAccessTokensVerifyWithTheJWKS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dev := e.user("dev", "")
	orders := e.api(dev.ID, "https://orders.example/api", storage.TokenJWT)
	app := e.app(dev.ID, storage.Web, "https://svc.example/cb")
	if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	conf := clientcredentials.Config{ClientID: fmt.Sprint(app.ID), ClientSecret: app.ClientSecret, TokenURL: e.URL + "/access_token",
		Scopes: []string{"orders:read", "orders:write"}, EndpointParams: url.Values{"resource": {orders.Identifier}}}
	verify := func(raw string) (jwt.Claims, map[string]any, string) {
		t.Helper()
		resp, err := http.Get(e.URL + "/oauth/jwks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatalf("not a JWT: %v", err)
		}
		h := parsed.Headers[0]
		if h.ExtraHeaders["typ"] != "at+jwt" {
			t.Fatalf("typ %v, want at+jwt (RFC 9068)", h.ExtraHeaders["typ"])
		}
		keys := set.Key(h.KeyID)
		if len(keys) != 1 {
			t.Fatalf("the JWKS has no key %q", h.KeyID)
		}
		var std jwt.Claims
		var all map[string]any
		if err := parsed.Claims(keys[0].Key, &std, &all); err != nil {
			t.Fatalf("the signature does not verify with the JWKS: %v", err)
		}
		if err := std.Validate(jwt.Expected{Issuer: e.URL, AnyAudience: jwt.Audience{orders.Identifier}, Time: e.Clock.Now()}); err != nil {
			t.Fatalf("claims: %v", err)
		}
		return std, all, h.KeyID
	}
	tok, err := conf.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	std, all, kid := verify(tok.AccessToken)
	if all["client_id"] != fmt.Sprint(app.ID) || all["scope"] != "orders:read orders:write" || std.Subject != fmt.Sprint(app.ID) ||
		std.Expiry.Time().Sub(std.IssuedAt.Time()) != 5*time.Minute || std.ID == "" {
		t.Fatalf("claims %v", all)
	}
	if m := e.introspectAs(orders, tok.AccessToken); !active(m) || m["scope"] != "orders:read orders:write" {
		t.Fatalf("the API's introspection of a JWT: %v", m)
	}
	if _, err := e.P.Signing.Rotate(ctx, platform.CLI); err != nil {
		t.Fatal(err)
	}
	if _, _, stillKID := verify(tok.AccessToken); stillKID != kid {
		t.Fatal("the token's key changed")
	}
	next, err := conf.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, newKID := verify(next.AccessToken); newKID == kid {
		t.Fatal("a token issued after the rotation is signed with the old key")
	}
	if status, _ := e.postForm("/oauth/revoke", url.Values{"token": {next.AccessToken}}, fmt.Sprint(app.ID), app.ClientSecret); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if m := e.introspectAs(orders, next.AccessToken); active(m) {
		t.Fatalf("a revoked JWT: %v", m)
	}
	// A forged one (the payload changed, the signature kept) is inactive.
	parts := strings.Split(tok.AccessToken, ".")
	forged := parts[0] + "." + parts[1] + "x." + parts[2]
	if m := e.introspectAs(orders, forged); active(m) {
		t.Fatalf("a forged JWT: %v", m)
	}
}

// Bad input about resources and APIs gets a clear RFC error, never a 500.
func TestResourceRequestsRefusedClearly(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		dev := e.user("dev", "")
		orders := e.api(dev.ID, "https://orders.example/api", storage.TokenOpaque)
		files := e.api(dev.ID, "https://files.example", storage.TokenOpaque)
		app := e.app(dev.ID, storage.Web, "https://svc.example/cb")
		if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, app.ID, true); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(app.ID)
		cc := func(extra url.Values) url.Values {
			v := url.Values{"grant_type": {"client_credentials"}}
			for k, vs := range extra {
				v[k] = vs
			}
			return v
		}
		cases := []struct {
			name          string
			form          url.Values
			user, secret  string
			status        int
			code, mention string
		}{
			{"an unknown resource", cc(url.Values{"resource": {"https://nowhere.example"}}), id, app.ClientSecret, 400, "invalid_target", "names no API"},
			{"two resources", cc(url.Values{"resource": {orders.Identifier, files.Identifier}}), id, app.ClientSecret, 400, "invalid_target", "more than once"},
			{"a scope the API does not define", cc(url.Values{"resource": {orders.Identifier}, "scope": {"orders:delete"}}), id, app.ClientSecret, 400, "invalid_scope", "orders:delete"},
			{"VK scope names for an API", cc(url.Values{"resource": {orders.Identifier}, "scope": {"friends"}}), id, app.ClientSecret, 400, "invalid_scope", "friends"},
			{"an API's scopes without its resource", cc(url.Values{"scope": {"orders:read"}}), id, app.ClientSecret, 200, "", ""},
			{"an API's credentials as an app's", cc(url.Values{"resource": {orders.Identifier}}), orders.IntrospectionClientID, "whatever", 401, "invalid_client", "client_id"},
			{"a resource on the code grant", url.Values{"code": {"x"}, "resource": {orders.Identifier}}, id, app.ClientSecret, 400, "invalid_target", "client credentials grant"},
			{"a resource on a refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "resource": {orders.Identifier}}, id, app.ClientSecret, 400, "invalid_target", "built-in API"},
			{"a resource on an exchange", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"x"},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "resource": {orders.Identifier}}, id, app.ClientSecret, 400, "invalid_target", "built-in API"},
		}
		for _, c := range cases {
			status, m := e.postForm("/access_token", c.form, c.user, c.secret)
			desc, _ := m["error_description"].(string)
			if status != c.status || c.code != "" && (m["error"] != c.code || !strings.Contains(desc, c.mention)) {
				t.Errorf("%s: %d %v, want %d %s mentioning %q", c.name, status, m, c.status, c.code, c.mention)
			}
		}
		// Introspection with an API's wrong secret, or another API's token.
		if status, m := e.postForm("/oauth/introspect", url.Values{"token": {"x"}}, orders.IntrospectionClientID, "wrong"); status != 401 || m["error"] != "invalid_client" {
			t.Errorf("an API's wrong secret: %d %v", status, m)
		}
		if status, m := e.postForm("/oauth/introspect", url.Values{}, orders.IntrospectionClientID, orders.IntrospectionSecret); status != 400 || m["error"] != "invalid_request" {
			t.Errorf("an API's introspection without a token: %d %v", status, m)
		}
		// /authorize with an API's resource goes back to the app with the error.
		b := e.browser()
		q := url.Values{"client_id": {id}, "redirect_uri": {"https://svc.example/cb"}, "response_type": {"code"}, "state": {"s"}, "resource": {orders.Identifier}}
		to := b.get(e.URL + "/authorize?" + q.Encode())
		if got := query(t, to); got.Get("error") != "invalid_target" || got.Get("state") != "s" {
			t.Errorf("/authorize with an API's resource went to %q, want the redirect URI with invalid_target", to)
		}
	})
}

// RFC 9728: the built-in API and each gateway API describe themselves.
func TestProtectedResourceMetadata(t *testing.T) {
	e := newEnv(t)
	dev := e.user("dev", "")
	gw, err := e.P.APIs.CreateAPI(context.Background(), platform.CLI, platform.NewAPI{OwnerID: dev.ID, APISettings: platform.APISettings{
		Name: "Gateway", Slug: "orders", Upstream: "http://127.0.0.1:9",
		Scopes: []platform.ScopeSpec{{Name: "orders:read", EN: "Read your orders", RU: "Читать ваши заказы"}}}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(e.URL + "/.well-known/oauth-protected-resource" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, m := get("/method")
	if status != 200 || m["resource"] != e.URL+"/method" || fmt.Sprint(m["authorization_servers"]) != "["+e.URL+"]" || !strings.Contains(fmt.Sprint(m["scopes_supported"]), "friends") {
		t.Fatalf("the built-in API's metadata: %d %v", status, m)
	}
	status, m = get("/api/orders")
	if status != 200 || m["resource"] != gw.Identifier || gw.Identifier != e.URL+"/api/orders" || fmt.Sprint(m["scopes_supported"]) != "[orders:read]" || m["resource_name"] != "Gateway" {
		t.Fatalf("the gateway API's metadata: %d %v", status, m)
	}
	if status, _ := get("/api/nothing"); status != 404 {
		t.Fatalf("no such API: %d", status)
	}
}

// api creates an API with two scopes, orders:read and orders:write.
func (e *env) api(owner int64, identifier, format string) platform.APIView {
	e.t.Helper()
	v, err := e.P.APIs.CreateAPI(context.Background(), platform.CLI, platform.NewAPI{OwnerID: owner, Identifier: identifier, APISettings: platform.APISettings{
		Name: "Orders", TokenFormat: format, Scopes: []platform.ScopeSpec{
			{Name: "orders:read", EN: "Read your orders", RU: "Читать ваши заказы"},
			{Name: "orders:write", EN: "Place orders", RU: "Оформлять заказы"}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// introspectAs introspects tok with the API's own credentials.
func (e *env) introspectAs(api platform.APIView, tok string) map[string]any {
	e.t.Helper()
	status, m := e.postForm("/oauth/introspect", url.Values{"token": {tok}}, api.IntrospectionClientID, api.IntrospectionSecret)
	if status != 200 {
		e.t.Fatalf("introspection by %s: %d %v", api.Identifier, status, m)
	}
	return m
}
