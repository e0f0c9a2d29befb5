package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
	"latchkey/internal/token"
)

// waitLine reads lines until one starts with prefix, for at most limit.
func waitLine(t *testing.T, lines *bufio.Scanner, prefix string, limit time.Duration) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), prefix) {
				found <- lines.Text()
				return
			}
		}
		close(found)
	}()
	select {
	case l, ok := <-found:
		if !ok {
			t.Fatalf("the bot stopped before saying %q: %v", prefix, lines.Err())
		}
		return l
	case <-time.After(limit):
		t.Fatalf("the bot did not say %q within %v", prefix, limit)
	}
	return ""
}

// A community and a user with the tokens a bot and a person hold.
type botSetup struct {
	community    storage.Community
	botToken     string
	writer       storage.User
	writerToken  string
	communityArg string // "-id", the community as a peer
}

func newBotSetup(t *testing.T, e *env) botSetup {
	t.Helper()
	ctx := t.Context()
	admin := e.user("uma", "")
	writer := e.user("vlad", "")
	c, err := e.P.Communities.CreateCommunity(ctx, platform.CLI, admin.ID, "Echo bots")
	if err != nil {
		t.Fatal(err)
	}
	bot, err := e.P.Communities.CreateCommunityToken(ctx, platform.Actor{UserID: admin.ID}, c.ID, 0, scope.CommunityMessages|scope.CommunityManage)
	if err != nil {
		t.Fatal(err)
	}
	app := e.app(writer.ID, storage.Standalone)
	wt, _, err := e.P.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: app.ID, UserID: writer.ID, Scope: scope.Messages, Flow: storage.FlowImplicit}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return botSetup{community: c, botToken: bot, writer: writer, writerToken: wt, communityArg: fmt.Sprint(-c.ID)}
}

// vk-io 4, unchanged but for apiBaseUrl and an http agent, starts polling
// with a community token (groups.getById, groups.getLongPollServer, the
// long poll server), receives the message_new a user sent with
// messages.send, answers with context.send, and the user's inbox shows
// the answer.
func TestVKIOBotAnswersAMessage(t *testing.T) { onBothBackends(t, testVKIOBot, fastAPI) }

func testVKIOBot(t *testing.T, e *env) {
	s := newBotSetup(t, e)
	if r := e.call("groups.setLongPollSettings", s.botToken, map[string]string{"group_id": fmt.Sprint(s.community.ID),
		"enabled": "1", "api_version": "5.199", "message_new": "1"}); r["response"] != float64(1) {
		t.Fatalf("groups.setLongPollSettings: %v", r)
	}
	_, lines, _ := nodeClient(t, "bot.mjs", e.URL, s.botToken)
	waitLine(t, lines, "ready", 30*time.Second)

	if r := e.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "hello bot", "random_id": "7"}); r["response"] == nil {
		t.Fatalf("messages.send to the community: %v", r)
	}
	if got := waitLine(t, lines, "got ", 15*time.Second); got != "got hello bot" {
		t.Fatalf("the bot got %q", got)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		items, err := e.P.Messages.Inbox(t.Context(), s.writer.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > 0 && items[0].Text == "echo: hello bot" && items[0].From == "Echo bots" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer's inbox: %+v, want the bot's answer from Echo bots", items)
		}
	}
	// One conversation on both sides: the writer's inbox page shows what
	// they wrote and the answer; the community's page shows its admins both.
	writer := e.browser()
	writer.get(e.URL + "/login?next=/inbox")
	writer.login("vlad", "password-vlad")
	admin := e.browser()
	admin.get(e.URL + "/login?next=" + url.QueryEscape(fmt.Sprintf("/communities/%d/api", s.community.ID)))
	admin.login("uma", "password-uma")
	for who, page := range map[string]string{"the writer's inbox": writer.page, "the community's page": admin.page} {
		if !strings.Contains(page, ">hello bot<") || !strings.Contains(page, ">echo: hello bot<") {
			t.Errorf("%s lacks the conversation:\n%s", who, page)
		}
	}
}

