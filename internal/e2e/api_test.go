package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// apiEnv is a server with one of each kind of token.
type apiEnv struct {
	*env
	alice, bob storage.User
	app, other platform.AppView
	community  storage.Community
	// tokens
	user, userNoScope, group, groupNoScope, service string
}

func newAPIEnv(t *testing.T, opts ...option) *apiEnv { return newAPIEnvOn(t, newEnv(t, opts...)) }

// newAPIEnvOn seeds the users, apps, community and tokens on e.
func newAPIEnvOn(t *testing.T, base *env) *apiEnv {
	e := &apiEnv{env: base}
	ctx := context.Background()
	e.alice = e.env.user("alice", "alice@example.com")
	e.bob = e.env.user("bob", "")
	e.app = e.env.app(e.alice.ID, storage.Web, "https://app.example/cb")
	e.other = e.env.app(e.bob.ID, storage.Web, "https://other.example/cb")
	var err error
	if e.community, err = e.P.Communities.CreateCommunity(ctx, platform.CLI, e.alice.ID, "Cats"); err != nil {
		t.Fatal(err)
	}
	// Bob authorized the app; Alice's tokens come from a consent too.
	for _, u := range []storage.User{e.alice, e.bob} {
		if err := e.P.Consents.Grant(ctx, u.ID, e.app.ID, scope.Messages|scope.Groups, nil, true); err != nil {
			t.Fatal(err)
		}
	}
	e.user = e.issue(storage.Token{Kind: token.User, AppID: e.app.ID, UserID: e.alice.ID, Scope: scope.Messages | scope.Groups | scope.Friends, IP: "192.0.2.10", Flow: storage.FlowImplicit}, 24*time.Hour)
	e.userNoScope = e.issue(storage.Token{Kind: token.User, AppID: e.app.ID, UserID: e.alice.ID, Scope: scope.Friends, Flow: storage.FlowImplicit}, 24*time.Hour)
	e.group = e.issue(storage.Token{Kind: token.Community, AppID: e.app.ID, UserID: e.alice.ID, CommunityID: e.community.ID, Scope: scope.CommunityMessages | scope.CommunityManage, Flow: storage.FlowImplicit}, 0)
	e.groupNoScope = e.issue(storage.Token{Kind: token.Community, AppID: e.app.ID, UserID: e.alice.ID, CommunityID: e.community.ID, Scope: scope.CommunityPhotos, Flow: storage.FlowImplicit}, 0)
	e.service = e.app.ServiceToken
	return e
}

