package bench

import (
	"bytes"
	"context"
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
