package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunMeasuresBothScenarios(t *testing.T) {
	var log bytes.Buffer
	results, err := Run(context.Background(), Options{Duration: 300 * time.Millisecond, Concurrency: 2, Tokens: 4}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want bare and api", len(results))
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Fatalf("%s: %+v", r.Name, r)
		}
	}
	var out bytes.Buffer
	Print(&out, results)
	if !strings.Contains(out.String(), "api: account.getAppPermissions") || !strings.Contains(out.String(), "ops/s") {
		t.Fatalf("table:\n%s", out.String())
	}
}
