package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// botCommunity is a community with Bots Long Poll on, and what polling it
// and writing to it take.
type botCommunity struct {
	id     int64
	server string // the long poll URL with act and key
	ts     int64
}

// botCommunities makes n communities of the target's user, each with
// message_new delivered to Long Poll, and a user token that may write to
// them.
func (t *target) botCommunities(ctx context.Context, n int) ([]*botCommunity, string, error) {
	writer, _, err := t.p.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: t.app.ID, UserID: t.user.ID, Scope: scope.Messages, Flow: storage.FlowImplicit}, 0)
	if err != nil {
		return nil, "", err
	}
	out := make([]*botCommunity, n)
	on := true
	for i := range out {
		c, err := t.p.Communities.CreateCommunity(ctx, platform.CLI, t.user.ID, "Bench bots "+strconv.Itoa(i))
		if err != nil {
			return nil, "", err
		}
		if err := t.p.Bots.UpdateSettings(ctx, c.ID, &on, "", map[string]bool{platform.EventMessageNew: true}); err != nil {
			return nil, "", err
		}
		key, ts, err := t.p.Bots.LongPollServer(ctx, c.ID)
		if err != nil {
			return nil, "", err
		}
		out[i] = &botCommunity{id: c.ID, ts: ts,
			server: t.base + "/longpoll/" + strconv.FormatInt(c.ID, 10) + "?act=a_check&key=" + url.QueryEscape(key)}
	}
	return out, writer, nil
}

// pollOnce waits for the community's next events (wait 25 s).
func (b *botCommunity) poll(ctx context.Context, c *http.Client) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", b.server+"&wait=25&ts="+strconv.FormatInt(b.ts, 10), nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		TS      string            `json:"ts"`
		Updates []json.RawMessage `json:"updates"`
		Failed  int               `json:"failed"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Failed != 0 {
		return 0, fmt.Errorf("%w: long poll answered %d (failed %d)", errBadAnswer, resp.StatusCode, out.Failed)
	}
	b.ts, _ = strconv.ParseInt(out.TS, 10, 64)
	return len(out.Updates), nil
}

// botEvents: how long a message takes to reach a bot's waiting poll. Each
// worker keeps a poll waiting on a community of its own; an operation is a
// user's messages.send to it and the wait until the poll answers with the
// message_new (the next poll then starts, untimed).
func (t *target) botEvents(ctx context.Context, o Options) Result {
	const name = "bots: messages.send to a waiting long poll"
	communities, writer, err := t.botCommunities(ctx, o.Concurrency)
	if err != nil {
		return Result{Name: name, Errors: 1}
	}
	type answer struct {
		n   int
		err error
	}
	pending := make([]chan answer, o.Concurrency)
	start := func(ctx context.Context, w int, c *http.Client) {
		ch := make(chan answer, 1)
		pending[w] = ch
		go func() { n, err := communities[w].poll(ctx, c); ch <- answer{n, err} }()
	}
	var random sync.Map
	return drive(ctx, name, o.Concurrency, o.Duration, newClient(), func(ctx context.Context, w int, c *http.Client) error {
		if pending[w] == nil {
			start(ctx, w, c)
			time.Sleep(20 * time.Millisecond) // the first poll of the worker reaches the server
		}
		n, _ := random.LoadOrStore(w, new(int64))
		*n.(*int64)++
		body := url.Values{"peer_id": {strconv.FormatInt(-communities[w].id, 10)}, "message": {"ping"}, "v": {"5.199"},
			"random_id": {strconv.FormatInt(int64(w)<<32|*n.(*int64), 10)}, "access_token": {writer}}.Encode()
		if err := post(ctx, c, t.base+"/method/messages.send", body, []byte(`{"response":`)); err != nil {
			return err
		}
		a := <-pending[w]
		start(ctx, w, c)
		if a.err != nil {
			return a.err
		}
		if a.n == 0 {
			return fmt.Errorf("%w: the poll answered no event", errBadAnswer)
		}
		return nil
	})
}

// IdlePolls opens n long polls that wait (90 s) on one community and, once
// they all wait, measures for window the process's CPU time and its
// resident memory growth: what n waiting bots cost the server.
func IdlePolls(ctx context.Context, o Options, n int, window time.Duration) (string, error) {
	t, err := newTarget(ctx, o)
	if err != nil {
		return "", err
	}
	defer t.close()
	cs, _, err := t.botCommunities(ctx, 1)
	if err != nil {
		return "", err
	}
	rss0 := rssBytes()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(pctx, "GET", cs[0].server+"&wait=90&ts="+strconv.FormatInt(cs[0].ts, 10), nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	time.Sleep(3 * time.Second) // every poll connects and waits
	cpu0, rss1 := cpuTime(), rssBytes()
	time.Sleep(window)
	cpu := cpuTime() - cpu0
	rss2 := rssBytes()
	cancel()
	wg.Wait()
	return fmt.Sprintf("%d idle long polls (server and clients in one process): CPU %v over %v (%.2f%% of one core); RSS %.1f MB before, +%.1f MB once they wait, +%.1f MB at the end",
		n, cpu.Round(time.Millisecond), window, 100*cpu.Seconds()/window.Seconds(), float64(rss0)/1e6, float64(rss1-rss0)/1e6, float64(rss2-rss0)/1e6), nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is the process's resident set size (Linux).
func rssBytes() int64 { return procStatus("VmRSS") }

// procStatus is a size in bytes from the process's status (Linux):
// VmRSS, its resident set now, or VmHWM, its peak.
func procStatus(field string) int64 { return procStatusOf("self", field) }

// procStatusOf is a field of /proc/PROC/status, in bytes (0 when absent).
func procStatusOf(proc, field string) int64 {
	b, err := os.ReadFile("/proc/" + proc + "/status")
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
