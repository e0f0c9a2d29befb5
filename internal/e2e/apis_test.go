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

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
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
		parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
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
	// An ES256 key: access tokens are signed with it, ten times cheaper.
	if _, err := e.P.Signing.RotateAlg(ctx, platform.CLI, "ES256"); err != nil {
		t.Fatal(err)
	}
	es, err := conf.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, all, _ := verify(es.AccessToken); all["aud"] != orders.Identifier {
		t.Fatalf("an ES256 token's claims: %v", all)
	}
	if parsed, _ := jwt.ParseSigned(es.AccessToken, []jose.SignatureAlgorithm{jose.ES256}); parsed == nil {
		t.Fatal("with an ES256 key, the access token is not ES256")
	}
	if m := e.introspectAs(orders, es.AccessToken); !active(m) {
		t.Fatalf("the API's introspection of an ES256 token: %v", m)
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
			{"an API's scopes without its resource", cc(url.Values{"scope": {"orders:read"}}), id, app.ClientSecret, 400, "invalid_scope", "with its resource"},
			{"VK's names without a resource, as before", cc(url.Values{"scope": {"friends"}}), id, app.ClientSecret, 200, "", ""},
			{"an API's credentials as an app's", cc(url.Values{"resource": {orders.Identifier}}), orders.IntrospectionClientID, "whatever", 401, "invalid_client", "client_id"},
			{"an unknown resource on an exchange", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"x"},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "resource": {"https://nowhere.example"}}, id, app.ClientSecret, 400, "invalid_target", "names no API"},
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
		// /authorize: each refusal goes back to the app with the error.
		b := e.browser()
		for _, c := range []struct {
			name string
			q    url.Values
			code string
		}{
			{"an unknown resource", url.Values{"resource": {"https://nowhere.example"}, "scope": {"orders:read"}}, "invalid_target"},
			{"two resources", url.Values{"resource": {orders.Identifier, files.Identifier}}, "invalid_target"},
			{"VK scope names for an API", url.Values{"resource": {orders.Identifier}, "scope": {"friends"}}, "invalid_scope"},
			{"an API's scopes without its resource", url.Values{"scope": {"orders:read"}}, "invalid_scope"},
			{"the implicit flow for an API", url.Values{"resource": {orders.Identifier}, "response_type": {"token"}}, "invalid_request"},
			{"community tokens for an API", url.Values{"resource": {orders.Identifier}, "group_ids": {"1"}}, "invalid_request"},
		} {
			q := url.Values{"client_id": {id}, "redirect_uri": {"https://svc.example/cb"}, "response_type": {"code"}, "state": {"s"}}
			for k, v := range c.q {
				q[k] = v
			}
			to := b.get(e.URL + "/authorize?" + q.Encode())
			got, _ := url.Parse(to)
			params := got.Query()
			if got.Fragment != "" {
				params, _ = url.ParseQuery(got.Fragment)
			}
			if params.Get("error") != c.code || params.Get("state") != "s" {
				t.Errorf("/authorize with %s went to %q, want the redirect URI with %s", c.name, to, c.code)
			}
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

// golang.org/x/oauth2 gets a token for an API through the code flow with
// PKCE and a resource, a browser filling the forms: the consent dialog
// names the API and its scopes' descriptions; the token is the API's (its
// introspection sees it; /method/ refuses it); a refresh narrows, never
// widens (invalid_scope) nor switches the resource (invalid_target), each
// refusal leaving the refresh token unspent; consent is remembered per
// API: the same request again skips the dialog, another API's asks.
func TestCodeFlowForAnAPI(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		dev := e.user("dev", "")
		alice := e.user("alice", "alice@example.com")
		orders := e.api(dev.ID, "https://orders.example/api", storage.TokenOpaque)
		if _, err := e.P.APIs.UpdateAPI(ctx, platform.CLI, orders.ID, platform.APISettings{Name: "Orders", Scopes: []platform.ScopeSpec{
			{Name: "orders:read", EN: "Read your orders", RU: "Читать ваши заказы"},
			{Name: "orders:write", EN: "Place orders", RU: "Оформлять заказы"},
			{Name: "orders:admin", EN: "Manage the shop", RU: "Управлять магазином"}}}); err != nil {
			t.Fatal(err)
		}
		files := e.api(dev.ID, "https://files.example", storage.TokenOpaque)
		redirect := "https://svc.example/cb"
		app := e.app(dev.ID, storage.Web, redirect)
		conf := &oauth2.Config{ClientID: fmt.Sprint(app.ID), ClientSecret: app.ClientSecret, RedirectURL: redirect,
			Scopes:   []string{"orders:read", "orders:write", "openid", "email"},
			Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/access_token", AuthStyle: oauth2.AuthStyleInHeader}}
		verifier := oauth2.GenerateVerifier()
		resource := oauth2.SetAuthURLParam("resource", orders.Identifier)

		b := e.browser()
		if to := b.get(conf.AuthCodeURL("st-1", resource, oauth2.S256ChallengeOption(verifier))); to != "" {
			t.Fatalf("authorize went to %s before login", to)
		}
		if to := b.login("alice", "password-alice"); to != "" {
			t.Fatalf("login went to %s, want the consent dialog", to)
		}
		for _, want := range []string{"Orders", "Read your orders", "Place orders", "See your email address"} {
			if !strings.Contains(b.page, want) {
				t.Errorf("the consent dialog lacks %q", want)
			}
		}
		if strings.Contains(b.page, "Manage the shop") {
			t.Error("the consent dialog shows a scope not asked for")
		}
		to := b.approve()
		q := query(t, to)
		if q.Get("state") != "st-1" || q.Get("code") == "" {
			t.Fatalf("approve went to %s", to)
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier), resource)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken == "" || tok.Extra("scope") != "orders:read orders:write" || tok.Extra("id_token") == nil || time.Until(tok.Expiry) > time.Hour+time.Minute {
			t.Fatalf("the token for the API: %+v scope %v", tok, tok.Extra("scope"))
		}
		m := e.introspectAs(orders, tok.AccessToken)
		if !active(m) || m["sub"] != fmt.Sprint(alice.ID) || m["scope"] != "orders:read orders:write" || m["aud"] != orders.Identifier || m["client_id"] != fmt.Sprint(app.ID) {
			t.Fatalf("the API's introspection: %v", m)
		}
		if code, _ := apiError(e.call("users.get", tok.AccessToken, nil)); code != 5 {
			t.Fatalf("/method/ took the API's user token: error %d", code)
		}

		refresh := func(rt string, extra url.Values) (int, map[string]any) {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			for k, v := range extra {
				form[k] = v
			}
			return e.postForm("/access_token", form, fmt.Sprint(app.ID), app.ClientSecret)
		}
		for _, c := range []struct {
			name  string
			extra url.Values
			code  string
		}{
			{"a scope the grant lacks", url.Values{"scope": {"orders:admin"}}, "invalid_scope"},
			{"a scope the API lacks", url.Values{"scope": {"orders:delete"}}, "invalid_scope"},
			{"another API", url.Values{"resource": {files.Identifier}}, "invalid_target"},
			{"the built-in API", url.Values{"resource": {e.URL + "/method"}}, "invalid_target"},
		} {
			if status, m := refresh(tok.RefreshToken, c.extra); status != 400 || m["error"] != c.code {
				t.Errorf("a refresh asking %s: %d %v, want %s", c.name, status, m, c.code)
			}
		}
		status, narrowed := refresh(tok.RefreshToken, url.Values{"scope": {"orders:read"}, "resource": {orders.Identifier}})
		if status != 200 || narrowed["scope"] != "orders:read" || narrowed["refresh_token"] == nil {
			t.Fatalf("a narrowing refresh after the refusals (the token unspent): %d %v", status, narrowed)
		}
		if m := e.introspectAs(orders, narrowed["access_token"].(string)); m["scope"] != "orders:read" {
			t.Fatalf("the narrowed token: %v", m)
		}

		// Token exchange (RFC 8693): narrower, for the same API only.
		exchange := func(subject string, extra url.Values) (int, map[string]any) {
			form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
			for k, v := range extra {
				form[k] = v
			}
			return e.postForm("/access_token", form, fmt.Sprint(app.ID), app.ClientSecret)
		}
		status, exchanged := exchange(tok.AccessToken, url.Values{"scope": {"orders:read"}, "resource": {orders.Identifier}})
		if status != 200 || exchanged["scope"] != "orders:read" {
			t.Fatalf("an exchange for fewer scopes of the API: %d %v", status, exchanged)
		}
		if m := e.introspectAs(orders, exchanged["access_token"].(string)); !active(m) || m["scope"] != "orders:read" || m["sub"] != fmt.Sprint(alice.ID) {
			t.Fatalf("the exchanged token at the API: %v", m)
		}
		for _, c := range []struct {
			name  string
			extra url.Values
			code  string
		}{
			{"another API", url.Values{"resource": {files.Identifier}}, "invalid_target"},
			{"the built-in API", url.Values{"resource": {e.URL + "/method"}}, "invalid_target"},
			{"a scope the token lacks", url.Values{"scope": {"orders:admin"}}, "invalid_scope"},
			{"VK's scope names", url.Values{"scope": {"friends"}}, "invalid_scope"},
		} {
			if status, m := exchange(tok.AccessToken, c.extra); status != 400 || m["error"] != c.code {
				t.Errorf("an exchange asking %s: %d %v, want %s", c.name, status, m, c.code)
			}
		}

		// Consent is remembered for this API: no dialog the second time.
		if to := b.get(conf.AuthCodeURL("st-2", resource, oauth2.S256ChallengeOption(verifier))); query(t, to).Get("code") == "" {
			t.Fatalf("the same request again showed a page, want straight back with a code: %q", to)
		}
		// Another API of the same app asks again.
		other := conf.AuthCodeURL("st-3", oauth2.SetAuthURLParam("resource", files.Identifier), oauth2.S256ChallengeOption(verifier))
		other = strings.Replace(other, "orders%3Aread+orders%3Awrite", "orders%3Aread", 1)
		if to := b.get(other); to != "" || !strings.Contains(b.page, `value="allow"`) {
			t.Fatalf("a request for another API skipped the dialog: %q", to)
		}
		// "Remove access" ends the API's tokens and its consent.
		if err := e.P.Tokens.RemoveAppAccess(ctx, platform.Actor{UserID: alice.ID}, alice.ID, app.ID); err != nil {
			t.Fatal(err)
		}
		if m := e.introspectAs(orders, narrowed["access_token"].(string)); active(m) {
			t.Fatalf("a token after Remove access: %v", m)
		}
		if to := b.get(conf.AuthCodeURL("st-4", resource, oauth2.S256ChallengeOption(verifier))); to != "" {
			t.Fatalf("after Remove access the dialog is skipped: %q", to)
		}
	})
}

