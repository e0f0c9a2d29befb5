package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"latchkey/internal/cli"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// The e2e servers' secret, for the CLI to share.
const e2eSecret = "e2e-test-secret-0123456789abcdefghijklmnop"

// runCLI runs the real command line against dsn with the servers' secret.
func runCLI(t testing.TB, dsn string, args ...string) {
	t.Helper()
	env := map[string]string{"LATCHKEY_DB": dsn, "LATCHKEY_SECRET": e2eSecret}
	var out, errs bytes.Buffer
	if err := cli.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errs); err != nil {
		t.Fatalf("latchkey %v: %v\n%s", args, err, errs.String())
	}
}

// A revocation made by the CLI, another process, reaches a running server's
// token cache (BenchmarkRevocationReach measures how soon): a replaced service token, the tokens of a
// retired secret, and a deleted app's tokens are all refused.
func TestCLIRevocationsReachARunningServer(t *testing.T) {
	e := newEnv(t)
	dsn := "sqlite:" + e.DB
	testCLIRevocations(t, dsn, []*env{e})
}

// On PostgreSQL, every node hears the CLI's revocations.
func TestCLIRevocationsReachEveryNode(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	testCLIRevocations(t, dsn, []*env{newNode(t, dsn, c), newNode(t, dsn, c)})
}

func testCLIRevocations(t *testing.T, dsn string, nodes []*env) {
	e := nodes[0]
	u := e.user("cleo", "")
	app := e.app(u.ID, storage.Web, "https://cleo.example/cb")
	id := fmt.Sprint(app.ID)
	works := func(n *env, tok string) bool {
		code, _ := apiError(n.call("secure.checkToken", tok, map[string]string{"token": "x"}))
		return code != 5
	}
	worksEverywhere := func(what, tok string) {
		t.Helper()
		for i, n := range nodes {
			if !works(n, tok) {
				t.Fatalf("%s: node %d refused the token before the CLI ran", what, i+1)
			}
		}
	}
	waitRefused := func(what, tok string) {
		t.Helper()
		for i, n := range nodes {
			took := waitFor(t, arrival, fmt.Sprintf("%s refused by node %d", what, i+1), func() bool { return !works(n, tok) })
			t.Logf("%s: refused by node %d after %v", what, i+1, took)
		}
	}

	// A new service token from the CLI: the old one stops working.
	worksEverywhere("service token", app.ServiceToken)
	runCLI(t, dsn, "app", "new-service-token", "--app", id)
	waitRefused("the replaced service token", app.ServiceToken)

	// Tokens minted with a secret that the CLI retires.
	runCLI(t, dsn, "app", "set", "--app", id, "--client-credentials", "on")
	status, m := e.postForm("/access_token", url.Values{"grant_type": {"client_credentials"}}, id, app.ClientSecret)
	if status != 200 {
		t.Fatalf("client credentials: %d %v", status, m)
	}
	cc := m["access_token"].(string)
	worksEverywhere("client credentials token", cc)
	runCLI(t, dsn, "app", "rotate-secret", "--app", id)
	runCLI(t, dsn, "app", "retire-secret", "--app", id)
	waitRefused("a token of the retired secret", cc)

	// Every token of an app the CLI deletes.
	v, err := e.P.Apps.App(context.Background(), platform.CLI, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	worksEverywhere("the current service token", v.ServiceToken)
	runCLI(t, dsn, "app", "delete", "--app", id)
	waitRefused("a deleted app's service token", v.ServiceToken)
}
