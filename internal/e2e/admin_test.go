package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"latchkey/internal/admin"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// adminClient calls the admin API and checks every request and answer
// against its OpenAPI document; it records which operations it called.
type adminClient struct {
	t      *testing.T
	base   string
	token  string
	v      validator.Validator
	called map[string]bool // "METHOD /path/template"
	// bad: the next requests break the document on purpose; only the
	// answers are checked against it.
	bad bool
}

func newAdminClient(t *testing.T, e *env) *adminClient {
	t.Helper()
	doc, err := libopenapi.NewDocument(admin.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("the OpenAPI document: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("the OpenAPI document is not valid OpenAPI 3.1: %v", verrs)
	}
	srv := httptest.NewServer(e.Node.Server.Admin())
	t.Cleanup(srv.Close)
	raw, err := e.P.Admin.CreateAdminToken(t.Context(), "e2e")
	if err != nil {
		t.Fatal(err)
	}
	return &adminClient{t: t, base: srv.URL, token: raw, v: v, called: map[string]bool{}}
}

// do calls method on template (with {…} filled from args, in order) with
// body, checks the exchange against the document, and decodes the answer.
func (c *adminClient) do(method, template string, body any, args ...any) (int, map[string]any) {
	c.t.Helper()
	path := template
	for _, a := range args {
		i, j := strings.Index(path, "{"), strings.Index(path, "}")
		path = path[:i] + fmt.Sprint(a) + path[j+1:]
	}
	c.called[method+" "+strings.SplitN(template, "?", 2)[0]] = true
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Validate a copy of the exchange: the document says what may come
	// in and go out.
	check, _ := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
	check.Header = req.Header.Clone()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	validate := c.v.ValidateHttpRequestResponse
	if c.bad {
		validate = c.v.ValidateHttpResponse
	}
	if ok, verrs := validate(check, resp); !ok {
		var msgs []string
		for _, ve := range verrs {
			msgs = append(msgs, ve.Message+": "+ve.Reason)
		}
		c.t.Errorf("%s %s → %d %s\ndoes not match the OpenAPI document:\n  %s", method, path, resp.StatusCode, answer, strings.Join(msgs, "\n  "))
	}
	var m map[string]any
	if len(answer) > 0 {
		if err := json.Unmarshal(answer, &m); err != nil {
			c.t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, answer)
		}
	}
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || m["status"] != float64(resp.StatusCode) || m["detail"] == "" {
			c.t.Errorf("%s %s: error %d as %q %v: want RFC 9457 problem details", method, path, resp.StatusCode, ct, m)
		}
	}
	return resp.StatusCode, m
}

// The admin API creates a user and an app, and the app then works; every
// operation its OpenAPI document describes is called, and every answer
// matches the document.
func TestAdminAPI(t *testing.T) { onBothBackends(t, testAdminAPI, fastAPI) }