// In Chromium, the consent dialog for an API names it and shows its
// scopes' descriptions in the page's language, English and Russian, and
// approving it ends at the app with a code.
func TestBrowserConsentForAnAPIInBothLanguages(t *testing.T) {
	e := newEnv(t)
	dev := e.user("dev", "")
	orders := e.api(dev.ID, "https://orders.example/api", storage.TokenOpaque)
	redirect := e.blank()
	app := e.app(dev.ID, storage.Standalone, redirect)
	for _, c := range []struct {
		lang, greeting string
		want           []string
	}{
		{"en", "asks for access", []string{"In Orders:", "Read your orders", "Place orders", "See your email address"}},
		{"ru", "запрашивает доступ", []string{"В Orders:", "Читать ваши заказы", "Оформлять заказы"}},
	} {
		t.Run(c.lang, func(t *testing.T) {
			login := "olga-" + c.lang // consent is remembered: a person each
			e.user(login, "")
			ctx := testenv.Browser(t, chromedp.Flag("lang", c.lang), chromedp.Flag("accept-lang", c.lang))
			q := url.Values{"client_id": {fmt.Sprint(app.ID)}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"s"},
				"scope": {"orders:read orders:write openid email"}, "resource": {orders.Identifier},
				"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
			if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/authorize?"+q.Encode()), chromedp.WaitVisible(`input[name=login]`),
				chromedp.SendKeys(`input[name=login]`, login), chromedp.SendKeys(`input[name=password]`, "password-"+login),
				chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`button[name=decision][value=allow]`)); err != nil {
				t.Fatal(err)
			}
			body, err := chromedp.Run(ctx, chromedp.Text(`body`))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range append(c.want, c.greeting) {
				if !strings.Contains(body, want) {
					t.Errorf("the consent dialog (%s) lacks %q:\n%s", c.lang, want, body)
				}
			}
			testenv.Screenshot(t, ctx, "consent-api-"+c.lang)
			if err := chromedp.Do(ctx, chromedp.Click(`button[name=decision][value=allow]`)); err != nil {
				t.Fatal(err)
			}
			var loc string
			waitFor(t, 10*time.Second, "the app's redirect", func() bool {
				loc, _ = chromedp.Run(ctx, chromedp.Location())
				return strings.HasPrefix(loc, redirect)
			})
			if u, _ := url.Parse(loc); u.Query().Get("code") == "" {
				t.Fatalf("allowed, the browser is at %s, want the app with a code", loc)
			}
		})
	}
}

