package bench

import (
	"bytes"
	"context"
	"encoding/json"
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
	if len(results) != 9 {
		t.Fatalf("%d results, want bare, api, DPoP api, client credentials, code flows, refreshes, VK ID code flows and refreshes, bots", len(results))
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Fatalf("%s: %+v", r.Name, r)
		}
	}
	var out bytes.Buffer
	Print(&out, results)
	for _, want := range []string{"sqlite  api: account.getAppPermissions", "sqlite  client credentials tokens", "sqlite  authorization code flows", "sqlite  refresh grants", "sqlite  api: DPoP-bound", "ops/s"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// The live scenarios run with their clients in this process, and apart
// from it: a job that went through JSON, as to a process of its own, still
// carries everything the clients need to make valid tokens.
func TestLiveScenarios(t *testing.T) {
	apart := func(ctx context.Context, j LiveJob) (Result, error) {
		b, err := json.Marshal(j)
		if err != nil {
			return Result{}, err
		}
		var got LiveJob
		if err := json.Unmarshal(b, &got); err != nil {
			return Result{}, err
		}
		return RunLiveJob(ctx, got)
	}
	for _, c := range []struct {
		name    string
		clients func(context.Context, LiveJob) (Result, error)
		where   string
	}{{"inside", nil, "server and clients)"}, {"apart", apart, "server)"}} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			o := Options{Duration: 300 * time.Millisecond, Concurrency: 2, Tokens: 4, Only: []string{"live"}, LiveTokens: 2000, LiveClients: c.clients}
			results, err := Run(context.Background(), o, &log)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != 4 {
				t.Fatalf("%d results, want warm and uniform, at full speed and paced:\n%s", len(results), log.String())
			}
			for _, r := range results {
				if r.Requests == 0 || r.Errors != 0 || !strings.Contains(r.Note, c.where) {
					t.Fatalf("%s: %+v", r.Name, r)
				}
			}
		})
	}
}

func TestRunLiveJobRefusesAnEmptyJob(t *testing.T) {
	if _, err := RunLiveJob(context.Background(), LiveJob{Secret: "load-tool-secret-0123456789abcdef0123456789"}); err == nil {
		t.Fatal("a job with no tokens, clients or duration ran")
	}
}
