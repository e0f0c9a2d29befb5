package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"latchkey/internal/bench"
)

// asMain makes the test binary this program when the tool runs itself
// (spawnJob runs os.Executable, here the test binary).
const asMain = "LATCHKEY_BENCH_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		if err := run(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLiveClientsApart(t *testing.T) {
	runApart(t, bench.Options{Only: []string{"live"}, LiveTokens: 2000}, 4, func(r bench.Result) bool { return strings.Contains(r.Note, "server)") })
}

// The bare and api scenarios with their clients apart: the server's CPU
// per call of each, measured in this process, which their clients left.
func TestBareAndAPIClientsApart(t *testing.T) {
	runApart(t, bench.Options{Only: []string{"bare", "api", "client-credentials"}}, 3, func(r bench.Result) bool { return strings.HasPrefix(r.Note, "clients apart") })
}

// runApart runs o's scenarios briefly with their clients in a process of
// their own (this test binary, as the tool), and wants n results, each with
// calls, no errors, the server's CPU and a note that noted says is right.
func runApart(t *testing.T, o bench.Options, n int, noted func(bench.Result) bool) {
	t.Setenv(asMain, "1")
	var log bytes.Buffer
	o.Duration, o.Concurrency, o.Tokens, o.LiveClients = 300*time.Millisecond, 2, 4, spawnJob
	results, err := bench.Run(context.Background(), o, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != n {
		t.Fatalf("%d results, want %d:\n%s", len(results), n, log.String())
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 || !noted(r) || r.ServerCPU <= 0 {
			t.Fatalf("%s: %+v\n%s", r.Name, r, log.String())
		}
	}
}

func TestLiveJobRefusesBadInput(t *testing.T) {
	if err := runJob(context.Background(), strings.NewReader("{"), new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "-live-job") {
		t.Fatalf("got %v, want a -live-job error", err)
	}
}