func testAdminAPI(t *testing.T, e *env) {
	c := newAdminClient(t, e)
	id := func(m map[string]any, k string) int64 { return int64(m[k].(float64)) }

	// Without a token, or with a wrong one: 401.
	tok := c.token
	c.bad, c.token = true, ""
	if status, _ := c.do("GET", "/admin/v1/users", nil); status != 401 {
		t.Fatalf("no token: %d", status)
	}
	c.token = "lkx1" + strings.Repeat("0", 60)
	if status, _ := c.do("GET", "/admin/v1/users", nil); status != 401 {
		t.Fatalf("a forged token: %d", status)
	}
	c.bad, c.token = false, tok
	if status, m := c.do("GET", "/admin/v1/openapi.json", nil); status != 200 || m["openapi"] != "3.1.0" {
		t.Fatalf("openapi.json: %d", status)
	}

	// Users.
	status, u := c.do("POST", "/admin/v1/users", map[string]any{"login": "ada", "password": "password-ada", "first_name": "Ada", "email": "ada@example.com"})
	if status != 201 || u["login"] != "ada" || u["disabled"] != false {
		t.Fatalf("create user: %d %v", status, u)
	}
	uid := id(u, "id")
	if status, _ := c.do("POST", "/admin/v1/users", map[string]any{"login": "ada", "password": "password-ada"}); status != 409 {
		t.Fatalf("a taken login: %d", status)
	}
	if status, _ := c.do("POST", "/admin/v1/users", map[string]any{"login": "x", "password": "short"}); status != 422 {
		t.Fatalf("a bad user: %d", status)
	}
	c.bad = true
	if status, _ := c.do("POST", "/admin/v1/users", map[string]any{"login": "bob", "pasword": "typo-in-the-field"}); status != 400 {
		t.Fatalf("an unknown field: %d", status)
	}
	c.bad = false
	c.do("POST", "/admin/v1/users", map[string]any{"login": "bob", "password": "password-bob"})
	if status, m := c.do("GET", "/admin/v1/users/{id}", nil, uid); status != 200 || m["email"] != "ada@example.com" {
		t.Fatalf("get user: %d %v", status, m)
	}
	if status, _ := c.do("GET", "/admin/v1/users/{id}", nil, 999999); status != 404 {
		t.Fatalf("no such user: %d", status)
	}
	status, page := c.do("GET", "/admin/v1/users?limit=1", nil)
	if status != 200 || len(page["users"].([]any)) != 1 || page["next"] == nil {
		t.Fatalf("a page of one: %d %v", status, page)
	}
	if status, page := c.do("GET", "/admin/v1/users?after="+fmt.Sprint(id(page, "next")), nil); status != 200 || len(page["users"].([]any)) != 1 || page["next"] != nil {
		t.Fatalf("the last page: %d %v", status, page)
	}
	if status, _ := c.do("POST", "/admin/v1/users/{id}/password", map[string]any{"password": "a-new-password"}, uid); status != 204 {
		t.Fatalf("set password: %d", status)
	}
	e.Clock.Advance(time.Second) // sessions after the new password
	b := e.browser()
	b.get(e.URL + "/login")
	if to := b.login("ada", "a-new-password"); to != "" || !strings.Contains(b.page, "Ada") {
		t.Fatalf("logging in with the new password: %q %d", to, b.status)
	}
	// Second factors: listed (never their secrets) and reset by an operator.
	e.enrolApp(b)
	status, fs := c.do("GET", "/admin/v1/users/{id}/factors", nil, uid)
	if factors, _ := fs["factors"].([]any); status != 200 || len(factors) != 1 || fs["recovery_codes_left"] != float64(10) ||
		factors[0].(map[string]any)["kind"] != "totp" || factors[0].(map[string]any)["name"] != "Phone" {
		t.Fatalf("a user's factors: %d %v", status, fs)
	}
	if status, m := c.do("DELETE", "/admin/v1/users/{id}/factors", nil, uid); status != 200 || m["removed"] != float64(1) {
		t.Fatalf("reset factors: %d %v", status, m)
	}
	if status, fs := c.do("GET", "/admin/v1/users/{id}/factors", nil, uid); status != 200 || len(fs["factors"].([]any)) != 0 || fs["recovery_codes_left"] != float64(0) {
		t.Fatalf("factors after a reset: %d %v", status, fs)
	}
	if status, _ := c.do("DELETE", "/admin/v1/users/{id}/factors", nil, 999999); status != 404 {
		t.Fatalf("resetting no such user's factors: %d", status)
	}
	// Upstreams: a directory added, listed without its password, removed.
	if status, m := c.do("POST", "/admin/v1/upstreams", map[string]any{"name": "dir", "kind": "ldap", "url": "ldaps://ldap.example",
		"bind_dn": "cn=reader,dc=example,dc=org", "bind_password": "reader-secret", "base_dn": "dc=example,dc=org"}); status != 201 || m["filter"] != "(uid={login})" {
		t.Fatalf("add an upstream: %d %v", status, m)
	}
	if status, m := c.do("POST", "/admin/v1/upstreams", map[string]any{"name": "bad", "kind": "ldap", "url": "http://x"}); status != 422 {
		t.Fatalf("a bad upstream: %d %v", status, m)
	}
	if status, m := c.do("GET", "/admin/v1/upstreams", nil); status != 200 || len(m["upstreams"].([]any)) != 1 || strings.Contains(fmt.Sprint(m), "reader-secret") {
		t.Fatalf("list upstreams: %d %v", status, m)
	}
	if status, _ := c.do("DELETE", "/admin/v1/upstreams/{name}", nil, "dir"); status != 204 {
		t.Fatalf("remove an upstream: %d", status)
	}
	if status, _ := c.do("DELETE", "/admin/v1/upstreams/{name}", nil, "dir"); status != 404 {
		t.Fatalf("remove it again: %d", status)
	}

	// Apps: the app created works.
	status, app := c.do("POST", "/admin/v1/apps", map[string]any{"owner_id": uid, "title": "Automated", "type": "web",
		"redirect_uris": []string{"https://auto.example/cb"}, "client_credentials": true})
	if status != 201 || app["client_secret"] == "" || app["client_credentials"] != true {
		t.Fatalf("create app: %d %v", status, app)
	}
	appID := id(app, "client_id")
	status, cc := e.clientCredentials(fmt.Sprint(appID), app["client_secret"].(string))
	if status != 200 || cc["access_token"] == nil {
		t.Fatalf("the new app's client credentials: %d %v", status, cc)
	}
	if code, _ := apiError(e.call("users.get", app["service_token"].(string), map[string]string{"user_ids": fmt.Sprint(uid)})); code != 0 {
		t.Fatalf("the new app's service token at the API: error %d", code)
	}
	if status, _ := c.do("POST", "/admin/v1/apps", map[string]any{"owner_id": 999999, "title": "T", "type": "web"}); status != 404 {
		t.Fatalf("an app of no one: %d", status)
	}
	if status, m := c.do("GET", "/admin/v1/apps?owner_id="+fmt.Sprint(uid), nil); status != 200 || len(m["apps"].([]any)) != 1 {
		t.Fatalf("list apps: %d %v", status, m)
	}
	// Every app, a page at a time, and by type.
	_, bobPage := c.do("GET", "/admin/v1/users?after="+fmt.Sprint(uid), nil)
	bobID := id(bobPage["users"].([]any)[0].(map[string]any), "id")
	if status, m := c.do("POST", "/admin/v1/apps", map[string]any{"owner_id": bobID, "title": "Bob's tool", "type": "standalone"}); status != 201 {
		t.Fatalf("bob's app: %d %v", status, m)
	}
	status, page = c.do("GET", "/admin/v1/apps?limit=1", nil)
	if status != 200 || len(page["apps"].([]any)) != 1 || id(page, "next") != appID {
		t.Fatalf("the first page of every app: %d %v", status, page)
	}
	status, page = c.do("GET", "/admin/v1/apps?limit=1&after="+fmt.Sprint(id(page, "next")), nil)
	if status != 200 || len(page["apps"].([]any)) != 1 || page["apps"].([]any)[0].(map[string]any)["title"] != "Bob's tool" {
		t.Fatalf("the second page: %d %v", status, page)
	}
	if status, page := c.do("GET", "/admin/v1/apps?after="+fmt.Sprint(id(page, "next")), nil); status != 200 || len(page["apps"].([]any)) != 0 || page["next"] != nil {
		t.Fatalf("past the last app: %d %v", status, page)
	}
	if status, page := c.do("GET", "/admin/v1/apps?type=web", nil); status != 200 || len(page["apps"].([]any)) != 1 || id(page["apps"].([]any)[0].(map[string]any), "client_id") != appID {
		t.Fatalf("the web apps: %d %v", status, page)
	}
	c.bad = true
	if status, _ := c.do("GET", "/admin/v1/apps?type=desktop", nil); status != 400 {
		t.Fatalf("an unknown type: %d", status)
	}
	c.bad = false
	if status, m := c.do("GET", "/admin/v1/apps/{id}", nil, appID); status != 200 || m["title"] != "Automated" {
		t.Fatalf("get app: %d %v", status, m)
	}
	if status, m := c.do("PATCH", "/admin/v1/apps/{id}", map[string]any{"title": "Renamed", "client_credentials": false}, appID); status != 200 ||
		m["title"] != "Renamed" || m["client_credentials"] != false || len(m["redirect_uris"].([]any)) != 1 {
		t.Fatalf("update app: %d %v", status, m)
	}
	if status, m := c.do("PATCH", "/admin/v1/apps/{id}", map[string]any{"backchannel_logout_uri": "https://auto.example/logout"}, appID); status != 200 ||
		m["backchannel_logout_uri"] != "https://auto.example/logout" {
		t.Fatalf("a back-channel logout URI: %d %v", status, m)
	}
	if status, _ := c.do("PATCH", "/admin/v1/apps/{id}", map[string]any{"backchannel_logout_uri": "http://169.254.169.254/"}, appID); status != 422 && status != 400 {
		t.Fatalf("a back-channel logout URI at a metadata address: %d", status)
	}
	if status, m := c.do("POST", "/admin/v1/apps/{id}/{action}", nil, appID, "rotate-secret"); status != 200 || m["old_client_secret"] != app["client_secret"] {
		t.Fatalf("rotate-secret: %d %v", status, m)
	}
	if status, m := c.do("POST", "/admin/v1/apps/{id}/{action}", nil, appID, "retire-secret"); status != 200 || m["old_client_secret"] != nil {
		t.Fatalf("retire-secret: %d %v", status, m)
	}
	if status, m := c.do("POST", "/admin/v1/apps/{id}/{action}", nil, appID, "new-service-token"); status != 200 || m["service_token"] == app["service_token"] {
		t.Fatalf("new-service-token: %d %v", status, m)
	}
	if code, _ := apiError(e.call("users.get", app["service_token"].(string), map[string]string{"user_ids": "1"})); code != 5 {
		t.Fatalf("the replaced service token: error %d, want 5", code)
	}
	c.bad = true
	if status, _ := c.do("POST", "/admin/v1/apps/{id}/{action}", nil, appID, "explode"); status != 404 {
		t.Fatalf("an unknown action: %d", status)
	}
	c.bad = false

	// Communities.
	status, cm := c.do("POST", "/admin/v1/communities", map[string]any{"owner_id": uid, "name": "Automation club"})
	if status != 201 || len(cm["admins"].([]any)) != 1 {
		t.Fatalf("create community: %d %v", status, cm)
	}
	cid := id(cm, "id")
	bob, _ := e.P.Users.UserByLogin(t.Context(), "bob")
	if status, m := c.do("POST", "/admin/v1/communities/{id}/admins", map[string]any{"user_id": bob.ID}, cid); status != 200 || len(m["admins"].([]any)) != 2 {
		t.Fatalf("add admin: %d %v", status, m)
	}
	if status, m := c.do("DELETE", "/admin/v1/communities/{id}/admins/{user_id}", nil, cid, bob.ID); status != 200 || len(m["admins"].([]any)) != 1 {
		t.Fatalf("remove admin: %d %v", status, m)
	}
	if status, _ := c.do("DELETE", "/admin/v1/communities/{id}/admins/{user_id}", nil, cid, uid); status != 409 && status != 422 {
		t.Fatalf("removing the last admin: %d", status)
	}
	if status, m := c.do("GET", "/admin/v1/communities/{id}", nil, cid); status != 200 || m["name"] != "Automation club" {
		t.Fatalf("get community: %d %v", status, m)
	}

	// Tokens: listed by user, revoked by hash.
	userTok, stored, err := e.P.Tokens.IssueToken(t.Context(), storage.Token{Kind: token.User, AppID: appID, UserID: uid, Scope: scope.Friends, Flow: storage.FlowImplicit}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	status, list := c.do("GET", "/admin/v1/tokens?user_id="+fmt.Sprint(uid)+"&live=true", nil)
	hashes := fmt.Sprint(list["tokens"])
	if status != 200 || !strings.Contains(hashes, fmt.Sprintf("%x", stored.Hash[:])) || strings.Contains(hashes, userTok) {
		t.Fatalf("list tokens: %d %v", status, list)
	}
	c.bad = true
	if status, _ := c.do("GET", "/admin/v1/tokens", nil); status != 400 {
		t.Fatalf("tokens of no one: %d", status)
	}
	c.bad = false
	if status, m := c.do("DELETE", "/admin/v1/tokens/{hash}", nil, fmt.Sprintf("%x", stored.Hash[:])); status != 200 || m["revoked"] != true {
		t.Fatalf("revoke token: %d %v", status, m)
	}
	if code, _ := apiError(e.call("users.get", userTok, nil)); code != 5 {
		t.Fatalf("the revoked token at the API: error %d", code)
	}

	// Disabling a user: no login, tokens revoked.
	other, _, _ := e.P.Tokens.IssueToken(t.Context(), storage.Token{Kind: token.User, AppID: appID, UserID: uid, Scope: scope.Friends, Flow: storage.FlowImplicit}, time.Hour)
	if status, m := c.do("POST", "/admin/v1/users/{id}/disable", nil, uid); status != 200 || m["disabled"] != true {
		t.Fatalf("disable: %d %v", status, m)
	}
	if code, _ := apiError(e.call("users.get", other, nil)); code != 5 {
		t.Fatalf("a disabled user's token: error %d", code)
	}
	b2 := e.browser()
	b2.get(e.URL + "/login")
	if b2.login("ada", "a-new-password"); b2.status != http.StatusForbidden || !strings.Contains(b2.page, "disabled") {
		t.Fatalf("a disabled user logging in: %d", b2.status)
	}
	if b.get(e.URL + "/settings/profile"); !strings.Contains(b.pageURL, "/login") && b.status == 200 && strings.Contains(b.page, "Ada") {
		t.Fatal("a disabled user's session still works")
	}

	// The audit log, then deletion.
	if status, m := c.do("GET", "/admin/v1/audit?app_id="+fmt.Sprint(appID), nil); status != 200 || len(m["events"].([]any)) < 3 {
		t.Fatalf("audit: %d %v", status, m)
	}
	if status, m := c.do("DELETE", "/admin/v1/apps/{id}", nil, appID); status != 200 || m["deleted"] != true {
		t.Fatalf("delete app: %d %v", status, m)
	}
	if status, _ := c.do("GET", "/admin/v1/apps/{id}", nil, appID); status != 404 {
		t.Fatalf("a deleted app: %d", status)
	}

	// APIs: registered, given a token for, introspected with their own
	// credentials, changed, their secret rotated, deleted.
	status, api := c.do("POST", "/admin/v1/apis", map[string]any{"owner_id": uid, "name": "Ledger", "identifier": "https://ledger.example/api",
		"scopes":       []map[string]any{{"name": "ledger:read", "description": map[string]string{"en": "Read the ledger", "ru": "Читать книгу"}}},
		"token_format": "opaque"})
	if status != 201 || api["introspection_secret"] == nil || api["introspection_client_id"] == nil {
		t.Fatalf("create API: %d %v", status, api)
	}
	apiID := id(api, "id")
	if status, _ := c.do("POST", "/admin/v1/apis", map[string]any{"owner_id": uid, "name": "Again", "identifier": "https://ledger.example/api"}); status != 409 {
		t.Fatalf("a taken identifier: %d", status)
	}
	if status, _ := c.do("POST", "/admin/v1/apis", map[string]any{"owner_id": uid, "name": "Plain", "identifier": "http://ledger.example"}); status != 422 {
		t.Fatalf("a plain http identifier: %d", status)
	}
	if status, m := c.do("GET", "/admin/v1/apis?owner_id="+fmt.Sprint(uid), nil); status != 200 || len(m["apis"].([]any)) != 1 {
		t.Fatalf("list APIs: %d %v", status, m)
	}
	_, svc := c.do("POST", "/admin/v1/apps", map[string]any{"owner_id": uid, "title": "Ledger client", "type": "web", "client_credentials": true})
	svcID, svcSecret := id(svc, "client_id"), svc["client_secret"].(string)
	status, ledger := e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}, "resource": {"https://ledger.example/api"}, "scope": {"ledger:read"}},
		fmt.Sprint(svcID), svcSecret)
	if status != 200 {
		t.Fatalf("a token for the API: %d %v", status, ledger)
	}
	introspectAPI := func(clientID, secret string) map[string]any {
		_, m := e.postForm("/oauth/introspect", url.Values{"token": {ledger["access_token"].(string)}}, clientID, secret)
		return m
	}
	if m := introspectAPI(api["introspection_client_id"].(string), api["introspection_secret"].(string)); !active(m) || m["scope"] != "ledger:read" {
		t.Fatalf("the API's introspection: %v", m)
	}
	if status, m := c.do("PATCH", "/admin/v1/apis/{id}", map[string]any{"name": "Ledger v2", "token_ttl_seconds": 600}, apiID); status != 200 || m["name"] != "Ledger v2" ||
		m["token_ttl_seconds"] != 600.0 || len(m["scopes"].([]any)) != 1 || m["introspection_secret"] != nil {
		t.Fatalf("PATCH API: %d %v", status, m)
	}
	if status, m := c.do("GET", "/admin/v1/apis/{id}", nil, apiID); status != 200 || m["name"] != "Ledger v2" {
		t.Fatalf("get API: %d %v", status, m)
	}
	status, rotated := c.do("POST", "/admin/v1/apis/{id}/rotate-secret", nil, apiID)
	if status != 200 || rotated["introspection_secret"] == api["introspection_secret"] {
		t.Fatalf("rotate the API's secret: %d %v", status, rotated)
	}
	if _, m := e.postForm("/oauth/introspect", url.Values{"token": {"x"}}, api["introspection_client_id"].(string), api["introspection_secret"].(string)); m["error"] != "invalid_client" {
		t.Fatalf("the old secret after rotation: %v", m)
	}
	if status, m := c.do("DELETE", "/admin/v1/apis/{id}", nil, apiID); status != 200 || m["deleted"] != true {
		t.Fatalf("delete API: %d %v", status, m)
	}
	if m := e.introspect(platform.AppView{App: storage.App{ID: svcID}, ClientSecret: svcSecret}, ledger["access_token"].(string)); active(m) {
		t.Fatalf("a token of a deleted API: %v", m)
	}
	if status, _ := c.do("GET", "/admin/v1/apis/{id}", nil, apiID); status != 404 {
		t.Fatalf("a deleted API: %d", status)
	}

	// Every operation the document describes was called.
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	json.Unmarshal(admin.OpenAPI(), &spec)
	var missing []string
	for path, ops := range spec.Paths {
		for method := range ops {
			if !c.called[strings.ToUpper(method)+" "+path] {
				missing = append(missing, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented but never called: %v", missing)
	}
}
