package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// The defects found by trying the second surface (refresh, device flow,
// token exchange, VK ID, bots) as an attacker would; docs/security.md
// lists each with its test.

// A disabled user gets no token from anything obtained before the disable:
// a code from /authorize (legacy or VK ID), a device code they approved, a
// refresh token or a token exchange (their tokens are revoked anyway).
func TestDisabledUserGetsNoTokens(t *testing.T) {
	onBothBackends(t, testDisabledUserGetsNoTokens, fastAPI)
}

func testDisabledUserGetsNoTokens(t *testing.T, e *env) {
	u := e.user("dora", "")
	redirect := "https://dora.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	id := fmt.Sprint(app.ID)
	vk := e.vkidApp(u.ID, "dora-vkid.example")
	device := e.app(u.ID, storage.Standalone)

	// Everything waiting to be redeemed, and a live grant.
	code := obtainCode(t, e, id, redirect, "dora", nil)
	vkCode := e.vkidAuthorize(e.browser(), vk, "dora", "s1", "friends", nil)
	_, started := e.postForm("/oauth/device/code", url.Values{"client_id": {fmt.Sprint(device.ID)}, "scope": {"friends"}}, "", "")
	approveDevice(t, e, "dora", started["verification_uri_complete"].(string), "", "allow")
	_, grant := e.postForm("/access_token", url.Values{"code": {obtainCode(t, e, id, redirect, "dora", nil)}, "redirect_uri": {redirect}}, id, app.ClientSecret)
	access, refresh := grant["access_token"].(string), grant["refresh_token"].(string)

	if _, err := e.P.Users.DisableUser(t.Context(), platform.CLI, u.ID); err != nil {
		t.Fatal(err)
	}

	refused := func(name string, status int, m map[string]any) {
		t.Helper()
		if status != 400 || m["error"] != "invalid_grant" || m["access_token"] != nil {
			t.Errorf("%s after the disable: %d %v, want 400 invalid_grant", name, status, m)
		}
	}
	status, m := e.postForm("/access_token", url.Values{"code": {code}, "redirect_uri": {redirect}}, id, app.ClientSecret)
	refused("a code from /authorize", status, m)
	status, m = e.vkidExchange(vk, vkCode.Get("code"), vkCode.Get("device_id"), "s1")
	refused("a VK ID code", status, m)
	status, m = e.postForm("/access_token", url.Values{"client_id": {fmt.Sprint(device.ID)}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {started["device_code"].(string)}}, "", "")
	refused("an approved device code", status, m)
	status, m = e.postForm("/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, id, app.ClientSecret)
	refused("a refresh token", status, m)
	status, m = e.postForm("/access_token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {access},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}, id, app.ClientSecret)
	refused("a token exchange", status, m)

	live, err := e.Store.ListTokens(t.Context(), storage.TokenFilter{UserID: u.ID, LiveOnly: true})
	if err != nil || len(live) > 0 {
		t.Fatalf("the disabled user holds %d live tokens (%v), want none", len(live), err)
	}
}

// A VK ID code redeemed with a wrong device_id, another app's credentials,
// a wrong verifier or redirect URI stays unspent: its owner then redeems
// it. The legacy endpoint keeps a code another app presents, too.
func TestFailedRedemptionKeepsTheCode(t *testing.T) {
	onBothBackends(t, testFailedRedemptionKeepsTheCode, fastAPI)
}

func testFailedRedemptionKeepsTheCode(t *testing.T, e *env) {
	u := e.user("owen", "")
	app := e.vkidApp(u.ID, "owen.example")
	thief := e.vkidApp(u.ID, "thief.example")
	back := e.vkidAuthorize(e.browser(), app, "owen", "s1", "friends", nil)
	code, device := back.Get("code"), back.Get("device_id")
	exchange := func(client vkidApp, q url.Values) (int, map[string]any) {
		base := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {client.redirect}, "client_id": {client.id},
			"code_verifier": {vkidVerifier}, "state": {"s1"}, "device_id": {device}}
		for k, v := range q {
			base[k] = v
		}
		return e.vkid("/oauth2/auth", base, url.Values{"code": {code}})
	}
	for name, attempt := range map[string]struct {
		client vkidApp
		q      url.Values
	}{
		"another device_id":      {app, url.Values{"device_id": {"someone-elses-device"}}},
		"another app":            {thief, nil},
		"a wrong verifier":       {app, url.Values{"code_verifier": {vkidVerifier + "x"}}},
		"another redirect URI":   {app, url.Values{"redirect_uri": {"https://owen.example/other"}}},
		"another app's redirect": {thief, url.Values{"redirect_uri": {app.redirect}}},
	} {
		if status, m := exchange(attempt.client, attempt.q); status == 200 {
			t.Fatalf("%s: %d %v, want refused", name, status, m)
		}
	}
	// The legacy endpoint, with another web app's valid credentials.
	other := e.app(u.ID, storage.Web, app.redirect)
	if status, m := e.postForm("/access_token", url.Values{"code": {code}, "redirect_uri": {app.redirect}, "code_verifier": {vkidVerifier}},
		fmt.Sprint(other.ID), other.ClientSecret); status == 200 {
		t.Fatalf("another app at /access_token: %d %v", status, m)
	}
	if status, m := exchange(app, nil); status != 200 || m["access_token"] == nil {
		t.Fatalf("the owner's redemption after the failed ones: %d %v, want the tokens", status, m)
	}
}

// Revoking a token revokes every token exchanged from it (RFC 8693), at any
// depth, at once: at introspection and at the API. Revoking an exchanged
// token leaves the one it came from.
func TestRevokingATokenRevokesWhatWasExchangedFromIt(t *testing.T) {
	onBothBackends(t, testRevokingRevokesExchanged, fastAPI)
}

func testRevokingRevokesExchanged(t *testing.T, e *env) {
	u := e.user("xavi", "")
	redirect := "https://xavi.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	id := fmt.Sprint(app.ID)
	grant := func() string {
		_, m := e.postForm("/access_token", url.Values{"code": {obtainCode(t, e, id, redirect, "xavi", map[string]string{"scope": "friends,photos"})},
			"redirect_uri": {redirect}}, id, app.ClientSecret)
		return m["access_token"].(string)
	}
	exchange := func(subject, scope string) string {
		t.Helper()
		status, m := e.postForm("/access_token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "scope": {scope}}, id, app.ClientSecret)
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, m)
		}
		return m["access_token"].(string)
	}
	works := func(tok string) bool {
		t.Helper()
		code, _ := apiError(e.call("account.getAppPermissions", tok, nil))
		return code == 0 && active(e.introspect(app, tok))
	}
	revoke := func(tok string) {
		t.Helper()
		if s, _ := e.postForm("/oauth/revoke", url.Values{"token": {tok}}, id, app.ClientSecret); s != 200 {
			t.Fatalf("revoke: %d", s)
		}
	}

	root := grant()
	child := exchange(root, "friends,photos")
	grandchild := exchange(child, "friends")
	sibling := grant() // the same user and app, another grant
	if !works(root) || !works(child) || !works(grandchild) {
		t.Fatal("the tokens do not work before any revocation")
	}
	revoke(child)
	if works(child) || works(grandchild) || !works(root) {
		t.Fatalf("after revoking the exchanged token: itself %v, its exchange %v, its subject %v; want false, false, true", works(child), works(grandchild), works(root))
	}
	child = exchange(root, "friends")
	grandchild = exchange(child, "friends")
	revoke(root)
	if works(root) || works(child) || works(grandchild) {
		t.Fatalf("after revoking the subject: %v %v %v, want nothing working", works(root), works(child), works(grandchild))
	}
	if !works(sibling) {
		t.Fatal("another grant of the same user and app was revoked too")
	}
}

