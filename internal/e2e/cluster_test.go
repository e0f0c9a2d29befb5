package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
	"latchkey/internal/token"
)

// arrival bounds how long a test waits for a change to reach another node
// or process. The promise is one second; how long it takes is measured by
// BenchmarkRevocationReach (make bench), not asserted here, where a loaded
// machine would make a timing flaky.
const arrival = 10 * time.Second

// waitFor polls cond every 10ms until it holds or limit passes, and returns
// how long it took.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// Three nodes on one PostgreSQL: a token issued through node 1 works on
// nodes 2 and 3 (and sits in their caches); revoked through node 1, nodes 2
// and 3 reject it (BenchmarkRevocationReach measures how soon).
func TestThreeNodesSeeRevocations(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	nodes := []*env{newNode(t, dsn, c), newNode(t, dsn, c), newNode(t, dsn, c)}
	for i, n := range nodes {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d listening for revocations", i+1), n.P.Cache.Enabled)
	}
	n1 := nodes[0]
	u := n1.user("nadia", "")
	redirect := "https://nodes.example/cb"
	app := n1.app(u.ID, storage.Web, redirect)

	// A user token through node 1's code flow.
	code := obtainCode(t, n1, fmt.Sprint(app.ID), redirect, "nadia", nil)
	status, m := n1.postForm("/access_token", url.Values{"code": {code}, "redirect_uri": {redirect}}, fmt.Sprint(app.ID), app.ClientSecret)
	if status != 200 {
		t.Fatalf("exchange on node 1: %d %v", status, m)
	}
	tok := m["access_token"].(string)
	h := token.HashOf(tok)
	for i, n := range nodes[1:] {
		if code, _ := apiError(n.call("users.get", tok, nil)); code != 0 {
			t.Fatalf("node %d refused the token: %d", i+2, code)
		}
		if _, _, cached := n.P.Cache.Get(h); !cached {
			t.Fatalf("node %d did not cache the token", i+2)
		}
		c.Advance(time.Second) // rate allowance
	}

	if status, _ := n1.postForm("/oauth/revoke", url.Values{"token": {tok}}, fmt.Sprint(app.ID), app.ClientSecret); status != 200 {
		t.Fatalf("revoke on node 1: %d", status)
	}
	for i, n := range nodes[1:] {
		took := waitFor(t, arrival, fmt.Sprintf("node %d rejecting the revoked token", i+2), func() bool {
			c.Advance(time.Second)
			code, _ := apiError(n.call("users.get", tok, nil))
			return code == 5
		})
		t.Logf("node %d rejected the revoked token after %v", i+2, took)
	}

	// The other paths travel the same way: a new service token made on
	// node 3 retires the old one on node 2.
	old := app.ServiceToken
	if code, _ := apiError(nodes[1].call("users.get", old, map[string]string{"user_ids": fmt.Sprint(u.ID)})); code != 0 {
		t.Fatalf("service token on node 2: %d", code)
	}
	if _, err := nodes[2].P.Apps.NewServiceToken(context.Background(), platform.CLI, app.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, arrival, "node 2 rejecting the replaced service token", func() bool {
		c.Advance(time.Second)
		code, _ := apiError(nodes[1].call("users.get", old, map[string]string{"user_ids": fmt.Sprint(u.ID)}))
		return code == 5
	})
}

