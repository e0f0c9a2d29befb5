package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// github.com/coreos/go-oidc discovers the server, verifies its id_token
// (signature, issuer, audience, nonce) and reads UserInfo; after a key
// rotation old and new id_tokens verify, after the old key is retired the
// old one does not.
func TestOpenIDConnectWithGoOIDC(t *testing.T) { onBothBackends(t, testOpenIDConnect) }

func testOpenIDConnect(t *testing.T, e *env) {
	ctx := context.Background()
	u := e.user("olive", "olive@example.com")
	redirect := "https://olive.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	id := fmt.Sprint(app.ID)
	provider, err := oidc.NewProvider(ctx, e.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := &oauth2.Config{ClientID: id, ClientSecret: app.ClientSecret, RedirectURL: redirect, Endpoint: provider.Endpoint(),
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	login := func(nonce string) (*oauth2.Token, string) {
		t.Helper()
		code := obtainCode(t, e, id, redirect, "olive", map[string]string{"scope": "openid profile email", "nonce": nonce, "revoke": "1"})
		tok, err := conf.Exchange(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			t.Fatal("no id_token for the openid scope")
		}
		return tok, raw
	}
	tok, first := login("n-0S6_WzA2Mj")
	verify := func(raw string) (*oidc.IDToken, error) {
		p, err := oidc.NewProvider(ctx, e.URL) // fresh: no cached keys
		if err != nil {
			return nil, err
		}
		return p.Verifier(&oidc.Config{ClientID: id}).Verify(ctx, raw)
	}
	idt, err := verify(first)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims struct {
		Email, Name, Iss, Iis string
		App                   int64
	}
	idt.Claims(&claims)
	if idt.Nonce != "n-0S6_WzA2Mj" || idt.Subject != fmt.Sprint(u.ID) || claims.Email != "olive@example.com" || claims.Name != "Olive Tester" ||
		claims.Iis != e.URL || claims.App != app.ID {
		t.Fatalf("id_token claims: nonce %q sub %q %+v", idt.Nonce, idt.Subject, claims)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != fmt.Sprint(u.ID) || info.Email != "olive@example.com" {
		t.Fatalf("userinfo: %+v %v", info, err)
	}

	oldKID := kidOf(t, first)
	if _, err := e.P.Signing.Rotate(ctx, platform.CLI); err != nil {
		t.Fatal(err)
	}
	_, second := login("second")
	if kidOf(t, second) == oldKID {
		t.Fatal("after rotation the id_token is signed with the old key")
	}
	for name, raw := range map[string]string{"old": first, "new": second} {
		if _, err := verify(raw); err != nil {
			t.Fatalf("after rotation the %s id_token does not verify: %v", name, err)
		}
	}
	if err := e.P.Signing.Retire(ctx, platform.CLI, oldKID); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(first); err == nil {
		t.Fatal("after retiring its key the old id_token still verifies")
	}
	if _, err := verify(second); err != nil {
		t.Fatalf("after retiring the old key the new id_token does not verify: %v", err)
	}
	kid := kidOf(t, second)
	if err := e.P.Signing.Retire(ctx, platform.CLI, kid); platform.KindOf(err) != platform.Conflict {
		t.Fatalf("retiring the current key: %v, want a conflict", err)
	}

	// UserInfo refuses tokens without openid, and no token.
	for name, h := range map[string]string{"no token": "", "a forged token": "Bearer lku1" + strings.Repeat("0", 60)} {
		req, _ := http.NewRequest("GET", e.URL+"/oauth/userinfo", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("userinfo with %s: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid, Alg string }
	json.Unmarshal(b, &h)
	if h.Alg != "RS256" || h.Kid == "" {
		t.Fatalf("id_token header %s: want RS256 with a kid", b)
	}
	return h.Kid
}