// A user code guessed with the dialog's answer (POST /device with
// user_code and decision) counts like one typed alone: five wrong ones and
// the person is throttled, and cannot approve or deny anyone's device.
func TestDeviceDecisionsCountAsGuesses(t *testing.T) {
	onBothBackends(t, testDeviceDecisionsCountAsGuesses)
}

func testDeviceDecisionsCountAsGuesses(t *testing.T, e *env) {
	owner := e.user("tv-owner", "")
	e.user("guesser", "")
	app := e.app(owner.ID, storage.Standalone)
	id := fmt.Sprint(app.ID)
	_, m := e.postForm("/oauth/device/code", url.Values{"client_id": {id}, "scope": {"friends"}}, "", "")
	victim, userCode := m["device_code"].(string), m["user_code"].(string)

	b := e.browser()
	b.get(e.URL + "/device")
	b.login("guesser", "password-guesser")
	guess := func(code, decision string) int {
		t.Helper()
		b.get(e.URL + "/device")
		b.submit(b.formWith("user_code"), map[string]string{"user_code": code, "decision": decision})
		return b.status
	}
	for i, decision := range []string{"allow", "deny", "allow", "deny", "allow"} {
		if status := guess("BCDF-GHJK", decision); status != 422 {
			t.Fatalf("wrong guess %d with decision=%s: %d, want 422", i+1, decision, status)
		}
	}
	for _, decision := range []string{"allow", "deny"} {
		if status := guess(userCode, decision); status != 429 {
			t.Fatalf("the right code with decision=%s after five wrong guesses: %d, want 429", decision, status)
		}
	}
	_, m = e.postForm("/access_token", url.Values{"client_id": {id}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {victim}}, "", "")
	if m["error"] != "authorization_pending" {
		t.Fatalf("the victim's device after the throttled guesses: %v, want authorization_pending", m)
	}
}

