package e2e

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

type communityEnv struct {
	*env
	admin, other storage.User
	app          platform.AppView
	g1, g2       storage.Community
	redirect     string
}

func newCommunityEnv(t *testing.T) *communityEnv {
	e := &communityEnv{env: newEnv(t), redirect: "https://bot.example/cb"}
	ctx := context.Background()
	e.admin = e.user("admin", "")
	e.other = e.user("other", "")
	e.app = e.env.app(e.admin.ID, storage.Web, e.redirect)
	var err error
	if e.g1, err = e.P.Communities.CreateCommunity(ctx, platform.CLI, e.admin.ID, "Cats"); err != nil {
		t.Fatal(err)
	}
	if e.g2, err = e.P.Communities.CreateCommunity(ctx, platform.CLI, e.admin.ID, "Dogs"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *communityEnv) groupIDs() string { return fmt.Sprintf("%d,%d", e.g1.ID, e.g2.ID) }

func (e *communityEnv) liveCommunityTokens(t *testing.T, id int64) []storage.Token {
	t.Helper()
	ts, err := e.Store.ListTokens(context.Background(), storage.TokenFilter{CommunityID: id, LiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestCommunityImplicitFlowTwoCommunities(t *testing.T) {
	e := newCommunityEnv(t)
	b := e.browser()
	b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(e.app.ID), "redirect_uri": e.redirect, "response_type": "token",
		"group_ids": e.groupIDs(), "scope": "messages,manage", "state": "g"}))
	b.login("admin", "password-admin")
	for _, want := range []string{"Cats", "Dogs", "Access the community&#39;s messages", "Manage the community"} {
		if !strings.Contains(b.page, want) {
			t.Errorf("community consent lacks %q", want)
		}
	}
	f := fragment(t, b.approve())
	t1, t2 := f.Get(fmt.Sprintf("access_token_%d", e.g1.ID)), f.Get(fmt.Sprintf("access_token_%d", e.g2.ID))
	if !strings.HasPrefix(t1, "lkc1") || !strings.HasPrefix(t2, "lkc1") || t1 == t2 || f.Get("expires_in") != "0" || f.Get("state") != "g" || f.Get("access_token") != "" {
		t.Fatalf("fragment = %v", f)
	}
	m := e.call("groups.getTokenPermissions", t2, nil)
	if jsonString(m["response"]) != `{"mask":266240,"permissions":[{"name":"messages","setting":4096},{"name":"manage","setting":262144}]}` {
		t.Fatalf("token permissions: %v", m)
	}
	if in := e.introspect(e.app, t1); !active(in) || in["group_id"] != float64(e.g1.ID) || in["exp"] != nil {
		t.Fatalf("introspect = %v", in)
	}
}

func TestCommunityCodeFlowBothShapesWithOAuth2(t *testing.T) {
	e := newCommunityEnv(t)
	conf := &oauth2.Config{ClientID: fmt.Sprint(e.app.ID), ClientSecret: e.app.ClientSecret, RedirectURL: e.redirect,
		Scopes: []string{"messages", "docs"}, Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/access_token"}}
	b := e.browser()
	b.get(conf.AuthCodeURL("st", oauth2.SetAuthURLParam("group_ids", e.groupIDs())))
	b.login("admin", "password-admin")
	code := query(t, b.approve()).Get("code")
	tok, err := conf.Exchange(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	// VK's keyed shape…
	k1, _ := tok.Extra(fmt.Sprintf("access_token_%d", e.g1.ID)).(string)
	k2, _ := tok.Extra(fmt.Sprintf("access_token_%d", e.g2.ID)).(string)
	// …and the list shape, in one body.
	groups, _ := tok.Extra("groups").([]any)
	// …and access_token for strict OAuth clients (the first community's).
	if k1 == "" || k2 == "" || len(groups) != 2 || tok.Extra("expires_in") != float64(0) || tok.AccessToken != k1 {
		t.Fatalf("exchange: keyed %q %q, groups %v", k1, k2, groups)
	}
	for i, want := range []struct {
		id  int64
		tok string
	}{{e.g1.ID, k1}, {e.g2.ID, k2}} {
		g := groups[i].(map[string]any)
		if g["group_id"] != float64(want.id) || g["access_token"] != want.tok {
			t.Fatalf("groups[%d] = %v", i, g)
		}
	}
	if code, _ := apiError(e.call("messages.send", k1, map[string]string{"peer_id": fmt.Sprint(e.other.ID), "message": "hello from cats", "random_id": "7"})); code != 0 {
		t.Fatalf("messages.send with the community token: %d", code)
	}
}

func TestCommunityRequestsRefusedForNonAdmins(t *testing.T) {
	e := newCommunityEnv(t)
	// "other" admins only g2.
	if err := e.P.Communities.AddCommunityAdmin(context.Background(), platform.CLI, e.g2.ID, e.other.ID); err != nil {
		t.Fatal(err)
	}
	e.user("outsider", "")
	for _, c := range []struct{ login, groups, refusedFor string }{
		{"outsider", fmt.Sprint(e.g1.ID), fmt.Sprint(e.g1.ID)},
		{"other", e.groupIDs(), fmt.Sprint(e.g1.ID)},
	} {
		b := e.browser()
		to := b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(e.app.ID), "redirect_uri": e.redirect, "response_type": "token", "group_ids": c.groups, "state": "s"}))
		if to == "" {
			to = b.login(c.login, "password-"+c.login)
		}
		if to != "" || b.status != 403 || !strings.Contains(b.page, "not an admin of community "+c.refusedFor) {
			t.Fatalf("%s: redirect %q, status %d", c.login, to, b.status)
		}
		// The page's way back carries access_denied to the app.
		back := regexp.MustCompile(`href="(https://bot\.example/cb#[^"]+)"`).FindStringSubmatch(b.page)
		if back == nil {
			t.Fatalf("%s: no way back to the app on the refusal page", c.login)
		}
		f := fragment(t, html.UnescapeString(back[1]))
		if f.Get("error") != "access_denied" || !strings.Contains(f.Get("error_description"), "community "+c.refusedFor) || f.Get("state") != "s" {
			t.Fatalf("%s: back link %v", c.login, f)
		}
	}
	// A forged decision (skipping the dialog) is refused too.
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("other", "password-other")
	b.get(e.URL + "/logout")
	csrf := b.formWith("csrf").fields.Get("csrf")
	f := form{action: "/authorize", fields: url.Values{"csrf": {csrf}, "client_id": {fmt.Sprint(e.app.ID)}, "redirect_uri": {e.redirect}, "response_type": {"token"}, "group_ids": {e.groupIDs()}, "decision": {"allow"}}}
	b.submit(f, nil)
	if b.status != 403 {
		t.Fatalf("posted Allow as a non-admin: %d", b.status)
	}
	for _, g := range []int64{e.g1.ID, e.g2.ID} {
		if n := len(e.liveCommunityTokens(t, g)); n != 0 {
			t.Fatalf("community %d has %d tokens after refusals", g, n)
		}
	}
}