// PostgreSQL restarts under a running node: while it is down /readyz fails,
// issuing answers 503 JSON and the token cache is off; when it is back the
// node recovers by itself.
func TestNodeRecoversWhenPostgresRestarts(t *testing.T) {
	cluster := testenv.StartCluster(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	n := newNode(t, cluster.DSN(), c)
	other := newNode(t, cluster.DSN(), c)
	waitFor(t, 10*time.Second, "listening", func() bool { return n.P.Cache.Enabled() && other.P.Cache.Enabled() })
	u := n.user("rita", "")
	app := n.app(u.ID, storage.Web, "https://rita.example/cb")
	if _, err := n.P.Apps.SetClientCredentials(context.Background(), platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	issue := func() (int, map[string]any) {
		return n.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}}, fmt.Sprint(app.ID), app.ClientSecret)
	}
	ready := func() int {
		resp, err := http.Get(n.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status, _ := issue(); status != 200 || ready() != 200 {
		t.Fatal("not working before the restart")
	}

	cluster.Stop()
	if got := ready(); got != 503 {
		t.Fatalf("/readyz with PostgreSQL down: %d", got)
	}
	status, m := issue()
	if status != 503 || m["error"] != "temporarily_unavailable" {
		t.Fatalf("issuing with PostgreSQL down: %d %v", status, m)
	}
	waitFor(t, 5*time.Second, "the token cache turned off", func() bool { return !n.P.Cache.Enabled() })

	cluster.Start()
	waitFor(t, 30*time.Second, "/readyz recovering", func() bool { return ready() == 200 })
	waitFor(t, 30*time.Second, "issuing recovering", func() bool { s, _ := issue(); return s == 200 })
	waitFor(t, 30*time.Second, "the revocation listener back", func() bool { return n.P.Cache.Enabled() && other.P.Cache.Enabled() })

	// Revocations travel again: revoked on the other node, refused here.
	_, m = issue()
	tok := m["access_token"].(string)
	if code, _ := apiError(n.call("users.get", tok, map[string]string{"user_ids": fmt.Sprint(u.ID)})); code != 0 {
		t.Fatalf("fresh service token refused: %d", code)
	}
	other.postForm("/oauth/revoke", url.Values{"token": {tok}}, fmt.Sprint(app.ID), app.ClientSecret)
	waitFor(t, arrival, "revocation after the restart", func() bool {
		c.Advance(time.Second)
		code, _ := apiError(n.call("users.get", tok, map[string]string{"user_ids": fmt.Sprint(u.ID)}))
		return code == 5
	})
}

// The cleanup deletes expired codes and tokens, and nothing else.
func TestCleanupRemovesExpiredCodesAndTokensOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user("olga", "")
	app := e.app(u.ID, storage.Web, "https://olga.example/cb")
	short := func(ttl time.Duration) token.Hash {
		_, rec, err := e.P.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: app.ID, UserID: u.ID, Scope: scope.Friends, Flow: storage.FlowImplicit}, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Hash
	}
	expiring := short(time.Hour)
	longLived := short(30 * 24 * time.Hour)
	forever := short(0)
	// A code is stored once it is used (until then it is its own record).
	code := obtainCode(t, e, fmt.Sprint(app.ID), "https://olga.example/cb", "olga", nil)
	if status, m := e.postForm("/access_token", url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {"https://olga.example/cb"}, "code": {code}},
		fmt.Sprint(app.ID), app.ClientSecret); status != 200 {
		t.Fatalf("the code's exchange: %d %v", status, m)
	}
	codeHash := token.HashOf(code)

	if codes, tokens, err := e.P.Cleanup(ctx); err != nil || codes != 0 || tokens != 0 {
		t.Fatalf("cleanup before anything expired: %d codes, %d tokens, %v", codes, tokens, err)
	}
	e.Clock.Advance(2 * time.Hour) // the code and the 1-hour token expire
	codes, tokens, err := e.P.Cleanup(ctx)
	if err != nil || codes != 1 || tokens != 0 {
		t.Fatalf("cleanup two hours on: %d codes, %d tokens, %v; want the code only (expired tokens are kept a day)", codes, tokens, err)
	}
	e.Clock.Advance(24 * time.Hour)
	codes, tokens, err = e.P.Cleanup(ctx)
	if err != nil || codes != 0 || tokens != 1 {
		t.Fatalf("cleanup a day later: %d codes, %d tokens, %v", codes, tokens, err)
	}
	if _, err := e.Store.GetToken(ctx, expiring); err != storage.ErrNotFound {
		t.Fatalf("the expired token is still stored: %v", err)
	}
	svc := token.HashOf(app.ServiceToken)
	for _, h := range []token.Hash{longLived, forever, svc} {
		if _, err := e.Store.GetToken(ctx, h); err != nil {
			t.Fatalf("a live token was deleted: %v", err)
		}
	}
	if _, err := e.Store.UseCode(ctx, codeHash, e.Clock.Now()); err != storage.ErrNotFound {
		t.Fatalf("the expired code is still stored: %v", err)
	}
	if _, err := e.Store.GetApp(ctx, app.ID); err != nil {
		t.Fatal("the app went with the cleanup")
	}
}