// groups.addCallbackServer refuses a loopback target in the forms a
// resolver reads as one, when it is added.
func TestCallbackTargetsRefusedWhenAdded(t *testing.T) {
	e := newEnv(t, fastAPI)
	s := newBotSetup(t, e)
	for _, target := range []string{"http://localhost./vk", "http://127.1/vk", "http://0x7f000001/vk", "http://2130706433/vk", "http://0177.0.0.1/vk"} {
		code, msg := apiError(e.call("groups.addCallbackServer", s.botToken, map[string]string{"group_id": fmt.Sprint(s.community.ID), "url": target, "title": "Local"}))
		if code != 100 || !strings.Contains(msg, "refused") {
			t.Errorf("%s: error %d %q, want 100 refused", target, code, msg)
		}
	}
}

// Waiting long polls are bounded: a second wait on a key ends the first
// (as VK's server does), and a community's eleventh wait ends its oldest,
// so a node holds at most platform.MaxPollWaitsPerCommunity waits per
// community however many polls arrive.
func TestLongPollWaitsAreBounded(t *testing.T) {
	e := newEnv(t, fastAPI)
	s := newBotSetup(t, e)
	g := fmt.Sprint(s.community.ID)
	e.call("groups.setLongPollSettings", s.botToken, map[string]string{"group_id": g, "enabled": "1", "message_new": "1"})
	server := func() (string, string) {
		srv := e.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)
		e.Clock.Advance(time.Second) // keys are minted per second
		return srv["server"].(string), srv["key"].(string)
	}
	wait := func(u, key string) chan map[string]any {
		done := make(chan map[string]any, 1)
		go func() { done <- pollOnce(u + "?act=a_check&ts=1&wait=25&key=" + key) }()
		return done
	}
	answered := func(what string, done chan map[string]any) {
		t.Helper()
		select {
		case m := <-done:
			if m == nil || m["ts"] != "1" || len(m["updates"].([]any)) != 0 {
				t.Fatalf("%s: %v, want an empty answer at the same ts", what, m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting", what)
		}
	}
	waiting := func(n int) {
		t.Helper()
		waitFor(t, 10*time.Second, fmt.Sprintf("%d polls waiting", n), func() bool { return e.P.Bots.PollsWaiting() == n })
	}

	u, key := server()
	first := wait(u, key)
	waiting(1)
	second := wait(u, key)
	answered("the first wait on a key, after a second", first)
	waiting(1)

	others := []chan map[string]any{}
	for range platform.MaxPollWaitsPerCommunity - 1 {
		_, k := server()
		others = append(others, wait(u, k))
	}
	waiting(platform.MaxPollWaitsPerCommunity)
	_, k := server()
	last := wait(u, k)
	answered("the community's oldest wait, after one more than the bound", second)
	waiting(platform.MaxPollWaitsPerCommunity)

	// An event answers the rest.
	e.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "wake up", "random_id": "1"})
	for _, done := range append(others, last) {
		if m := <-done; m == nil || len(m["updates"].([]any)) != 1 {
			t.Fatalf("a waiting poll after the event: %v", m)
		}
	}
	waiting(0)
}

