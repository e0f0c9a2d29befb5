package oauth

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

const blank = "https://lk.example/blank.html"

var apps = map[int64]storage.App{
	1: {ID: 1, Type: storage.Web, RedirectURIs: []string{"https://app.example/cb", "https://app.example/cb?x=1"}},
	2: {ID: 2, Type: storage.Standalone, RedirectURIs: []string{"com.example.app:/oauth"}},
}

func lookup(_ context.Context, id int64) (storage.App, error) {
	a, ok := apps[id]
	if !ok {
		return a, storage.ErrNotFound
	}
	return a, nil
}

func parse(q string) (*AuthorizeRequest, error) {
	v, _ := url.ParseQuery(q)
	return ParseAuthorize(context.Background(), v, lookup, AuthorizeConfig{BlankURL: blank})
}

var authorizeCases = []struct {
	name     string
	query    string
	code     string // "" for success
	redirect bool
}{
	{"web app, registered URI", "client_id=1&redirect_uri=https://app.example/cb&scope=friends", "", false},
	{"registered URI with its query", "client_id=1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1", "", false},
	{"standalone on blank.html, implicit", "client_id=2&redirect_uri=" + url.QueryEscape(blank) + "&response_type=token", "", false},
	{"missing client_id", "redirect_uri=https://app.example/cb", protocol.InvalidClient, false},
	{"client_id not a number", "client_id=abc&redirect_uri=https://app.example/cb", protocol.InvalidClient, false},
	{"unknown client", "client_id=7&redirect_uri=https://app.example/cb", protocol.InvalidClient, false},
	{"missing redirect_uri", "client_id=1", protocol.InvalidRequest, false},
	{"trailing slash", "client_id=1&redirect_uri=https://app.example/cb/", protocol.InvalidRequest, false},
	{"case differs", "client_id=1&redirect_uri=https://APP.example/cb", protocol.InvalidRequest, false},
	{"extra query", "client_id=1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D2", protocol.InvalidRequest, false},
	{"blank.html for a web app", "client_id=1&redirect_uri=" + url.QueryEscape(blank), protocol.InvalidRequest, false},
	{"unknown scope", "client_id=1&redirect_uri=https://app.example/cb&scope=friends,x", protocol.InvalidScope, true},
	{"bad response_type", "client_id=1&redirect_uri=https://app.example/cb&response_type=id_token", protocol.UnsupportedResponseType, true},
	{"bad group id", "client_id=1&redirect_uri=https://app.example/cb&group_ids=1,-2", protocol.InvalidRequest, true},
	{"user scope for communities", "client_id=1&redirect_uri=https://app.example/cb&group_ids=1&scope=friends", protocol.InvalidScope, true},
	{"standalone code flow without PKCE", "client_id=2&redirect_uri=com.example.app:/oauth&response_type=code", protocol.InvalidRequest, true},
	{"plain PKCE when not allowed", "client_id=2&redirect_uri=com.example.app:/oauth&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=plain", protocol.InvalidRequest, true},
	{"short challenge", "client_id=2&redirect_uri=com.example.app:/oauth&code_challenge=abc&code_challenge_method=S256", protocol.InvalidRequest, true},
	{"S256 challenge", "client_id=2&redirect_uri=com.example.app:/oauth&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=S256", "", false},
}

func TestParseAuthorize(t *testing.T) {
	for _, c := range authorizeCases {
		t.Run(c.name, func(t *testing.T) {
			req, err := parse(c.query)
			if c.code == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != c.code || oe.Redirect != c.redirect {
				t.Fatalf("err = %#v, want %s (redirect %v)", err, c.code, c.redirect)
			}
			if c.redirect && req == nil {
				t.Fatal("a redirectable error without the request")
			}
		})
	}
}

func TestParseAuthorizeDefaults(t *testing.T) {
	if _, err := parse("client_id=1&redirect_uri=https://app.example/cb&scope=friends+photos&display=touch&group_ids=5,5,6&scope="); err == nil {
		t.Fatal("user scope names accepted for communities")
	}
	req, err := parse("client_id=1&redirect_uri=https://app.example/cb&scope=manage,messages&display=touch&group_ids=5,5,6&state=a%26b")
	if err != nil {
		t.Fatal(err)
	}
	if req.ResponseType != protocol.ResponseCode || req.Display != protocol.DisplayMobile || len(req.CommunityIDs) != 2 ||
		req.Scope != scope.CommunityManage|scope.CommunityMessages || req.State != "a&b" || req.Audience() != scope.Community {
		t.Fatalf("req = %+v", req)
	}
}

func TestResponseURL(t *testing.T) {
	req := &AuthorizeRequest{RedirectURI: "https://app.example/cb?x=1", ResponseType: protocol.ResponseCode, State: "s t"}
	if got := ErrorURL(req, errUserDenied); got != "https://app.example/cb?x=1&error=access_denied&error_reason=user_denied&error_description=User+denied+your+request&state=s+t" {
		t.Fatalf("code error URL = %s", got)
	}
	req.ResponseType, req.RedirectURI = protocol.ResponseToken, "https://app.example/cb"
	if got := NewResponse(req).Add("access_token", "T").Add("expires_in", "0").URL(); got != "https://app.example/cb#access_token=T&expires_in=0" {
		t.Fatalf("fragment URL = %s", got)
	}
}

func FuzzRedirectURIAllowed(f *testing.F) {
	for _, s := range []string{"https://app.example/cb", "https://app.example/cb/", "https://APP.example/cb", blank, "com.example.app:/oauth", "", "https://app.example/cb?x=1"} {
		f.Add(s, int64(1))
		f.Add(s, int64(2))
	}
	f.Fuzz(func(t *testing.T, uri string, id int64) {
		app, ok := apps[id]
		if !ok {
			return
		}
		got := RedirectURIAllowed(app, uri, blank)
		want := app.Type == storage.Standalone && uri == blank
		for _, r := range app.RedirectURIs {
			want = want || r == uri
		}
		if got != want {
			t.Fatalf("RedirectURIAllowed(app %d, %q) = %v, want %v: only exact matches may pass", id, uri, got, want)
		}
	})
}

func FuzzParseAuthorize(f *testing.F) {
	for _, c := range authorizeCases {
		f.Add(c.query)
	}
	f.Fuzz(func(t *testing.T, q string) {
		req, err := parse(q)
		var oe *Error
		if err != nil && !errors.As(err, &oe) {
			t.Fatalf("non-OAuth error %v", err)
		}
		// Whatever is redirected to must be a registered URI: an error
		// about an unverified client never leaves the server.
		if err == nil || oe.Redirect {
			if req == nil || !RedirectURIAllowed(req.App, req.RedirectURI, blank) {
				t.Fatalf("redirect to an unverified URI for %q", q)
			}
			if req.Scope&^scope.Known(req.Audience()) != 0 {
				t.Fatalf("unknown scope bits for %q", q)
			}
		}
	})
}
