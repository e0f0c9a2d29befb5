package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The admin API's own layer, over fakes of the platform's services: the
// token check, problem details, body and parameter reading, paging and
// partial updates. (e2e tests it over a real platform and storage, and
// against openapi.json.)

const goodToken = "the-admin-token"

type fakeAdmin struct{}

func (fakeAdmin) CheckAdminToken(_ context.Context, raw string) (storage.AdminToken, error) {
	if raw != goodToken {
		return storage.AdminToken{}, platform.ErrAdminToken
	}
	return storage.AdminToken{Name: "ops"}, nil
}
func (fakeAdmin) Audit(context.Context, storage.AuditFilter) ([]storage.AuditEvent, error) {
	return nil, nil
}

// fakeUsers has users 1..n; its errors are what err says.
type fakeUsers struct {
	n         int64
	err       error
	lastLimit int
}

func (f *fakeUsers) CreateUser(context.Context, platform.NewUser) (storage.User, error) {
	return storage.User{}, f.err
}
func (f *fakeUsers) User(_ context.Context, id int64) (storage.User, error) {
	if f.err != nil {
		return storage.User{}, f.err
	}
	if id > f.n {
		return storage.User{}, &platform.Error{Kind: platform.NotFound, Message: "no such user"}
	}
	return storage.User{ID: id, Login: "user", CreatedAt: time.Unix(1, 0)}, nil
}
func (f *fakeUsers) ListUsers(_ context.Context, after int64, limit int) ([]storage.User, error) {
	f.lastLimit = limit
	var out []storage.User
	for id := after + 1; id <= f.n && len(out) < limit; id++ {
		out = append(out, storage.User{ID: id, Login: "user", CreatedAt: time.Unix(1, 0)})
	}
	return out, nil
}
func (f *fakeUsers) DisableUser(context.Context, platform.Actor, int64) (storage.User, error) {
	return storage.User{}, f.err
}
func (f *fakeUsers) SetPassword(context.Context, platform.Actor, int64, string) error { return f.err }

// fakeApps keeps one app, 7, and records the settings it was given.
type fakeApps struct {
	app     platform.AppView
	updated *platform.AppSettings
}

func (f *fakeApps) get(id int64) (platform.AppView, error) {
	if id != f.app.ID {
		return platform.AppView{}, &platform.Error{Kind: platform.NotFound, Message: "no app with that id"}
	}
	return f.app, nil
}
func (f *fakeApps) CreateApp(context.Context, platform.Actor, platform.NewApp) (platform.AppView, error) {
	return f.app, nil
}
func (f *fakeApps) App(_ context.Context, _ platform.Actor, id int64) (platform.AppView, error) {
	return f.get(id)
}
func (f *fakeApps) ListApps(context.Context, platform.Actor, storage.AppFilter) ([]platform.AppView, error) {
	return []platform.AppView{f.app}, nil
}
func (f *fakeApps) UpdateAppSettings(_ context.Context, _ platform.Actor, id int64, s platform.AppSettings) (platform.AppView, error) {
	f.updated = &s
	if _, err := f.get(id); err != nil {
		return platform.AppView{}, err
	}
	f.app.Title, f.app.Description, f.app.RedirectURIs = s.Title, s.Description, s.RedirectURIs
	return f.app, nil
}
func (f *fakeApps) RotateSecret(_ context.Context, _ platform.Actor, id int64) (platform.AppView, error) {
	return f.get(id)
}
func (f *fakeApps) RetireSecret(_ context.Context, _ platform.Actor, id int64) (platform.AppView, error) {
	return platform.AppView{}, &platform.Error{Kind: platform.Conflict, Message: "there is no old secret to retire"}
}
func (f *fakeApps) NewServiceToken(_ context.Context, _ platform.Actor, id int64) (platform.AppView, error) {
	return f.get(id)
}
func (f *fakeApps) SetPostLogoutRedirectURIs(_ context.Context, _ platform.Actor, id int64, uris []string) (platform.AppView, error) {
	if _, err := f.get(id); err != nil {
		return platform.AppView{}, err
	}
	f.app.PostLogoutRedirectURIs = uris
	return f.app, nil
}

func (f *fakeApps) SetBackchannelLogoutURI(_ context.Context, _ platform.Actor, id int64, uri string) (platform.AppView, error) {
	if _, err := f.get(id); err != nil {
		return platform.AppView{}, err
	}
	f.app.BackchannelLogoutURI = uri
	return f.app, nil
}

func (f *fakeApps) SetProfile(_ context.Context, _ platform.Actor, id int64, profile string) (platform.AppView, error) {
	if _, err := f.get(id); err != nil {
		return platform.AppView{}, err
	}
	f.app.Profile = profile
	return f.app, nil
}

