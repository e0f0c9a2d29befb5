package methods

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/internal/api"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The methods' own layer, through the real dispatcher over fakes of the
// platform: parameter reading, VK's answer shapes and error codes. (e2e
// runs them over a real platform and storage, and vk-io against them.)

var now = time.Unix(1_700_000_000, 0)

// The tokens the fakes know, by the string a test presents.
var tokens = map[string]storage.Token{
	"user":      {Kind: token.User, AppID: 1, UserID: 2, Scope: scope.Messages | scope.Groups, IP: "198.51.100.7", IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)},
	"service":   {Kind: token.Service, AppID: 1},
	"community": {Kind: token.Community, AppID: 1, UserID: 2, CommunityID: 30, Scope: scope.CommunityMessages},
	"other":     {Kind: token.User, AppID: 9, UserID: 2},
}

// fake is both the dispatcher's platform and the methods'. Users 1..5
// exist; community 30 does; user 4 denied community messages.
type fake struct{ sent []int64 }

func (f *fake) CheckTokenAt(_ context.Context, raw string, _ time.Time) (storage.Token, error) {
	if t, ok := tokens[raw]; ok {
		return t, nil
	}
	return storage.Token{}, platform.ErrTokenInvalid
}
func (f *fake) CheckToken(ctx context.Context, raw string) (storage.Token, error) {
	return f.CheckTokenAt(ctx, raw, now)
}
func (f *fake) TokenUsed(token.Hash, time.Time)                    {}
func (f *fake) AppUserCount(context.Context, int64) (int64, error) { return 0, nil }
func (f *fake) Nodes() int                                         { return 1 }
func (f *fake) DPoPNonce() string                                  { return "" }

func (f *fake) CheckBinding(context.Context, storage.Token, bool, string, string, string, string) error {
	return nil
}
func (f *fake) UsersByID(_ context.Context, ids []int64) ([]storage.User, error) {
	var out []storage.User
	for _, id := range ids {
		if id >= 1 && id <= 5 {
			out = append(out, storage.User{ID: id, Login: "user" + string(rune('0'+id)), FirstName: "First", LastName: "Last"})
		}
	}
	return out, nil
}
func (f *fake) CommunitiesOf(context.Context, int64) ([]storage.Community, error) {
	return []storage.Community{{ID: 30, Name: "Thirty"}}, nil
}
func (f *fake) LookupCommunity(_ context.Context, id int64) (storage.Community, error) {
	if id != 30 {
		return storage.Community{}, &platform.Error{Kind: platform.NotFound, Message: "no such community"}
	}
	return storage.Community{ID: 30, Name: "Thirty"}, nil
}
func (f *fake) SendMessage(_ context.Context, _ storage.Token, peer int64, _ string, _ int64, _ time.Time) (int64, error) {
	switch {
	case peer == 4:
		return 0, platform.ErrMessagesDenied
	case peer > 5:
		return 0, platform.ErrNoSuchUser
	}
	f.sent = append(f.sent, peer)
	return int64(len(f.sent)), nil
}
func (f *fake) SendNotifications(context.Context, int64, []int64, string, time.Time) ([]int64, error) {
	return nil, nil
}
func (f *fake) AddAppEvent(context.Context, storage.AppEvent) error { return nil }

func newServer(f *fake) http.Handler {
	public, _ := url.Parse("https://lk.example")
	d := api.New(f, func() time.Time { return now }, slog.New(slog.DiscardHandler), api.Limits{User: 1000, Community: 1000, Service: 1000},
		All(Deps{P: f, PublicURL: public}))
	mux := http.NewServeMux()
	mux.Handle("/method/{name}", d)
	return mux
}