// A pushed authorization request (RFC 9126) carries the resource: an
// unknown one is refused at the push, a good one is honoured at
// /authorize like a plain request.
func TestPushedRequestForAnAPI(t *testing.T) {
	e := newEnv(t)
	dev := e.user("dev", "")
	e.user("pia", "")
	orders := e.api(dev.ID, "https://orders.example/api", storage.TokenOpaque)
	redirect := "https://svc.example/cb"
	app := e.app(dev.ID, storage.Web, redirect)
	push := func(resource string) (int, map[string]any) {
		return e.postForm("/oauth/par", url.Values{"response_type": {"code"}, "redirect_uri": {redirect}, "scope": {"orders:read"},
			"state": {"p"}, "resource": {resource}}, fmt.Sprint(app.ID), app.ClientSecret)
	}
	if status, m := push("https://nowhere.example"); status != 400 || m["error"] != "invalid_target" {
		t.Fatalf("pushing an unknown resource: %d %v", status, m)
	}
	status, m := push(orders.Identifier)
	if status != 201 {
		t.Fatalf("pushing a request for the API: %d %v", status, m)
	}
	b := e.browser()
	b.get(e.URL + "/authorize?" + url.Values{"client_id": {fmt.Sprint(app.ID)}, "request_uri": {m["request_uri"].(string)}}.Encode())
	if to := b.login("pia", "password-pia"); to != "" || !strings.Contains(b.page, "Read your orders") {
		t.Fatalf("the pushed request's dialog: %q", to)
	}
	code := query(t, b.approve()).Get("code")
	status, tok := e.postForm("/access_token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}, fmt.Sprint(app.ID), app.ClientSecret)
	if status != 200 || tok["scope"] != "orders:read" {
		t.Fatalf("the pushed request's token: %d %v", status, tok)
	}
	if m := e.introspectAs(orders, tok["access_token"].(string)); !active(m) {
		t.Fatalf("the API's introspection: %v", m)
	}
}