func (e *apiEnv) issue(t storage.Token, ttl time.Duration) string {
	raw, _, err := e.P.Tokens.IssueToken(context.Background(), t, ttl)
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// call calls a method with the token as a parameter and returns the decoded
// envelope, checking the HTTP side of the contract on every answer.
func (e *env) call(method, tok string, params map[string]string) map[string]any {
	e.t.Helper()
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	if _, ok := params["v"]; !ok {
		q.Set("v", "5.199")
	}
	if tok != "" {
		q.Set("access_token", tok)
	}
	resp, err := http.PostForm(e.URL+"/method/"+method, q)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.envelope(resp)
}

func (e *env) envelope(resp *http.Response) map[string]any {
	e.t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		e.t.Fatalf("HTTP %d, Content-Type %q: every API answer is 200 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if len(resp.Cookies()) > 0 {
		e.t.Fatal("the API set a cookie")
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatalf("not JSON: %q", body)
	}
	return m
}

// apiError returns the error code and message of an envelope, or 0.
func apiError(m map[string]any) (int, string) {
	e, ok := m["error"].(map[string]any)
	if !ok {
		return 0, ""
	}
	return int(e["error_code"].(float64)), e["error_msg"].(string)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestMethodsByTokenKind(t *testing.T) {
	onBothBackends(t, func(t *testing.T, base *env) { testMethodsByTokenKind(t, newAPIEnvOn(t, base)) })
}

func testMethodsByTokenKind(t *testing.T, e *apiEnv) {
	alice, bob, g := fmt.Sprint(e.alice.ID), fmt.Sprint(e.bob.ID), fmt.Sprint(e.community.ID)
	issued := e.Clock.Now()
	type want struct {
		response string // JSON of the response, when it succeeds
		code     int    // error code otherwise
		msg      string // part of the error message
	}
	cases := []struct {
		name   string
		method string
		token  string
		params map[string]string
		want   want
	}{
		{"users.get, user token: itself", "users.get", e.user, nil, want{response: `[{"id":` + alice + `,"first_name":"Alice","last_name":"Tester","is_closed":false,"can_access_closed":true}]`}},
		{"users.get, fields", "users.get", e.user, map[string]string{"user_ids": bob, "fields": "screen_name"}, want{response: `[{"id":` + bob + `,"first_name":"Bob","last_name":"Tester","is_closed":false,"can_access_closed":true,"screen_name":"bob"}]`}},
		{"users.get, community token", "users.get", e.group, map[string]string{"user_ids": alice + "," + bob}, want{response: `[{"id":` + alice + `,"first_name":"Alice","last_name":"Tester","is_closed":false,"can_access_closed":true},{"id":` + bob + `,"first_name":"Bob","last_name":"Tester","is_closed":false,"can_access_closed":true}]`}},
		{"users.get, service token needs user_ids", "users.get", e.service, nil, want{code: 100, msg: "user_ids is missing or invalid"}},
		{"users.get, unknown user", "users.get", e.service, map[string]string{"user_ids": "99999"}, want{code: 113, msg: "Invalid user id."}},
		{"users.get, garbage id", "users.get", e.service, map[string]string{"user_ids": "abc"}, want{code: 113, msg: "Invalid user id."}},
		{"account.getAppPermissions, user", "account.getAppPermissions", e.user, nil, want{response: fmt.Sprint(int64(scope.Messages | scope.Groups | scope.Friends))}},
		{"account.getAppPermissions, community", "account.getAppPermissions", e.group, nil, want{code: 27, msg: "Group authorization failed: method is unavailable with group auth."}},
		{"account.getAppPermissions, service", "account.getAppPermissions", e.service, nil, want{code: 28, msg: "Application authorization failed: method is unavailable with service token."}},
		{"groups.get, admin", "groups.get", e.user, map[string]string{"filter": "admin"}, want{response: `{"count":1,"items":[` + g + `]}`}},
		{"groups.get, extended", "groups.get", e.user, map[string]string{"filter": "admin", "extended": "1"}, want{response: `{"count":1,"items":[{"id":` + g + `,"name":"Cats","screen_name":"club` + g + `","is_closed":0,"type":"group","is_admin":1,"admin_level":3}]}`}},
		{"groups.get, without the groups scope", "groups.get", e.userNoScope, nil, want{code: 15, msg: "Access denied: no access to call this method."}},
		{"groups.getById, service", "groups.getById", e.service, map[string]string{"group_ids": g, "v": "5.131"}, want{response: `[{"id":` + g + `,"name":"Cats","screen_name":"club` + g + `","is_closed":0,"type":"group"}]`}},
		{"groups.getById, community token, own community, 5.199", "groups.getById", e.group, nil, want{response: `{"groups":[{"id":` + g + `,"name":"Cats","screen_name":"club` + g + `","is_closed":0,"type":"group"}],"profiles":[]}`}},
		{"groups.getById, unknown", "groups.getById", e.user, map[string]string{"group_id": "777"}, want{code: 100, msg: "group_ids"}},
		{"groups.getTokenPermissions, community", "groups.getTokenPermissions", e.group, nil, want{response: `{"mask":266240,"permissions":[{"name":"messages","setting":4096},{"name":"manage","setting":262144}]}`}},
		{"groups.getTokenPermissions, user", "groups.getTokenPermissions", e.user, nil, want{code: 15}},
		{"messages.send, user", "messages.send", e.user, map[string]string{"peer_id": bob, "message": "hi", "random_id": "1"}, want{response: "1"}},
		{"messages.send, same random_id is the same message", "messages.send", e.user, map[string]string{"peer_id": bob, "message": "hi again", "random_id": "1"}, want{response: "1"}},
		{"messages.send, community", "messages.send", e.group, map[string]string{"user_id": bob, "message": "from cats", "random_id": "1"}, want{response: "a new id"}},
		{"messages.send, user without messages scope", "messages.send", e.userNoScope, map[string]string{"peer_id": bob, "message": "x", "random_id": "2"}, want{code: 15}},
		{"messages.send, community without messages scope", "messages.send", e.groupNoScope, map[string]string{"peer_id": bob, "message": "x", "random_id": "2"}, want{code: 15}},
		{"messages.send, service", "messages.send", e.service, map[string]string{"peer_id": bob, "message": "x", "random_id": "2"}, want{code: 28}},
		{"messages.send, no message", "messages.send", e.user, map[string]string{"peer_id": bob, "random_id": "3"}, want{code: 100, msg: "message is missing or invalid"}},
		{"messages.send, no random_id", "messages.send", e.user, map[string]string{"peer_id": bob, "message": "x"}, want{code: 100, msg: "random_id is missing or invalid"}},
		{"messages.send, unknown peer", "messages.send", e.user, map[string]string{"peer_id": "99999", "message": "x", "random_id": "4"}, want{code: 113}},
		{"secure.checkToken", "secure.checkToken", e.service, map[string]string{"token": e.user}, want{response: "checked"}},
		{"secure.checkToken, matching ip", "secure.checkToken", e.service, map[string]string{"token": e.user, "ip": "192.0.2.10"}, want{response: "checked"}},
		{"secure.checkToken, other ip", "secure.checkToken", e.service, map[string]string{"token": e.user, "ip": "192.0.2.11"}, want{code: 15, msg: "ip"}},
		{"secure.checkToken, forged", "secure.checkToken", e.service, map[string]string{"token": "lku1" + strings.Repeat("0", 60)}, want{code: 15, msg: "invalid token"}},
		{"secure.checkToken, another app's service token", "secure.checkToken", e.other.ServiceToken, map[string]string{"token": e.user}, want{code: 15, msg: "invalid token"}},
		{"secure.checkToken, user token", "secure.checkToken", e.user, map[string]string{"token": e.user}, want{code: 15}},
		{"secure.checkToken, community token", "secure.checkToken", e.group, map[string]string{"token": e.user}, want{code: 27}},
		{"secure.sendNotification, to users who authorized the app", "secure.sendNotification", e.service, map[string]string{"user_ids": bob + ",99999", "message": "Your turn"}, want{response: "[" + bob + "]"}},
		{"secure.sendNotification, message too long", "secure.sendNotification", e.service, map[string]string{"user_id": bob, "message": strings.Repeat("x", 255)}, want{code: 100, msg: "message"}},
		{"secure.addAppEvent", "secure.addAppEvent", e.service, map[string]string{"user_id": bob, "activity_id": "2", "value": "10"}, want{response: "1"}},
		{"secure.addAppEvent, unknown user", "secure.addAppEvent", e.service, map[string]string{"user_id": "99999", "activity_id": "2"}, want{code: 113}},
		{"utils.getServerTime, no token", "utils.getServerTime", "", nil, want{response: "now"}},
		{"utils.getServerTime, service token", "utils.getServerTime", e.service, nil, want{response: "now"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.Clock.Advance(time.Second) // a fresh rate allowance for each case
			m := e.call(c.method, c.token, c.params)
			code, msg := apiError(m)
			if c.want.code != 0 {
				if code != c.want.code || !strings.Contains(msg, c.want.msg) {
					t.Fatalf("got %d %q (%s), want error %d containing %q", code, msg, jsonString(m), c.want.code, c.want.msg)
				}
				return
			}
			if code != 0 {
				t.Fatalf("error %d %q", code, msg)
			}
			got := jsonString(m["response"])
			if c.want.response == "checked" {
				r := m["response"].(map[string]any)
				if r["success"] != float64(1) || r["user_id"] != float64(e.alice.ID) || r["date"] != float64(issued.Unix()) || r["expire"] != float64(issued.Add(24*time.Hour).Unix()) {
					t.Fatalf("checkToken = %s", got)
				}
				return
			}
			switch c.want.response {
			case "now":
				c.want.response = fmt.Sprint(e.Clock.Now().Unix())
			case "a new id":
				if id, ok := m["response"].(float64); !ok || id <= 1 {
					t.Fatalf("response = %s, want a message id other than the first", got)
				}
				return
			}
			if got != normalize(t, c.want.response) {
				t.Fatalf("response = %s, want %s", got, c.want.response)
			}
		})
	}
	// What the methods stored is there.
	ctx := context.Background()
	msgs, _ := e.Store.ListMessages(ctx, e.bob.ID)
	notes, _ := e.Store.ListNotifications(ctx, e.bob.ID)
	events, _ := e.Store.ListAppEvents(ctx, e.app.ID)
	if len(msgs) != 2 || msgs[0].FromCommunityID != e.community.ID || msgs[1].Text != "hi" || len(notes) != 1 || notes[0].Message != "Your turn" || len(events) != 1 || events[0].Value != 10 {
		t.Fatalf("stored: %d messages, %d notifications, %d events", len(msgs), len(notes), len(events))
	}
}

func TestEnvelopeAndTokenErrors(t *testing.T) {
	onBothBackends(t, func(t *testing.T, base *env) { testEnvelopeAndTokenErrors(t, newAPIEnvOn(t, base)) })
}

func testEnvelopeAndTokenErrors(t *testing.T, e *apiEnv) {
	t.Run("token in the Authorization header", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.URL+"/method/account.getAppPermissions?v=5.199", nil)
		req.Header.Set("Authorization", "Bearer "+e.user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if m := e.envelope(resp); m["response"] == nil {
			t.Fatalf("header token: %v", m)
		}
	})
	t.Run("GET query works like POST", func(t *testing.T) {
		resp, err := http.Get(e.URL + "/method/account.getAppPermissions?v=5.199&access_token=" + e.user)
		if err != nil {
			t.Fatal(err)
		}
		// A small answer's length is counted by net/http, a large one's by
		// the dispatcher: the envelope is never chunked.
		if resp.ContentLength <= 0 || len(resp.TransferEncoding) != 0 {
			t.Fatalf("Content-Length %d, Transfer-Encoding %v", resp.ContentLength, resp.TransferEncoding)
		}
		if m := e.envelope(resp); m["response"] == nil {
			t.Fatalf("%v", m)
		}
	})
	t.Run("multipart body", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("access_token", e.user)
		mw.WriteField("v", "5.199")
		mw.WriteField("user_ids", fmt.Sprint(e.bob.ID))
		mw.Close()
		resp, err := http.Post(e.URL+"/method/users.get", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		m := e.envelope(resp)
		if r, ok := m["response"].([]any); !ok || len(r) != 1 || r[0].(map[string]any)["id"] != float64(e.bob.ID) {
			t.Fatalf("%v", m)
		}
	})
	t.Run("missing v", func(t *testing.T) {
		code, msg := apiError(e.call("users.get", e.user, map[string]string{"v": ""}))
		if code != 8 || msg != "Invalid request: v (version) is required." {
			t.Fatalf("%d %q", code, msg)
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		code, msg := apiError(e.call("users.teleport", e.user, nil))
		if code != 3 || msg != "Unknown method passed." {
			t.Fatalf("%d %q", code, msg)
		}
	})
	t.Run("no token", func(t *testing.T) {
		code, msg := apiError(e.call("users.get", "", nil))
		if code != 5 || msg != "User authorization failed: no access_token passed." {
			t.Fatalf("%d %q", code, msg)
		}
	})
	t.Run("forged token", func(t *testing.T) {
		last := "0" // change the last digit, whatever it is
		if strings.HasSuffix(e.user, "0") {
			last = "1"
		}
		for _, bad := range []string{"nonsense", e.user[:len(e.user)-1] + last, strings.ToUpper(e.user)} {
			code, msg := apiError(e.call("users.get", bad, nil))
			if code != 5 || msg != "User authorization failed: invalid access_token (4)." {
				t.Fatalf("%q: %d %q", bad, code, msg)
			}
		}
	})
	t.Run("request_params lists the request, never the token", func(t *testing.T) {
		m := e.call("users.teleport", e.user, map[string]string{"user_ids": "1", "fields": "a,b"})
		got := jsonString(m["error"].(map[string]any)["request_params"])
		want := `[{"key":"oauth","value":"1"},{"key":"method","value":"users.teleport"},{"key":"fields","value":"a,b"},{"key":"user_ids","value":"1"},{"key":"v","value":"5.199"}]`
		if got != want {
			t.Fatalf("request_params = %s\nwant %s", got, want)
		}
		if strings.Contains(jsonString(m), e.user) {
			t.Fatal("the error envelope contains the token")
		}
	})
	t.Run("expired user token", func(t *testing.T) {
		short := e.issue(storage.Token{Kind: token.User, AppID: e.app.ID, UserID: e.alice.ID, Flow: storage.FlowImplicit}, time.Hour)
		if code, _ := apiError(e.call("users.get", short, nil)); code != 0 {
			t.Fatalf("fresh token refused: %d", code)
		}
		e.Clock.Advance(time.Hour)
		code, msg := apiError(e.call("users.get", short, nil))
		if code != 5 || msg != "User authorization failed: access_token has expired." {
			t.Fatalf("%d %q", code, msg)
		}
	})
	t.Run("the user removed the app", func(t *testing.T) {
		tok := e.issue(storage.Token{Kind: token.User, AppID: e.other.ID, UserID: e.bob.ID, Flow: storage.FlowImplicit}, 0)
		if code, _ := apiError(e.call("users.get", tok, nil)); code != 0 {
			t.Fatalf("token refused before removal: %d", code) // and now cached
		}
		if err := e.P.Tokens.RemoveAppAccess(context.Background(), platform.Actor{UserID: e.bob.ID}, e.bob.ID, e.other.ID); err != nil {
			t.Fatal(err)
		}
		code, msg := apiError(e.call("users.get", tok, nil))
		if code != 5 || msg != "User authorization failed: user revoke access for this token." {
			t.Fatalf("%d %q", code, msg)
		}
	})
	t.Run("revoked by the app (RFC 7009) while cached", func(t *testing.T) {
		tok := e.issue(storage.Token{Kind: token.User, AppID: e.app.ID, UserID: e.bob.ID, Flow: storage.FlowImplicit}, 0)
		e.call("users.get", tok, nil)
		e.postForm("/oauth/revoke", url.Values{"token": {tok}}, fmt.Sprint(e.app.ID), e.app.ClientSecret)
		code, msg := apiError(e.call("users.get", tok, nil))
		if code != 5 || msg != "User authorization failed: invalid access_token (4)." {
			t.Fatalf("%d %q", code, msg)
		}
	})
	t.Run("regenerated service token", func(t *testing.T) {
		old := e.other.ServiceToken
		if code, _ := apiError(e.call("utils.getServerTime", old, nil)); code != 0 {
			t.Fatal("old service token refused before regeneration")
		}
		e.call("users.get", old, map[string]string{"user_ids": "1"})
		v, err := e.P.Apps.NewServiceToken(context.Background(), platform.CLI, e.other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := apiError(e.call("users.get", old, map[string]string{"user_ids": "1"})); code != 5 {
			t.Fatalf("old service token: %d, want 5", code)
		}
		if code, _ := apiError(e.call("users.get", v.ServiceToken, map[string]string{"user_ids": "1"})); code != 0 {
			t.Fatalf("new service token: %d", code)
		}
	})
	t.Run("deleted app", func(t *testing.T) {
		gone := e.env.app(e.bob.ID, storage.Standalone)
		tok := e.issue(storage.Token{Kind: token.User, AppID: gone.ID, UserID: e.bob.ID, Flow: storage.FlowImplicit}, 0)
		e.call("users.get", tok, nil)
		if _, err := e.P.Apps.DeleteApp(context.Background(), platform.CLI, gone.ID); err != nil {
			t.Fatal(err)
		}
		if code, _ := apiError(e.call("users.get", tok, nil)); code != 5 {
			t.Fatalf("token of a deleted app: %d, want 5", code)
		}
	})
}

func TestRateLimitHitAndRecovered(t *testing.T) {
	e := newAPIEnv(t)
	for i := range 3 {
		if code, _ := apiError(e.call("account.getAppPermissions", e.user, nil)); code != 0 {
			t.Fatalf("call %d refused: %d", i+1, code)
		}
	}
	code, msg := apiError(e.call("account.getAppPermissions", e.user, nil))
	if code != 6 || msg != "Too many requests per second." {
		t.Fatalf("fourth call in one second: %d %q", code, msg)
	}
	// Another token of the same user has its own allowance.
	if code, _ := apiError(e.call("account.getAppPermissions", e.userNoScope, nil)); code != 0 {
		t.Fatalf("another token limited: %d", code)
	}
	// Community tokens get 20 per second.
	for i := range 20 {
		if code, _ := apiError(e.call("groups.getTokenPermissions", e.group, nil)); code != 0 {
			t.Fatalf("community call %d: %d", i+1, code)
		}
	}
	if code, _ := apiError(e.call("groups.getTokenPermissions", e.group, nil)); code != 6 {
		t.Fatalf("21st community call: %d, want 6", code)
	}
	e.Clock.Advance(time.Second)
	if code, _ := apiError(e.call("account.getAppPermissions", e.user, nil)); code != 0 {
		t.Fatalf("after a second: %d", code)
	}
	// secure.* for an app with few users: 5 per second.
	for i := range 5 {
		if code, _ := apiError(e.call("secure.checkToken", e.service, map[string]string{"token": e.user})); code != 0 {
			t.Fatalf("secure call %d: %d", i+1, code)
		}
	}
	if code, _ := apiError(e.call("secure.checkToken", e.service, map[string]string{"token": e.user})); code != 6 {
		t.Fatalf("sixth secure call: %d, want 6", code)
	}
	// The secure.* limit is the app's, not the token's: another service
	// token of the same app (client credentials) shares it, and minting
	// more tokens does not multiply it.
	more := e.issue(storage.Token{Kind: token.Service, AppID: e.app.ID, Flow: storage.FlowClientCredentials}, 0)
	if code, _ := apiError(e.call("secure.checkToken", more, map[string]string{"token": e.user})); code != 6 {
		t.Fatalf("a second service token of the app, in the same second: %d, want 6", code)
	}
}

func TestRealOAuth2ClientCallsMethods(t *testing.T) {
	e := newEnv(t)
	u := e.user("lena", "")
	redirect := "https://lena.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	conf := &oauth2.Config{ClientID: fmt.Sprint(app.ID), ClientSecret: app.ClientSecret, RedirectURL: redirect, Scopes: []string{"friends"},
		Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/access_token"}}
	code := obtainCode(t, e, fmt.Sprint(app.ID), redirect, "lena", map[string]string{"scope": "friends"})
	tok, err := conf.Exchange(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	client := conf.Client(context.Background(), tok) // sends Authorization: Bearer
	resp, err := client.Get(e.URL + "/method/users.get?v=5.199")
	if err != nil {
		t.Fatal(err)
	}
	m := e.envelope(resp)
	r, ok := m["response"].([]any)
	if !ok || len(r) != 1 || r[0].(map[string]any)["first_name"] != "Lena" {
		t.Fatalf("users.get through the oauth2 client: %v", m)
	}
	resp, err = client.Get(e.URL + "/method/account.getAppPermissions?v=5.199")
	if err != nil {
		t.Fatal(err)
	}
	if m := e.envelope(resp); m["response"] != float64(scope.Friends) {
		t.Fatalf("account.getAppPermissions = %v", m)
	}
}

// normalize re-encodes JSON so that key order does not matter.
func normalize(t *testing.T, s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad expected JSON %s: %v", s, err)
	}
	return jsonString(v)
}