// call calls method with params and returns the response or the error code.
func call(t *testing.T, h http.Handler, method string, params url.Values) (any, int) {
	t.Helper()
	r := httptest.NewRequest("POST", "/method/"+method, strings.NewReader(params.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var env struct {
		Response any `json:"response"`
		Error    *struct {
			Code int `json:"error_code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s: not JSON: %q", method, w.Body.String())
	}
	if env.Error != nil {
		return nil, env.Error.Code
	}
	return env.Response, 0
}

func params(kv ...string) url.Values {
	v := url.Values{"v": {"5.199"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestUsersGet(t *testing.T) {
	h := newServer(&fake{})
	resp, code := call(t, h, "users.get", params("access_token", "user", "user_ids", "id2, 3,99", "fields", "photo_100,screen_name"))
	users, _ := resp.([]any)
	if code != 0 || len(users) != 2 {
		t.Fatalf("users.get of 2, 3 and a missing 99: %v %d, want the two that exist", resp, code)
	}
	u := users[0].(map[string]any)
	if u["id"] != 2.0 || u["photo_100"] != "https://lk.example/avatar/2.svg?size=100" || u["screen_name"] != "user2" || u["photo_50"] != nil {
		t.Fatalf("the fields asked for: %v", u)
	}
	if resp, _ := call(t, h, "users.get", params("access_token", "user")); len(resp.([]any)) != 1 || resp.([]any)[0].(map[string]any)["id"] != 2.0 {
		t.Fatalf("users.get without user_ids is the token's user: %v", resp)
	}
	for _, c := range []struct {
		name string
		p    url.Values
		code int
	}{
		{"a malformed id", params("access_token", "user", "user_ids", "2,abc"), 113},
		{"only missing users", params("access_token", "user", "user_ids", "99"), 113},
		{"more than 1000 ids", params("access_token", "user", "user_ids", strings.Repeat("1,", 1000)+"1"), 100},
		{"a service token without user_ids", params("access_token", "service"), 100},
	} {
		if _, code := call(t, h, "users.get", c.p); code != c.code {
			t.Errorf("%s: error %d, want %d", c.name, code, c.code)
		}
	}
}

func TestSecureCheckToken(t *testing.T) {
	h := newServer(&fake{})
	resp, code := call(t, h, "secure.checkToken", params("access_token", "service", "token", "user", "ip", "198.51.100.7"))
	m, _ := resp.(map[string]any)
	if code != 0 || m["success"] != 1.0 || m["user_id"] != 2.0 || m["expire"] != float64(now.Add(time.Hour).Unix()) {
		t.Fatalf("a live user token of the app: %v %d", resp, code)
	}
	for _, c := range []struct{ name, token, ip string }{
		{"another app's token", "other", ""},
		{"a community token", "community", ""},
		{"an unknown token", "nothing", ""},
		{"another address", "user", "203.0.113.9"},
	} {
		if _, code := call(t, h, "secure.checkToken", params("access_token", "service", "token", c.token, "ip", c.ip)); code != 15 {
			t.Errorf("%s: error %d, want 15", c.name, code)
		}
	}
	if _, code := call(t, h, "secure.checkToken", params("access_token", "user", "token", "user")); code == 0 {
		t.Fatal("secure.checkToken with a user token answered")
	}
}

func TestMessagesSend(t *testing.T) {
	f := &fake{}
	h := newServer(f)
	if resp, code := call(t, h, "messages.send", params("access_token", "community", "peer_id", "3", "message", "hi", "random_id", "1")); code != 0 || resp != 1.0 {
		t.Fatalf("messages.send: %v %d", resp, code)
	}
	resp, code := call(t, h, "messages.send", params("access_token", "community", "peer_ids", "1, 2", "message", "hi", "random_id", "2"))
	list, _ := resp.([]any)
	if code != 0 || len(list) != 2 || list[1].(map[string]any)["peer_id"] != 2.0 {
		t.Fatalf("messages.send with peer_ids: %v %d, want one item per peer", resp, code)
	}
	for _, c := range []struct {
		name string
		p    url.Values
		code int
	}{
		{"a user who denied the community", params("access_token", "community", "peer_id", "4", "message", "hi", "random_id", "3"), 901},
		{"a user who does not exist", params("access_token", "community", "peer_id", "77", "message", "hi", "random_id", "4"), 113},
		{"a community writing to a community", params("access_token", "community", "peer_id", "-30", "message", "hi", "random_id", "5"), 100},
		{"no peer", params("access_token", "community", "message", "hi", "random_id", "6"), 100},
		{"a malformed peer_ids", params("access_token", "community", "peer_ids", "1,x", "message", "hi", "random_id", "7"), 100},
	} {
		if _, code := call(t, h, "messages.send", c.p); code != c.code {
			t.Errorf("%s: error %d, want %d", c.name, code, c.code)
		}
	}
	if len(f.sent) != 3 {
		t.Fatalf("%d messages sent, want 3 (the refused ones send nothing)", len(f.sent))
	}
}

// groups.getById answers a list before 5.194 and wraps it since.
func TestGroupsGetByIDByVersion(t *testing.T) {
	h := newServer(&fake{})
	old, code := call(t, h, "groups.getById", url.Values{"v": {"5.131"}, "access_token": {"user"}, "group_ids": {"club30"}})
	if list, ok := old.([]any); code != 0 || !ok || len(list) != 1 {
		t.Fatalf("at 5.131: %v %d, want a list", old, code)
	}
	wrapped, _ := call(t, h, "groups.getById", url.Values{"v": {"5.199"}, "access_token": {"community"}})
	m, ok := wrapped.(map[string]any)
	if !ok || len(m["groups"].([]any)) != 1 || m["groups"].([]any)[0].(map[string]any)["id"] != 30.0 {
		t.Fatalf("at 5.199 with the community's own token: %v, want {groups:[30], profiles:[]}", wrapped)
	}
	if _, code := call(t, h, "groups.getById", params("access_token", "user", "group_ids", "31")); code != 100 {
		t.Fatalf("a community that does not exist: error %d, want 100", code)
	}
}