// Three nodes on one PostgreSQL behind a round-robin balancer share a
// user token's limit of 3 calls a second: together they let through at
// most 3.3 a second (each its share, a third), whatever the demand; when
// one stops, the two others share the whole limit.
func TestThreeNodesHoldOnePerTokenLimit(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	nodes := []*env{newNode(t, dsn, c), newNode(t, dsn, c), newNode(t, dsn, c)}
	beat := func(nodes []*env) {
		for _, n := range nodes {
			if err := n.P.Heartbeat(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	beat(nodes)
	beat(nodes)
	for i, n := range nodes {
		if got := n.P.Nodes(); got != 3 {
			t.Fatalf("node %d counts %d nodes, want 3", i+1, got)
		}
	}
	u := nodes[0].user("rita", "")
	app := nodes[0].app(u.ID, storage.Web, "https://limits.example/cb")
	tok, _, err := nodes[0].P.Tokens.IssueToken(context.Background(), storage.Token{Kind: token.User, AppID: app.ID, UserID: u.ID, Scope: scope.Friends, Flow: storage.FlowImplicit}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Twenty seconds of the nodes' clock in steps of 100 ms, each step
	// two calls to every node: 60 a second asked for.
	run := func(nodes []*env, seconds int) (passed int) {
		for range seconds * 10 {
			c.Advance(100 * time.Millisecond)
			beat(nodes)
			for range 2 {
				for _, n := range nodes {
					switch code, msg := apiError(n.call("users.get", tok, nil)); code {
					case 0:
						passed++
					case 6: // too many requests per second
					default:
						t.Fatalf("users.get: error %d %s", code, msg)
					}
				}
			}
		}
		return passed
	}
	const seconds = 20
	passed := run(nodes, seconds)
	rate := float64(passed) / seconds
	t.Logf("three nodes: %d calls passed in %d s: %.2f/s", passed, seconds, rate)
	if rate > 3.3 || rate < 2.7 {
		t.Fatalf("three nodes let %.2f calls a second through a limit of 3, want 2.7 to 3.3", rate)
	}

	nodes[2].Stop()
	beat(nodes[:2])
	if got := nodes[0].P.Nodes(); got != 2 {
		t.Fatalf("after a node stopped, %d counted, want 2", got)
	}
	passed = run(nodes[:2], seconds)
	rate = float64(passed) / seconds
	t.Logf("two nodes: %d calls passed in %d s: %.2f/s", passed, seconds, rate)
	if rate > 3.3 || rate < 2.7 {
		t.Fatalf("two nodes let %.2f calls a second through a limit of 3, want 2.7 to 3.3", rate)
	}
}

// The login throttle counts in storage: failures spread over three nodes
// add up to one count, and the sixth attempt is refused wherever it lands.
func TestLoginThrottleHoldsAcrossNodes(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	nodes := []*env{newNode(t, dsn, c), newNode(t, dsn, c), newNode(t, dsn, c)}
	nodes[0].user("lena", "")
	for i := range 5 {
		n := nodes[i%3]
		b := n.browser()
		b.get(n.URL + "/login")
		b.login("lena", "wrong-password")
		if b.status != 401 {
			t.Fatalf("failure %d on node %d: %d, want 401", i+1, i%3+1, b.status)
		}
	}
	for i, n := range nodes {
		b := n.browser()
		b.get(n.URL + "/login")
		b.login("lena", "password-lena")
		if b.status != 429 {
			t.Fatalf("after five failures across the nodes, node %d answered %d, want 429", i+1, b.status)
		}
	}
}

// An API registered, changed or deleted through one node takes effect on
// the others (within the half second they trust what they read).
func TestAPIChangesReachEveryNode(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	n1, n2 := newNode(t, dsn, c), newNode(t, dsn, c)
	dev := n1.user("dana", "")
	app := n1.app(dev.ID, storage.Web, "https://dana.example/cb")
	if _, err := n1.P.Apps.SetClientCredentials(t.Context(), platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	issue := func(n *env, scope string) (int, map[string]any) {
		return n.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}, "resource": {"https://ledger.example"}, "scope": {scope}},
			fmt.Sprint(app.ID), app.ClientSecret)
	}
	if status, m := issue(n2, "ledger:read"); status != 400 || m["error"] != "invalid_target" {
		t.Fatalf("before the API exists: %d %v", status, m)
	}
	api := n1.api(dev.ID, "https://ledger.example", storage.TokenOpaque)
	took := waitFor(t, arrival, "node 2 serving the new API", func() bool { s, _ := issue(n2, "orders:read"); return s == 200 })
	t.Logf("node 2 served the new API after %v", took)
	if _, err := n1.P.APIs.UpdateAPI(t.Context(), platform.CLI, api.ID, platform.APISettings{Name: "Ledger",
		Scopes: []platform.ScopeSpec{{Name: "ledger:read", EN: "Read the ledger", RU: "Читать книгу"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, arrival, "node 2 knowing the API's new scope", func() bool { s, _ := issue(n2, "ledger:read"); return s == 200 })
	_, m := issue(n2, "ledger:read")
	tok := m["access_token"].(string)
	if _, err := n1.P.APIs.DeleteAPI(t.Context(), platform.CLI, api.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, arrival, "node 2 refusing the deleted API", func() bool { s, _ := issue(n2, "ledger:read"); return s == 400 })
	if m := n2.introspect(app, tok); active(m) {
		t.Fatalf("node 2's introspection of a deleted API's token: %v", m)
	}
}
