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
	t.Setenv(asMain, "1")
	var log bytes.Buffer
	o := bench.Options{Duration: 300 * time.Millisecond, Concurrency: 2, Tokens: 4, Only: []string{"live"}, LiveTokens: 2000, LiveClients: spawnJob}
	results, err := bench.Run(context.Background(), o, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results:\n%s", len(results), log.String())
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 || !strings.Contains(r.Note, "server)") || r.ServerCPU <= 0 {
			t.Fatalf("%s: %+v\n%s", r.Name, r, log.String())
		}
	}
}

// The bare and api scenarios with their clients apart: the server's CPU
// per call of each, measured in this process, which their clients left.
func TestBareAndAPIClientsApart(t *testing.T) {
	t.Setenv(asMain, "1")
	var log bytes.Buffer
	o := bench.Options{Duration: 300 * time.Millisecond, Concurrency: 2, Tokens: 4, Only: []string{"bare", "api"}, LiveClients: spawnJob}
	results, err := bench.Run(context.Background(), o, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results:\n%s", len(results), log.String())
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 || !strings.HasPrefix(r.Note, "clients apart") || r.ServerCPU <= 0 {
			t.Fatalf("%s: %+v\n%s", r.Name, r, log.String())
		}
	}
}

func TestLiveJobRefusesBadInput(t *testing.T) {
	if err := runJob(context.Background(), strings.NewReader("{"), new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "-live-job") {
		t.Fatalf("got %v, want a -live-job error", err)
	}
}