// The Bots Long Poll server's answers (vk-wire.md §7): a key and ts from
// groups.getLongPollServer; an empty list when wait runs out; an event as
// soon as it is published to a waiting poll; failed 1 for a ts out of
// range, failed 2 for a wrong or expired key; only the event types the
// settings name.
func TestBotsLongPoll(t *testing.T) { onBothBackends(t, testBotsLongPoll, fastAPI) }

func testBotsLongPoll(t *testing.T, e *env) {
	s := newBotSetup(t, e)
	g := fmt.Sprint(s.community.ID)
	if code, msg := apiError(e.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": g})); code != 100 ||
		msg != "One of the parameters specified was missing or invalid: longpoll for this group is not enabled." {
		t.Fatalf("before it is enabled: %d %q", code, msg)
	}
	e.call("groups.setLongPollSettings", s.botToken, map[string]string{"group_id": g, "enabled": "1", "message_new": "1"})
	settings := e.call("groups.getLongPollSettings", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)
	if settings["is_enabled"] != true || settings["events"].(map[string]any)["message_new"] != float64(1) || settings["events"].(map[string]any)["message_reply"] != float64(0) {
		t.Fatalf("groups.getLongPollSettings: %v", settings)
	}
	if code, _ := apiError(e.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": "999999"})); code != 15 {
		t.Fatalf("another community's server: error %d, want 15", code)
	}
	srv := e.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)
	if srv["server"] != e.URL+"/longpoll/"+g || srv["ts"] != "1" || srv["key"] == "" {
		t.Fatalf("groups.getLongPollServer: %v", srv)
	}
	poll := func(key, ts, wait string) map[string]any {
		t.Helper()
		_, m := e.getJSON(srv["server"].(string) + "?act=a_check&key=" + key + "&ts=" + ts + "&wait=" + wait)
		return m
	}
	key := srv["key"].(string)
	if m := poll(key, "1", "0"); m["ts"] != "1" || len(m["updates"].([]any)) != 0 {
		t.Fatalf("nothing yet, wait 0: %v", m)
	}
	if m := poll(key, "99", "0"); m["failed"] != float64(1) || m["ts"] != "1" {
		t.Fatalf("a ts from the future: %v", m)
	}
	if m := poll("1."+strings.Repeat("A", 20), "1", "0"); m["failed"] != float64(2) {
		t.Fatalf("a forged key: %v", m)
	}

	// A waiting poll gets the event as soon as it is published.
	got := make(chan map[string]any, 1)
	go func() { got <- pollOnce(srv["server"].(string) + "?act=a_check&key=" + key + "&ts=1&wait=20") }()
	waitFor(t, 10*time.Second, "the poll waiting", func() bool { return e.P.Bots.PollsWaiting() == 1 })
	e.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "wake up", "random_id": "1"})
	var m map[string]any
	select {
	case m = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting poll did not answer the event")
	}
	if m == nil {
		t.Fatal("the waiting poll failed")
	}
	ups := m["updates"].([]any)
	if m["ts"] != "2" || len(ups) != 1 {
		t.Fatalf("the woken poll: %v", m)
	}
	u := ups[0].(map[string]any)
	msg := u["object"].(map[string]any)["message"].(map[string]any)
	if u["type"] != "message_new" || u["group_id"] != float64(s.community.ID) || u["v"] != "5.199" || u["event_id"] == "" ||
		msg["text"] != "wake up" || msg["from_id"] != float64(s.writer.ID) || msg["peer_id"] != float64(s.writer.ID) {
		t.Fatalf("the update: %v", u)
	}
	// The community's answer is message_reply, which these settings do not
	// deliver: the ts moves on, no update.
	e.call("messages.send", s.botToken, map[string]string{"peer_id": fmt.Sprint(s.writer.ID), "message": "hi", "random_id": "2"})
	if m := poll(key, "2", "0"); m["ts"] != "3" || len(m["updates"].([]any)) != 0 {
		t.Fatalf("an event type the settings leave out: %v", m)
	}
	// Keys expire.
	e.Clock.Advance(7 * time.Hour)
	if m := poll(key, "3", "0"); m["failed"] != float64(2) {
		t.Fatalf("a key 7 hours old: %v", m)
	}
	// Events are kept a day: a bot asking for older ones is told they are
	// lost (failed 3) and starts again with a new key and ts.
	e.Clock.Advance(20 * time.Hour)
	if _, _, err := e.P.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	fresh := e.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)
	if m := poll(fresh["key"].(string), "1", "0"); m["failed"] != float64(3) {
		t.Fatalf("a ts whose events were deleted: %v", m)
	}
	if fresh["ts"] != "3" {
		t.Fatalf("the ts after the deletion: %v, want the numbering kept (3)", fresh["ts"])
	}
	if m := poll(fresh["key"].(string), "3", "0"); m["failed"] != nil || m["ts"] != "3" {
		t.Fatalf("the new ts: %v", m)
	}
}