// prompt=login asks for the password however recent the session (OpenID
// Connect Core §3.1.2.1), then answers the request; with a pushed request
// too, which is spent only once the request is answered.
func TestPromptLoginAlwaysAsks(t *testing.T) { onBothBackends(t, testPromptLoginAlwaysAsks) }

func testPromptLoginAlwaysAsks(t *testing.T, e *env) {
	u := e.user("pia", "")
	redirect := "https://pia.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	id := fmt.Sprint(app.ID)
	params := map[string]string{"client_id": id, "redirect_uri": redirect, "response_type": "code", "scope": "friends", "state": "s"}
	b := e.browser()
	b.get(e.authorize(params))
	b.login("pia", "password-pia")
	if q := query(t, b.approve()); q.Get("code") == "" {
		t.Fatalf("the first sign-in: %v", q)
	}

	params["prompt"] = "login"
	asked := func(what, to string) {
		t.Helper()
		if to != "" || !strings.Contains(b.page, `name="password"`) {
			t.Fatalf("%s: went to %q, want the login form", what, to)
		}
	}
	asked("prompt=login seconds after signing in", b.get(e.authorize(params)))
	if q := query(t, b.login("pia", "password-pia")); q.Get("code") == "" || q.Get("state") != "s" {
		t.Fatalf("after signing in again: %v, want the code", q)
	}
	asked("prompt=login again, at once", b.get(e.authorize(params)))

	_, m := e.postForm("/oauth/par", url.Values{"redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"friends"}, "prompt": {"login"}, "state": {"pushed"}}, id, app.ClientSecret)
	pushed := e.URL + "/authorize?" + url.Values{"client_id": {id}, "request_uri": {m["request_uri"].(string)}}.Encode()
	asked("a pushed request with prompt=login", b.get(pushed))
	if q := query(t, b.login("pia", "password-pia")); q.Get("code") == "" || q.Get("state") != "pushed" {
		t.Fatalf("the pushed request after signing in again: %v, want the code", q)
	}
	if b.get(pushed); b.status != 400 {
		t.Fatalf("the pushed request once answered: %d, want 400 (spent)", b.status)
	}
}

// An event a receiver answers with anything but "ok" comes again when its
// retry is due, on both backends.
func TestCallbackRetryComesWhenDue(t *testing.T) {
	onBothBackends(t, testCallbackRetryComesWhenDue, fastAPI, allowLoopback)
}

func testCallbackRetryComesWhenDue(t *testing.T, e *env) {
	s := newBotSetup(t, e)
	g := fmt.Sprint(s.community.ID)
	rcv := newReceiver(t)
	rcv.code = e.call("groups.getCallbackConfirmationCode", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)["code"].(string)
	r := e.call("groups.addCallbackServer", s.botToken, map[string]string{"group_id": g, "url": rcv.srv.URL + "/vk", "title": "Retry", "secret_key": "k"})
	sid := fmt.Sprint(r["response"].(map[string]any)["server_id"])
	waitFor(t, 10*time.Second, "the server confirmed", func() bool {
		items := e.call("groups.getCallbackServers", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)["items"].([]any)
		return items[0].(map[string]any)["status"] == "ok"
	})
	e.call("groups.setCallbackSettings", s.botToken, map[string]string{"group_id": g, "server_id": sid, "message_new": "1"})
	rcv.mu.Lock()
	rcv.fail = 2
	rcv.mu.Unlock()
	e.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "again", "random_id": "1"})
	waitFor(t, 10*time.Second, "the first attempt recorded", func() bool { return attempted(t, e, s.community.ID, 1) })
	e.Clock.Advance(6 * time.Second) // the first retry is due 5 s later
	waitFor(t, 10*time.Second, "the first retry", func() bool { return attempted(t, e, s.community.ID, 2) })
	e.Clock.Advance(16 * time.Second) // the second 15 s after that
	waitFor(t, 10*time.Second, "the second retry, answered ok", func() bool { return len(rcv.events("message_new")) == 3 })
}

