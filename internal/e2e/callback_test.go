package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/internal/config"
)

// receiver is a Callback API server a bot runs: it answers the
// confirmation with code and each event with "ok", except while failing.
type receiver struct {
	mu      sync.Mutex
	code    string
	fail    int // answer this many more events with 500
	got     []map[string]any
	srv     *httptest.Server
	answers []int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(req.Body)
		json.Unmarshal(b, &m)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, m)
		switch {
		case m["type"] == "confirmation":
			io.WriteString(w, r.code)
		case r.fail > 0:
			r.fail--
			r.answers = append(r.answers, 500)
			w.WriteHeader(500)
		default:
			r.answers = append(r.answers, 200)
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) events(typ string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, m := range r.got {
		if m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

func allowLoopback(c *config.Config) {
	c.CallbackTargets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

// The Callback API: a receiver on loopback (allowed here as a developer
// allows it with --callback-allow) gets the confirmation, answers with the
// community's code, then gets message_new with its secret; one that
// answers an error once gets the event again; a server restarted while
// an event waits loses nothing. Without the allowance, loopback targets
// are refused.
func TestCallbackAPI(t *testing.T) {
	e := newEnv(t, fastAPI, allowLoopback)
	s := newBotSetup(t, e)
	g := fmt.Sprint(s.community.ID)
	rcv := newReceiver(t)
	rcv.code = e.call("groups.getCallbackConfirmationCode", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)["code"].(string)
	if len(rcv.code) != 8 {
		t.Fatalf("confirmation code %q", rcv.code)
	}
	r := e.call("groups.addCallbackServer", s.botToken, map[string]string{"group_id": g, "url": rcv.srv.URL + "/vk", "title": "My bot", "secret_key": "s3cr3t"})
	sid := fmt.Sprint(r["response"].(map[string]any)["server_id"])
	status := func() string {
		items := e.call("groups.getCallbackServers", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)["items"].([]any)
		return items[0].(map[string]any)["status"].(string)
	}
	waitFor(t, 10*time.Second, "the server confirmed", func() bool { return status() == "ok" })
	// The confirmation carries the secret (vk-wire.md §7): SDKs check it
	// before answering with the code.
	if conf := rcv.events("confirmation"); len(conf) != 1 || conf[0]["secret"] != "s3cr3t" || conf[0]["group_id"] != float64(s.community.ID) {
		t.Fatalf("the confirmation: %v, want the group and the secret", conf)
	}
	e.call("groups.setCallbackSettings", s.botToken, map[string]string{"group_id": g, "server_id": sid, "message_new": "1", "api_version": "5.199"})

	// An error once: the event comes again after the backoff.
	rcv.mu.Lock()
	rcv.fail = 1
	rcv.mu.Unlock()
	e.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "callback me", "random_id": "1"})
	waitFor(t, 10*time.Second, "the first attempt recorded", func() bool { return attempted(t, e, s.community.ID, 1) })
	e.Clock.Advance(6 * time.Second) // the first retry comes 5 s later
	waitFor(t, 10*time.Second, "the retry", func() bool { return len(rcv.events("message_new")) == 2 })
	ev := rcv.events("message_new")[1]
	msg := ev["object"].(map[string]any)["message"].(map[string]any)
	if ev["secret"] != "s3cr3t" || ev["group_id"] != float64(s.community.ID) || msg["text"] != "callback me" || ev["v"] != "5.199" {
		t.Fatalf("the event: %v", ev)
	}

	// A restart while an event waits for its retry: the next server sends it.
	rcv.mu.Lock()
	rcv.fail = 1
	rcv.mu.Unlock()
	e.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "after the restart", "random_id": "2"})
	waitFor(t, 10*time.Second, "the failed attempt recorded", func() bool { return attempted(t, e, s.community.ID, 1) })
	e.Stop()
	restarted := start(t, startOptions{sqlite: e.DB, clock: e.Clock}, fastAPI, allowLoopback)
	restarted.Clock.Advance(6 * time.Second)
	waitFor(t, 10*time.Second, "the event delivered by the restarted server", func() bool {
		evs := rcv.events("message_new")
		return len(evs) == 4 && evs[3]["object"].(map[string]any)["message"].(map[string]any)["text"] == "after the restart"
	})

	// The community's page shows its admins the servers and deliveries
	// (the restarted server serves it).
	b := restarted.browser()
	b.get(restarted.URL + "/login?next=" + url.QueryEscape(fmt.Sprintf("/communities/%d/api", s.community.ID)))
	if to := b.login("uma", "password-uma"); to != "" {
		t.Fatalf("login went to %s", to)
	}
	for _, want := range []string{"Callback servers", "My bot", rcv.srv.URL + "/vk", "message_new", "confirmation", `<td data-label="Attempts">2</td>`, "Long Poll"} {
		if !strings.Contains(b.page, want) {
			t.Errorf("the API usage page lacks %q", want)
		}
	}

	// Loopback targets without --callback-allow: refused.
	strict := newEnv(t, fastAPI)
	s2 := newBotSetup(t, strict)
	code, msg2 := apiError(strict.call("groups.addCallbackServer", s2.botToken, map[string]string{"group_id": fmt.Sprint(s2.community.ID),
		"url": rcv.srv.URL, "title": "Local"}))
	if code != 100 || !strings.Contains(msg2, "refused") {
		t.Fatalf("a loopback target without the allowance: %d %q", code, msg2)
	}
}

// attempted reports whether the community's newest event delivery has
// been tried n times and waits for another.
func attempted(t *testing.T, e *env, community int64, n int) bool {
	ds, err := e.Store.Deliveries(t.Context(), community, 1)
	if err != nil {
		t.Fatal(err)
	}
	return len(ds) == 1 && ds[0].Type != "confirmation" && ds[0].Attempts == n && ds[0].Status == "pending"
}