// pollOnce asks a long poll server once, from any goroutine (nil on
// failure, which the waiting test reports).
func pollOnce(u string) map[string]any {
	resp, err := http.Get(u)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return nil
	}
	return m
}

// Two nodes on one PostgreSQL: an event written through node 1 wakes a
// poll waiting on node 2 (NOTIFY), rather than its wait running out with
// nothing.
func TestBotsLongPollAcrossNodes(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	n1, n2 := newNode(t, dsn, c), newNode(t, dsn, c)
	for _, n := range []*env{n1, n2} {
		waitFor(t, 10*time.Second, "the node listening", n.P.Cache.Enabled)
	}
	s := newBotSetup(t, n1)
	g := fmt.Sprint(s.community.ID)
	n1.call("groups.setLongPollSettings", s.botToken, map[string]string{"group_id": g, "enabled": "1", "message_new": "1"})
	srv := n2.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)
	got := make(chan map[string]any, 1)
	go func() {
		got <- pollOnce(srv["server"].(string) + "?act=a_check&key=" + srv["key"].(string) + "&ts=1&wait=30")
	}()
	waitFor(t, 10*time.Second, "node 2's poll waiting", func() bool { return n2.P.Bots.PollsWaiting() == 1 })
	n1.call("messages.send", s.writerToken, map[string]string{"peer_id": s.communityArg, "message": "across", "random_id": "1"})
	m := <-got
	if m == nil || len(m["updates"].([]any)) != 1 {
		t.Fatalf("node 2's poll: %v, want the event written through node 1", m)
	}
}

