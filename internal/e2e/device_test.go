package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"latchkey/internal/storage"
)

// approveDevice types the code at /device in a browser, logs in and answers
// the dialog.
func approveDevice(t *testing.T, e *env, login, verifyURL, typed, decision string) *browser {
	t.Helper()
	b := e.browser()
	b.get(verifyURL)
	b.login(login, "password-"+login)
	f := b.formWith("user_code")
	fill := map[string]string{}
	if typed != "" {
		fill["user_code"] = typed
	}
	b.submit(f, fill)
	if b.status != 200 || !strings.Contains(b.page, "asks for access") {
		t.Fatalf("after typing the code: %d, want the consent dialog", b.status)
	}
	b.submit(b.formWith("decision"), nil, "decision", decision)
	return b
}

// golang.org/x/oauth2's DeviceAuth and DeviceAccessToken complete the
// device flow while a browser approves the code at /device.
func TestDeviceFlowWithOAuth2(t *testing.T) {
	e := newEnv(t, fastAPI)
	u := e.user("tvset", "")
	app := e.app(u.ID, storage.Standalone)
	conf := &oauth2.Config{ClientID: fmt.Sprint(app.ID), Scopes: []string{"friends"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: e.URL + "/oauth/device/code", TokenURL: e.URL + "/access_token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.Background()
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(da.UserCode) != 9 || da.UserCode[4] != '-' || strings.ContainsAny(da.UserCode, "AEIOUY0123456789") || da.VerificationURI != e.URL+"/device" ||
		da.Interval != 5 || da.Expiry.IsZero() {
		t.Fatalf("device authorization: %+v", da)
	}
	b := approveDevice(t, e, "tvset", da.VerificationURIComplete, "", "allow")
	if !strings.Contains(b.page, "Your device is connected") {
		t.Fatalf("after allowing: %d", b.status)
	}
	tok, err := conf.DeviceAccessToken(ctx, da) // polls after the interval, as a device would
	if err != nil {
		t.Fatalf("device token: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token from the device flow")
	}
	if code, _ := apiError(e.call("account.getAppPermissions", tok.AccessToken, nil)); code != 0 {
		t.Fatalf("the device's token at the API: error %d", code)
	}
}

// The polling answers of RFC 8628 §3.5, the code typed as a person would,
// and wrong codes throttled like wrong passwords. On both backends.
func TestDeviceFlowAnswers(t *testing.T) { onBothBackends(t, testDeviceFlowAnswers) }

func testDeviceFlowAnswers(t *testing.T, e *env) {
	u := e.user("dana", "")
	e.user("mal", "")
	app := e.app(u.ID, storage.Standalone)
	id := fmt.Sprint(app.ID)
	start := func() (device, user, complete string) {
		t.Helper()
		s, m := e.postForm("/oauth/device/code", url.Values{"client_id": {id}, "scope": {"friends"}}, "", "")
		if s != 200 {
			t.Fatalf("device code: %d %v", s, m)
		}
		return m["device_code"].(string), m["user_code"].(string), m["verification_uri_complete"].(string)
	}
	poll := func(device string) string {
		_, m := e.postForm("/access_token", url.Values{"client_id": {id}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {device}}, "", "")
		if m["access_token"] != nil {
			return "token"
		}
		s, _ := m["error"].(string)
		return s
	}

	device, user, _ := start()
	if got := poll(device); got != "authorization_pending" {
		t.Fatalf("first poll: %s", got)
	}
	if got := poll(device); got != "slow_down" {
		t.Fatalf("a poll at once: %s, want slow_down", got)
	}
	e.Clock.Advance(6 * time.Second)
	if got := poll(device); got != "slow_down" {
		t.Fatalf("a poll after 6 s, the interval now 10 s: %s, want slow_down", got)
	}
	e.Clock.Advance(16 * time.Second)
	if got := poll(device); got != "authorization_pending" {
		t.Fatalf("a poll after the raised interval: %s", got)
	}
	// Typed in lower case, without the dash.
	approveDevice(t, e, "dana", e.URL+"/device", strings.ToLower(strings.ReplaceAll(user, "-", "")), "allow")
	e.Clock.Advance(20 * time.Second)
	if got := poll(device); got != "token" {
		t.Fatalf("after approval: %s", got)
	}
	e.Clock.Advance(20 * time.Second)
	if got := poll(device); got != "invalid_grant" {
		t.Fatalf("the device code again: %s, want invalid_grant (one use)", got)
	}

	denied, _, complete := start()
	approveDevice(t, e, "dana", complete, "", "deny")
	if got := poll(denied); got != "access_denied" {
		t.Fatalf("after denial: %s", got)
	}
	late, _, _ := start()
	e.Clock.Advance(11 * time.Minute)
	if got := poll(late); got != "expired_token" {
		t.Fatalf("after 11 minutes: %s, want expired_token", got)
	}
	if got := poll("lkd1" + strings.Repeat("0", 60)); got != "invalid_grant" {
		t.Fatalf("a forged device code: %s", got)
	}

	// Five wrong codes, and the person is throttled even with the right one.
	_, right, _ := start()
	b := e.browser()
	b.get(e.URL + "/device")
	b.login("mal", "password-mal")
	for range 5 {
		b.get(e.URL + "/device")
		b.submit(b.formWith("user_code"), map[string]string{"user_code": "BCDF-GHJK"})
		if b.status != 422 {
			t.Fatalf("a wrong code: %d, want 422", b.status)
		}
	}
	b.get(e.URL + "/device")
	b.submit(b.formWith("user_code"), map[string]string{"user_code": right})
	if b.status != 429 {
		t.Fatalf("the right code after five wrong ones: %d, want 429", b.status)
	}
}

// The metadata names the device and DPoP support.
func TestMetadataNamesDevicesAndDPoP(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		_, m := e.getJSON(e.URL + path)
		algs, _ := m["dpop_signing_alg_values_supported"].([]any)
		if m["device_authorization_endpoint"] != e.URL+"/oauth/device/code" || m["pushed_authorization_request_endpoint"] != e.URL+"/oauth/par" || len(algs) == 0 || algs[0] != "ES256" {
			t.Fatalf("%s: device endpoint %v, DPoP algorithms %v", path, m["device_authorization_endpoint"], algs)
		}
	}
}

// The device flow for an API: golang.org/x/oauth2's DeviceAuth with a
// resource, the person approves at /device seeing the API's scopes, and
// the device gets a token for the API, which the API sees at introspection.
func TestDeviceFlowForAnAPI(t *testing.T) {
	e := newEnv(t, fastAPI)
	dev := e.user("tvmaker", "")
	e.user("viewer", "")
	orders := e.api(dev.ID, "https://orders.example/api", storage.TokenOpaque)
	app := e.app(dev.ID, storage.Standalone)
	conf := &oauth2.Config{ClientID: fmt.Sprint(app.ID), Scopes: []string{"orders:read", "offline_access"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: e.URL + "/oauth/device/code", TokenURL: e.URL + "/access_token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.Background()
	resource := oauth2.SetAuthURLParam("resource", orders.Identifier)
	da, err := conf.DeviceAuth(ctx, resource)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.get(da.VerificationURIComplete)
	b.login("viewer", "password-viewer")
	b.submit(b.formWith("user_code"), map[string]string{})
	if !strings.Contains(b.page, "Read your orders") || !strings.Contains(b.page, "In <strong>Orders</strong>") {
		t.Fatalf("the device's consent dialog does not show the API's scope: %s", b.page)
	}
	b.submit(b.formWith("decision"), nil, "decision", "allow")
	tok, err := conf.DeviceAccessToken(ctx, da, resource)
	if err != nil {
		t.Fatalf("device token: %v", err)
	}
	if tok.Extra("scope") != "orders:read" || tok.RefreshToken == "" {
		t.Fatalf("the device's token for the API: %+v", tok)
	}
	if m := e.introspectAs(orders, tok.AccessToken); !active(m) || m["scope"] != "orders:read" {
		t.Fatalf("the API's introspection of the device's token: %v", m)
	}
	if _, err := conf.DeviceAuth(ctx, oauth2.SetAuthURLParam("resource", orders.Identifier), oauth2.SetAuthURLParam("scope", "friends")); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
		t.Fatalf("VK's scope names with an API's resource: %v, want invalid_scope", err)
	}
}
