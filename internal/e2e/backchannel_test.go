package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"latchkey/internal/platform"
)

// logoutReceiver is an app's back-channel logout endpoint: it keeps the
// logout tokens it is sent, answering 500 to the first fail of them.
type logoutReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	fail   int
	tries  int
	tokens []string
}

func newLogoutReceiver(t *testing.T) *logoutReceiver {
	r := &logoutReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries++
		if req.Method != "POST" || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "not a logout", http.StatusBadRequest)
			return
		}
		if r.fail > 0 {
			r.fail--
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		r.tokens = append(r.tokens, req.PostFormValue("logout_token"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *logoutReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// logoutToken is what a logout token says, checked.
type logoutToken struct {
	Issuer   string                    `json:"iss"`
	Subject  string                    `json:"sub"`
	Audience string                    `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	Expiry   int64                     `json:"exp"`
	JTI      string                    `json:"jti"`
	SID      string                    `json:"sid"`
	Events   map[string]map[string]any `json:"events"`
	Nonce    *string                   `json:"nonce"`
}

// verifyLogoutToken checks raw's signature with go-oidc's key set of the
// server and its claims (Back-Channel Logout §2.6) for the app and session.
func verifyLogoutToken(t *testing.T, e *env, raw, appID, sid string, userID int64) {
	t.Helper()
	payload, err := oidc.NewRemoteKeySet(context.Background(), e.URL+"/oauth/jwks").VerifySignature(context.Background(), raw)
	if err != nil {
		t.Fatalf("the logout token does not verify: %v", err)
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	var h struct{ Typ string }
	json.Unmarshal(header, &h)
	lt := decodeJSON[logoutToken](t, string(payload))
	_, hasEvent := lt.Events[platform.LogoutEvent]
	if h.Typ != "logout+jwt" || lt.Issuer != e.URL || lt.Audience != appID || lt.SID != sid || lt.Subject != fmt.Sprint(userID) ||
		lt.IssuedAt == 0 || lt.Expiry <= lt.IssuedAt || lt.JTI == "" || !hasEvent || lt.Nonce != nil {
		t.Fatalf("logout token: typ %q %s", h.Typ, payload)
	}
}

// Back-channel logout: an app that a session signed in to gets a logout
// token (verified with go-oidc's key set) when the session ends by logout,
// when it is ended from /account/security, and when the user is disabled;
// a receiver that answers 500 first gets it again.
func TestBackChannelLogout(t *testing.T) { onBothBackends(t, testBackChannelLogout, allowLoopback) }

func testBackChannelLogout(t *testing.T, e *env) {
	ctx := context.Background()
	u := e.user("lena", "")
	rcv := newLogoutReceiver(t)
	rp := e.oidcClient(u.ID)
	// The app's owner sets the URL in the console.
	ob := e.browser()
	ob.get(e.URL + "/login")
	ob.login("lena", "password-lena")
	ob.get(e.URL + "/apps/" + rp.id)
	ob.submit(ob.formWith("backchannel_logout_uri"), map[string]string{"backchannel_logout_uri": rcv.srv.URL + "/logout"})
	if a, err := e.P.Apps.LookupApp(ctx, mustID(t, rp.id)); err != nil || a.BackchannelLogoutURI != rcv.srv.URL+"/logout" || !strings.Contains(ob.page, "Back-channel logout saved") {
		t.Fatalf("the console's back-channel logout URL: %+v %v", a.BackchannelLogoutURI, err)
	}
	ob.submit(ob.formWith("backchannel_logout_uri"), map[string]string{"backchannel_logout_uri": "javascript:alert(1)"})
	if ob.status != http.StatusUnprocessableEntity {
		t.Fatalf("a javascript: back-channel URL: %d", ob.status)
	}
	other := e.oidcClient(u.ID) // an app without a back-channel URI: told nothing
	signIn := func() (*browser, string) {
		t.Helper()
		b := e.browser()
		b.get(rp.authorize(e, nil))
		to := b.login("lena", "password-lena")
		if to == "" {
			to = b.approve()
		}
		sid := rp.redeem(t, to).SID
		to = b.get(other.authorize(e, nil))
		if to == "" {
			to = b.approve()
		}
		other.redeem(t, to)
		return b, sid
	}

	// Logout; the receiver answers 500 to the first try.
	rcv.mu.Lock()
	rcv.fail = 1
	rcv.mu.Unlock()
	b, sid := signIn()
	b.get(e.URL + "/logout")
	b.submit(b.formWith("csrf"), nil)
	waitFor(t, 10*time.Second, "the first try recorded", func() bool {
		ds, err := e.Store.AppDeliveries(ctx, mustID(t, rp.id), 10)
		return err == nil && len(ds) == 1 && ds[0].Attempts == 1 && ds[0].LastError == "answered 500"
	})
	if len(rcv.received()) != 0 {
		t.Fatal("a token kept from a try answered 500")
	}
	e.Clock.Advance(6 * time.Second) // the retry is due 5 s later
	waitFor(t, 10*time.Second, "the logout token again", func() bool { return len(rcv.received()) == 1 })
	verifyLogoutToken(t, e, rcv.received()[0], rp.id, sid, u.ID)

	// A session ended from another's security page.
	e.Clock.Advance(time.Second)
	ended, sid2 := signIn()
	b2, _ := signIn()
	b2.get(e.URL + "/account/security")
	var endForm form
	for _, f := range b2.forms() {
		if strings.HasSuffix(f.action, "/end") {
			endForm = f // the sessions list, the last used first: ended's is after b2's
		}
	}
	b2.submit(endForm, nil)
	waitFor(t, 10*time.Second, "the logout token of the ended session", func() bool { return len(rcv.received()) == 2 })
	verifyLogoutToken(t, e, rcv.received()[1], rp.id, sid2, u.ID)
	if ended.get(e.URL + "/settings/profile"); !strings.Contains(ended.pageURL, "/login") {
		t.Fatal("the ended session still works")
	}

	// The user disabled: the one live session's apps hear of it.
	_, sid3 := signIn()
	if _, err := e.P.Users.DisableUser(ctx, platform.CLI, u.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the logout tokens of a disabled user", func() bool { return len(rcv.received()) == 4 })
	sids := map[string]bool{}
	for _, raw := range rcv.received()[2:] {
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
		sids[decodeJSON[logoutToken](t, string(payload)).SID] = true
		verifyLogoutToken(t, e, raw, rp.id, decodeJSON[logoutToken](t, string(payload)).SID, u.ID)
	}
	if !sids[sid3] || len(sids) != 2 {
		t.Fatalf("disabling told sessions %v, want b2's and %s", sids, sid3)
	}
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	var id int64
	if _, err := fmt.Sscan(s, &id); err != nil {
		t.Fatal(err)
	}
	return id
}