// group_join, group_leave, message_allow and message_deny reach the bot;
// a user who denied the community's messages gets none (error 901) until
// they allow them again.
func TestBotsMembersAndPermissions(t *testing.T) {
	e := newEnv(t, fastAPI)
	s := newBotSetup(t, e)
	g := fmt.Sprint(s.community.ID)
	ctx := t.Context()
	app := e.app(s.writer.ID, storage.Standalone)
	member, _, err := e.P.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: app.ID, UserID: s.writer.ID, Scope: scope.Messages | scope.Groups, Flow: storage.FlowImplicit}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"group_id": g, "enabled": "1"}
	for _, ev := range platform.EventTypes {
		all[ev] = "1"
	}
	e.call("groups.setLongPollSettings", s.botToken, all)
	srv := e.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)
	ok := func(method string, params map[string]string) {
		t.Helper()
		if r := e.call(method, member, params); r["response"] != float64(1) {
			t.Fatalf("%s: %v", method, r)
		}
	}
	ok("groups.join", map[string]string{"group_id": g})
	ok("groups.join", map[string]string{"group_id": g}) // already a member: no second event
	ok("messages.denyMessagesFromGroup", map[string]string{"group_id": g})
	if code, _ := apiError(e.call("messages.send", s.botToken, map[string]string{"peer_id": fmt.Sprint(s.writer.ID), "message": "hi", "random_id": "1"})); code != 901 {
		t.Fatalf("a message to a user who denied them: error %d, want 901", code)
	}
	if r := e.call("messages.isMessagesFromGroupAllowed", s.botToken, map[string]string{"group_id": g, "user_id": fmt.Sprint(s.writer.ID)}); r["response"].(map[string]any)["is_allowed"] != float64(0) {
		t.Fatalf("isMessagesFromGroupAllowed after a deny: %v", r)
	}
	ok("messages.allowMessagesFromGroup", map[string]string{"group_id": g, "key": "from-the-widget"})
	if r := e.call("messages.send", s.botToken, map[string]string{"peer_id": fmt.Sprint(s.writer.ID), "message": "welcome back", "random_id": "2"}); r["response"] == nil {
		t.Fatalf("a message after the allow: %v", r)
	}
	ok("groups.leave", map[string]string{"group_id": g})
	if code, _ := apiError(e.call("groups.join", member, map[string]string{"group_id": "999999"})); code != 100 {
		t.Fatalf("joining no community: error %d", code)
	}

	m := pollOnce(srv["server"].(string) + "?act=a_check&key=" + srv["key"].(string) + "&ts=" + srv["ts"].(string) + "&wait=0")
	var got []string
	for _, u := range m["updates"].([]any) {
		u := u.(map[string]any)
		obj := u["object"].(map[string]any)
		switch u["type"] {
		case "message_reply":
			got = append(got, "message_reply "+fmt.Sprint(obj["text"]))
		case "message_allow":
			got = append(got, fmt.Sprintf("message_allow %v %v", obj["user_id"], obj["key"]))
		default:
			got = append(got, fmt.Sprintf("%v %v", u["type"], obj["user_id"]))
		}
	}
	uid := s.writer.ID
	want := []string{fmt.Sprintf("group_join %d", uid), fmt.Sprintf("message_deny %d", uid), fmt.Sprintf("message_allow %d from-the-widget", uid),
		"message_reply welcome back", fmt.Sprintf("group_leave %d", uid)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the bot's events:\n got %v\nwant %v", got, want)
	}
}

// A person writes to a community from its page: the bot gets it as
// message_new, as one sent with messages.send.
func TestWriteToACommunityFromItsPage(t *testing.T) {
	e := newEnv(t, fastAPI)
	s := newBotSetup(t, e)
	g := fmt.Sprint(s.community.ID)
	e.call("groups.setLongPollSettings", s.botToken, map[string]string{"group_id": g, "enabled": "1", "message_new": "1"})
	srv := e.call("groups.getLongPollServer", s.botToken, map[string]string{"group_id": g})["response"].(map[string]any)
	b := e.browser()
	b.get(e.URL + "/login?next=/communities/" + g + "/write")
	if to := b.login("vlad", "password-vlad"); to != "" || !strings.Contains(b.page, "Echo bots") {
		t.Fatalf("the write page: %q %d", to, b.status)
	}
	b.submit(b.formWith("message"), map[string]string{"message": "from the page"})
	if !strings.Contains(b.page, "Sent.") {
		t.Fatalf("after sending: %d %s", b.status, b.page)
	}
	m := pollOnce(srv["server"].(string) + "?act=a_check&key=" + srv["key"].(string) + "&ts=" + srv["ts"].(string) + "&wait=0")
	ups, _ := m["updates"].([]any)
	if len(ups) != 1 || ups[0].(map[string]any)["object"].(map[string]any)["message"].(map[string]any)["text"] != "from the page" {
		t.Fatalf("the bot's poll: %v", m)
	}
	// 30 messages in 10 minutes from the pages; then the person waits.
	for i := range 29 {
		b.get(e.URL + "/communities/" + g + "/write")
		b.submit(b.formWith("message"), map[string]string{"message": fmt.Sprint("more ", i)})
	}
	b.get(e.URL + "/communities/" + g + "/write")
	b.submit(b.formWith("message"), map[string]string{"message": "one too many"})
	if b.status != http.StatusTooManyRequests {
		t.Fatalf("the 31st message in 10 minutes: %d", b.status)
	}
}
