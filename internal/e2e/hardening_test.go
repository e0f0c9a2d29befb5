package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Text that is not valid UTF-8, or holds NUL, is refused with a clear error
// before it reaches storage, on both backends (PostgreSQL would fail the
// write, and the server would answer 500).
func TestInvalidTextIsRefusedBeforeStorage(t *testing.T) { onBothBackends(t, testInvalidText, fastAPI) }

func testInvalidText(t *testing.T, base *env) {
	e := newAPIEnvOn(t, base)
	bad := []string{"\xff\xfe", "nul\x00inside"}
	for _, text := range bad {
		for _, call := range []struct{ method, tok, param string }{
			{"messages.send", e.user, "message"},
			{"secure.sendNotification", e.service, "message"},
			{"users.get", e.user, "fields"},
		} {
			params := map[string]string{call.param: text, "random_id": "7", "peer_id": fmt.Sprint(e.bob.ID), "user_ids": fmt.Sprint(e.bob.ID)}
			if code, msg := apiError(e.call(call.method, call.tok, params)); code != 100 || !strings.Contains(msg, call.param) {
				t.Errorf("%s with %s=%q: error %d %q, want 100 naming the parameter", call.method, call.param, text, code, msg)
			}
		}
	}

	// POST /login with a login that is not text: the usual wrong-login answer.
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("\xff", "whatever-password")
	if b.status != http.StatusUnauthorized || !strings.Contains(b.page, "Wrong login or password") {
		t.Fatalf("login=%%ff: %d, want 401 wrong login or password", b.status)
	}

	// The console and the community pages refuse such names with the form.
	b.login("alice", "password-alice")
	for _, text := range bad {
		b.get(e.URL + "/apps/new")
		b.submit(b.formWith("title"), map[string]string{"title": text, "type": "web"})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "Title") {
			t.Errorf("app title %q: %d, want 422 naming the title", text, b.status)
		}
		b.get(e.URL + "/apps/new")
		b.submit(b.formWith("title"), map[string]string{"title": "Fine", "type": "web", "description": text})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "Description") {
			t.Errorf("app description %q: %d, want 422 naming the description", text, b.status)
		}
		b.get(e.URL + "/communities")
		b.submit(b.formWith("name"), map[string]string{"name": text})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "Name") {
			t.Errorf("community name %q: %d, want 422 naming the name", text, b.status)
		}
		b.get(e.URL + fmt.Sprintf("/communities/%d", e.community.ID))
		b.submit(b.formWith("login"), map[string]string{"login": text})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.page, "There is no user with login") {
			t.Errorf("add-admin login %q: %d, want 422 no such user", text, b.status)
		}
	}
	apps, err := e.P.Apps(t.Context(), e.alice.ID)
	if err != nil || len(apps) != 1 {
		t.Fatalf("after refused creations alice has %d apps (%v), want her first one only", len(apps), err)
	}
}

// Two apps of one user may pick the same random_id: each message is sent.
func TestRandomIDDeduplicatesPerApp(t *testing.T) {
	e := newAPIEnv(t)
	other := e.issue(storage.Token{Kind: token.User, AppID: e.other.ID, UserID: e.alice.ID, Scope: scope.Messages, Flow: storage.FlowImplicit}, time.Hour)
	first := e.call("messages.send", e.user, map[string]string{"peer_id": fmt.Sprint(e.bob.ID), "message": "from app A", "random_id": "99"})
	again := e.call("messages.send", e.user, map[string]string{"peer_id": fmt.Sprint(e.bob.ID), "message": "from app A again", "random_id": "99"})
	fromB := e.call("messages.send", other, map[string]string{"peer_id": fmt.Sprint(e.bob.ID), "message": "from app B", "random_id": "99"})
	if first["response"] == nil || again["response"] != first["response"] {
		t.Fatalf("the same app's retry: %v then %v, want the same message id", first, again)
	}
	if fromB["response"] == nil || fromB["response"] == first["response"] {
		t.Fatalf("another app's message with the same random_id: %v, want a message of its own (first %v)", fromB, first["response"])
	}
	items, err := e.P.Inbox(t.Context(), e.bob.ID)
	if err != nil || len(items) != 2 {
		t.Fatalf("bob's inbox has %d items (%v), want both apps' messages", len(items), err)
	}
}