func (f *fakeApps) SetAuth(_ context.Context, _ platform.Actor, id int64, auth platform.ClientAuth) (platform.AppView, error) {
	if _, err := f.get(id); err != nil {
		return platform.AppView{}, err
	}
	f.app.AuthMethod, f.app.JWKS, f.app.JWKSURI = auth.Method, auth.JWKS, auth.JWKSURI
	return f.app, nil
}

func (f *fakeApps) SetClientCredentials(_ context.Context, _ platform.Actor, id int64, on bool) (platform.AppView, error) {
	if _, err := f.get(id); err != nil {
		return platform.AppView{}, err
	}
	f.app.ClientCredentials = on
	return f.app, nil
}
func (f *fakeApps) DeleteApp(_ context.Context, _ platform.Actor, id int64) (platform.AppView, error) {
	return f.get(id)
}

type fakeCommunities struct{}

func (fakeCommunities) CreateCommunity(context.Context, platform.Actor, int64, string) (storage.Community, error) {
	return storage.Community{}, errors.New("the database caught fire")
}
func (fakeCommunities) Community(context.Context, platform.Actor, int64) (storage.Community, error) {
	return storage.Community{}, &platform.Error{Kind: platform.Forbidden, Message: "not yours"}
}
func (fakeCommunities) CommunityAdmins(context.Context, platform.Actor, int64) ([]storage.User, error) {
	return nil, nil
}
func (fakeCommunities) AddCommunityAdmin(context.Context, platform.Actor, int64, int64) error {
	return nil
}
func (fakeCommunities) RemoveCommunityAdmin(context.Context, platform.Actor, int64, int64) error {
	return nil
}

type fakeTokens struct{}

func (fakeTokens) ListTokens(context.Context, storage.TokenFilter) ([]storage.Token, error) {
	return nil, storage.ErrUnavailable
}
func (fakeTokens) RevokeTokenByHash(context.Context, platform.Actor, token.Hash) (bool, error) {
	return true, nil
}

type fixture struct {
	api   *API
	users *fakeUsers
	apps  *fakeApps
	log   *bytes.Buffer
}

func newFixture() *fixture {
	f := &fixture{users: &fakeUsers{n: 5}, apps: &fakeApps{app: platform.AppView{App: storage.App{ID: 7, Title: "Seven", Description: "kept",
		Type: storage.Web, RedirectURIs: []string{"https://seven.example/cb"}}}}, log: &bytes.Buffer{}}
	f.api = New(Deps{Admin: fakeAdmin{}, Users: f.users, Apps: f.apps, Communities: fakeCommunities{}, Tokens: fakeTokens{}},
		slog.New(slog.NewTextHandler(f.log, nil)))
	return f
}

// do sends a request with the admin token (auth "" for none) and returns
// the status, the headers and the decoded body.
func (f *fixture) do(t *testing.T, method, path, body, auth string) (int, http.Header, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", "Bearer "+auth)
	}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r)
	var m map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: the body is not JSON: %q", method, path, w.Body.String())
		}
	}
	return w.Code, w.Header(), m
}

func TestEveryOperationNeedsAnAdminToken(t *testing.T) {
	f := newFixture()
	for _, auth := range []string{"", "not-the-token"} {
		status, h, body := f.do(t, "GET", "/admin/v1/users/1", "", auth)
		if status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || h.Get("Content-Type") != "application/problem+json" || body["status"] != 401.0 {
			t.Errorf("token %q: %d %v %v, want a 401 problem with a Bearer challenge", auth, status, h, body)
		}
	}
	if status, _, _ := f.do(t, "GET", "/admin/v1/users/1", "", goodToken); status != 200 {
		t.Fatalf("with the admin token: %d", status)
	}
}