func TestCommunityScopeRejectsUserOnlyNames(t *testing.T) {
	e := newCommunityEnv(t)
	b := e.browser()
	to := b.get(e.authorize(map[string]string{"client_id": fmt.Sprint(e.app.ID), "redirect_uri": e.redirect, "group_ids": fmt.Sprint(e.g1.ID), "scope": "messages,friends"}))
	q := query(t, to)
	if q.Get("error") != "invalid_scope" || !strings.Contains(q.Get("error_description"), "friends") {
		t.Fatalf("redirect = %q", to)
	}
}

func TestCommunityAdminsAndTokensPage(t *testing.T) {
	e := newCommunityEnv(t)
	ctx := context.Background()
	// A token granted by "other" while an admin of g1.
	if err := e.P.Communities.AddCommunityAdmin(ctx, platform.CLI, e.g1.ID, e.other.ID); err != nil {
		t.Fatal(err)
	}
	granted, _, err := e.P.Tokens.IssueToken(ctx, storage.Token{Kind: token.Community, AppID: e.app.ID, UserID: e.other.ID, CommunityID: e.g1.ID, Scope: scope.CommunityMessages, Flow: storage.FlowImplicit}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.get(e.URL + "/communities")
	b.login("admin", "password-admin")
	b.get(e.URL + fmt.Sprintf("/communities/%d", e.g1.ID))
	if !strings.Contains(b.page, "Other Tester") {
		t.Fatal("admins tab lacks the second admin")
	}
	// Remove "other": their token keeps working.
	for _, f := range b.forms() {
		if f.action == fmt.Sprintf("/communities/%d/admins/%d/remove", e.g1.ID, e.other.ID) {
			b.submit(f, nil)
		}
	}
	if ok, _ := e.Store.IsCommunityAdmin(ctx, e.g1.ID, e.other.ID); ok {
		t.Fatal("admin not removed")
	}
	if code, _ := apiError(e.call("groups.getTokenPermissions", granted, nil)); code != 0 {
		t.Fatalf("a token granted by a removed admin stopped working: %d", code)
	}
	// The last admin cannot be removed.
	b.get(e.URL + fmt.Sprintf("/communities/%d", e.g1.ID))
	for _, f := range b.forms() {
		if f.action == fmt.Sprintf("/communities/%d/admins/%d/remove", e.g1.ID, e.admin.ID) {
			b.submit(f, nil)
		}
	}
	if b.status != 409 || !strings.Contains(b.page, "last admin") {
		t.Fatalf("removing the last admin: %d", b.status)
	}
	// Add an admin by login.
	b.submit(b.formWith("login"), map[string]string{"login": "other"})
	if ok, _ := e.Store.IsCommunityAdmin(ctx, e.g1.ID, e.other.ID); !ok || !strings.Contains(b.page, "Admin added") {
		t.Fatal("admin not added back")
	}

	// API usage: the granted token is listed with its app and last use.
	if err := e.P.Tokens.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	b.get(e.URL + fmt.Sprintf("/communities/%d/api", e.g1.ID))
	rows := regexp.MustCompile(`(?s)<table class="list tokens">.*?</table>`).FindString(b.page)
	if !strings.Contains(rows, e.app.Title) || !strings.Contains(rows, "messages") || !strings.Contains(rows, "other") || strings.Contains(rows, "never") {
		t.Fatalf("tokens table:\n%s", rows)
	}
	// Any current admin revokes it.
	for _, f := range b.forms() {
		if strings.HasSuffix(f.action, "/revoke") {
			b.submit(f, nil)
		}
	}
	if code, _ := apiError(e.call("groups.getTokenPermissions", granted, nil)); code != 5 {
		t.Fatalf("revoked community token: %d, want 5", code)
	}
	if !strings.Contains(b.page, "Token revoked") || !strings.Contains(b.page, "No live tokens") {
		t.Fatal("page after revoking")
	}
	// A non-admin sees nothing.
	e.user("stranger", "")
	sb := e.browser()
	sb.get(e.URL + fmt.Sprintf("/communities/%d/api", e.g1.ID))
	sb.login("stranger", "password-stranger")
	if sb.status != 403 {
		t.Fatalf("a stranger opened the API usage tab: %d", sb.status)
	}
}

func TestCreateCommunityFromThePage(t *testing.T) {
	e := newEnv(t)
	e.user("maker", "")
	b := e.browser()
	b.get(e.URL + "/communities")
	b.login("maker", "password-maker")
	b.submit(b.formWith("name"), map[string]string{"name": "Birdwatchers"})
	if b.status != 200 || !strings.Contains(b.page, "Birdwatchers") || !strings.Contains(b.pageURL, "/communities/") {
		t.Fatalf("after create: %d %s", b.status, b.pageURL)
	}
	b.get(e.URL + "/communities")
	if !strings.Contains(b.page, "Birdwatchers") {
		t.Fatal("the new community is not listed")
	}
}
