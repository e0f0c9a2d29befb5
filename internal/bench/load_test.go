package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunMeasuresEveryScenario(t *testing.T) {
	var log bytes.Buffer
	// A second per scenario: under the race detector one VK ID sign-in
	// (an RS256 id_token) takes a good part of that.
	results, err := Run(context.Background(), Options{Duration: time.Second, Concurrency: 2, Tokens: 4}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 18 {
		t.Fatalf("%d results, want bare, api, DPoP api (without and with nonces), client credentials (built-in, an API's opaque and JWT), introspection by an API, code flows, refreshes, VK ID code flows and refreshes, bots, and the gateway's five", len(results))
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Fatalf("%s: %+v", r.Name, r)
		}
		// The upstream called directly involves no server of ours.
		if r.ServerCPU <= 0 && !strings.HasPrefix(r.Name, "sqlite  upstream") {
			t.Fatalf("%s: no server CPU measured: %+v", r.Name, r)
		}
	}
	var out bytes.Buffer
	Print(&out, results)
	for _, want := range []string{"sqlite  api: account.getAppPermissions", "sqlite  client credentials tokens", "sqlite  authorization code flows", "sqlite  refresh grants", "sqlite  api: DPoP-bound", "proofs with the node's nonce", "client credentials tokens for an API (jwt)", "introspection by an API",
		"bare httputil.ReverseProxy", "gateway: token checked, proxied", "forward authentication: /oauth/check", "server CPU/op", "×bare", "ops/s"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// The live scenarios run, with their clients in this process (the test of
// cmd/latchkey-bench runs them in a process of their own).
func TestLiveScenarios(t *testing.T) {
	var log bytes.Buffer
	o := Options{Duration: 300 * time.Millisecond, Concurrency: 2, Tokens: 4, Only: []string{"live"}, LiveTokens: 2000}
	results, err := Run(context.Background(), o, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results, want warm and uniform, at full speed and paced:\n%s", len(results), log.String())
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 || !strings.Contains(r.Note, "server and clients)") {
			t.Fatalf("%s: %+v", r.Name, r)
		}
	}
}

// A run against a database another run has added to (-db) sets itself
// up beside what is there.
func TestTwiceOnOneDatabase(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "load.db")
	for run := range 2 {
		var log bytes.Buffer
		results, err := Run(context.Background(), Options{DB: db, Duration: 200 * time.Millisecond, Concurrency: 2, Tokens: 2, Only: []string{"client-credentials"}}, &log)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run+1, err, log.String())
		}
		if len(results) != 1 || results[0].Requests == 0 || results[0].Errors != 0 {
			t.Fatalf("run %d: %+v", run+1, results)
		}
	}
}

func TestRunLiveJobRefusesAnEmptyJob(t *testing.T) {
	if _, err := RunLiveJob(context.Background(), LiveJob{Secret: "load-tool-secret-0123456789abcdef0123456789"}); err == nil {
		t.Fatal("a job with no tokens, clients or duration ran")
	}
}

// Clients that cannot run give one failed result, not paced runs at a rate
// measured from nothing.
func TestLiveScenariosStopWhenTheClientsFail(t *testing.T) {
	failing := func(context.Context, LiveJob) (Result, error) { return Result{}, errors.New("no clients here") }
	o := Options{Duration: 300 * time.Millisecond, Concurrency: 2, Tokens: 4, Only: []string{"live"}, LiveTokens: 100, LiveClients: failing}
	results, err := Run(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Errors != 1 || !strings.Contains(results[0].Note, "no clients here") || results[0].PerSecond() != 0 {
		t.Fatalf("got %+v", results)
	}
}

// Startup starts a real latchkey binary and reads its figures from /proc.
func TestStartup(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "latchkey")
	if out, err := exec.Command("go", "build", "-o", bin, "latchkey/cmd/latchkey").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	report, err := Startup(context.Background(), bin, 2, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, "first /healthz 200 after") || !strings.Contains(report, "MiB") {
		t.Fatalf("report: %s", report)
	}
	if _, err := Startup(context.Background(), filepath.Join(t.TempDir(), "none"), 1, 0); err == nil {
		t.Fatal("a missing binary measured")
	}
}