// A receiver that closes a kept-alive connection as the retry reuses it
// (Node closes idle connections after 5 s, about when the first retry
// comes) costs the delivery nothing: the retry goes again on a new
// connection at once, rather than 15 s later as a failed attempt.
func TestCallbackRetryOnAClosedConnection(t *testing.T) {
	onBothBackends(t, testCallbackRetryOnAClosedConnection, fastAPI, allowLoopback)
}

func testCallbackRetryOnAClosedConnection(t *testing.T, e *env) {
	s := newBotSetup(t, e)
	g := fmt.Sprint(s.community.ID)
	code := e.call("groups.getCallbackConfirmationCode", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)["code"].(string)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var types []string
	// The first connection answers the confirmation and fails the event
	// once, keeping the connection; then reads the retry and closes it
	// unanswered. Every later connection answers ok.
	go func() {
		for conns := 0; ; conns++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(first bool) {
				defer c.Close()
				rd := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(rd)
					if err != nil {
						return
					}
					var m map[string]any
					json.NewDecoder(req.Body).Decode(&m)
					typ, _ := m["type"].(string)
					mu.Lock()
					types = append(types, typ)
					mu.Unlock()
					answer := func(status int, body string) {
						fmt.Fprintf(c, "HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n%s", status, len(body), body)
					}
					switch {
					case typ == "confirmation" && m["secret"] != nil:
						answer(400, "a server without a secret_key is sent none")
					case typ == "confirmation":
						answer(200, code)
					case first && n == 1:
						answer(500, "not now")
					case first:
						return // the receiver closed the idle connection
					default:
						answer(200, "ok")
					}
				}
			}(conns == 0)
		}
	}()
	r := e.call("groups.addCallbackServer", s.botToken, map[string]string{"group_id": g, "url": "http://" + ln.Addr().String() + "/vk", "title": "Closer"})
	sid := fmt.Sprint(r["response"].(map[string]any)["server_id"])
	waitFor(t, 10*time.Second, "the server confirmed", func() bool {
		items := e.call("groups.getCallbackServers", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)["items"].([]any)
		return items[0].(map[string]any)["status"] == "ok"
	})
	e.call("groups.setCallbackSettings", s.botToken, map[string]string{"group_id": g, "server_id": sid, "message_new": "1"})
	e.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "again", "random_id": "1"})
	waitFor(t, 10*time.Second, "the first attempt recorded", func() bool { return attempted(t, e, s.community.ID, 1) })
	e.Clock.Advance(6 * time.Second)
	waitFor(t, 10*time.Second, "the retry delivered", func() bool {
		ds, err := e.Store.Deliveries(t.Context(), s.community.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Attempts == 2 && ds[0].Status != storage.CallbackOK {
			t.Fatalf("the retry on a closed connection was counted as a failed attempt: %+v", ds[0])
		}
		return len(ds) == 1 && ds[0].Status == storage.CallbackOK && ds[0].Attempts == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"confirmation", "message_new", "message_new", "message_new"}; !slices.Equal(types, want) {
		t.Fatalf("the receiver read %v, want %v", types, want)
	}
}