func TestErrorsAreProblemDetails(t *testing.T) {
	f := newFixture()
	cases := []struct {
		name, method, path, body string
		status                   int
		detail                   string
	}{
		{"a platform NotFound", "GET", "/admin/v1/users/9", "", 404, "no such user"},
		{"a platform Forbidden", "GET", "/admin/v1/communities/3", "", 403, "not yours"},
		{"a platform Conflict", "POST", "/admin/v1/apps/7/retire-secret", "", 409, "there is no old secret to retire"},
		{"storage down", "GET", "/admin/v1/tokens?app_id=7", "", 503, "storage cannot be reached right now"},
		{"a failure of ours, not told", "POST", "/admin/v1/communities", `{"owner_id":1,"name":"x"}`, 500, "internal error; try again"},
		{"a malformed id", "GET", "/admin/v1/users/abc", "", 400, `id must be a positive whole number, got "abc"`},
		{"an unknown field", "POST", "/admin/v1/users", `{"login":"x","admin":true}`, 400, "the body is not the JSON this operation takes"},
		{"two JSON values", "POST", "/admin/v1/users/1/password", `{"password":"a"}{"password":"b"}`, 400, "the body holds more than one JSON value"},
		{"a body too large", "POST", "/admin/v1/users", `{"login":"` + strings.Repeat("x", maxBody) + `"}`, 400, "the body is not the JSON this operation takes"},
		{"a negative limit", "GET", "/admin/v1/users?limit=-1", "", 400, `limit must be a whole number, got "-1"`},
		{"an unknown app type", "GET", "/admin/v1/apps?type=desktop", "", 400, `type must be standalone, web or iframe, got "desktop"`},
		{"tokens of nobody", "GET", "/admin/v1/tokens", "", 400, "app_id or user_id is required"},
		{"a malformed token hash", "DELETE", "/admin/v1/tokens/xyz", "", 400, "hash must be the 64 hex digits"},
		{"an unknown action", "POST", "/admin/v1/apps/7/launch", "", 404, "no such action"},
		{"an unknown operation", "GET", "/admin/v1/nothing", "", 404, "no such operation: GET /admin/v1/nothing"},
		{"a type that cannot change", "PATCH", "/admin/v1/apps/7", `{"type":"iframe"}`, 400, "owner_id and type cannot change"},
	}
	for _, c := range cases {
		status, h, body := f.do(t, c.method, c.path, c.body, goodToken)
		detail, _ := body["detail"].(string)
		if status != c.status || body["status"] != float64(c.status) || !strings.HasPrefix(detail, c.detail) || h.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %v, want %d with detail %q", c.name, status, body, c.status, c.detail)
		}
	}
	if h := func() http.Header { _, h, _ := f.do(t, "GET", "/admin/v1/tokens?user_id=1", "", goodToken); return h }(); h.Get("Retry-After") != "5" {
		t.Errorf("storage down: Retry-After %q", h.Get("Retry-After"))
	}
	if !strings.Contains(f.log.String(), "the database caught fire") {
		t.Errorf("a failure of ours is not logged: %s", f.log.String())
	}
}

func TestUsersArePaged(t *testing.T) {
	f := newFixture()
	status, _, body := f.do(t, "GET", "/admin/v1/users?limit=2", "", goodToken)
	if status != 200 || len(body["users"].([]any)) != 2 || body["next"] != 2.0 {
		t.Fatalf("the first page of 2: %d %v", status, body)
	}
	_, _, body = f.do(t, "GET", "/admin/v1/users?after=4&limit=2", "", goodToken)
	if len(body["users"].([]any)) != 1 || body["next"] != nil {
		t.Fatalf("the last page: %v, want one user and no next", body)
	}
	f.do(t, "GET", "/admin/v1/users?limit=5000", "", goodToken)
	if f.users.lastLimit != 1000 {
		t.Fatalf("a limit of 5000 asked the platform for %d, want 1000", f.users.lastLimit)
	}
	_, _, body = f.do(t, "GET", "/admin/v1/users?after=10", "", goodToken)
	if users, ok := body["users"].([]any); !ok || len(users) != 0 {
		t.Fatalf("past the end: %v, want an empty list (not null)", body)
	}
}

// PATCH changes the settings given and keeps the others.
func TestAppPatchIsPartial(t *testing.T) {
	f := newFixture()
	status, _, body := f.do(t, "PATCH", "/admin/v1/apps/7", `{"title":"Renamed","client_credentials":true}`, goodToken)
	if status != 200 || body["title"] != "Renamed" || body["client_credentials"] != true {
		t.Fatalf("PATCH: %d %v", status, body)
	}
	if s := f.apps.updated; s == nil || s.Description != "kept" || len(s.RedirectURIs) != 1 || s.RedirectURIs[0] != "https://seven.example/cb" {
		t.Fatalf("the settings passed on: %+v, want the untouched ones kept", s)
	}
	if status, _, body := f.do(t, "PATCH", "/admin/v1/apps/7", `{"iframe_scope":"friends,nonsense"}`, goodToken); status != 400 || !strings.HasPrefix(body["detail"].(string), "iframe_scope: ") {
		t.Fatalf("an unknown scope: %d %v", status, body)
	}
	if status, _, body := f.do(t, "DELETE", "/admin/v1/apps/7", "", goodToken); status != 200 || body["deleted"] != true || body["client_id"] != 7.0 {
		t.Fatalf("DELETE: %d %v", status, body)
	}
}
