package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// /metrics counts logins by result, rate-limit refusals by kind, API
// errors by code, the token cache's hits and misses, and storage calls by
// operation; routes are labelled without their method.
func TestMetricsCountWhatHappened(t *testing.T) {
	e := newEnv(t)
	u := e.user("mila", "")
	app := e.app(u.ID, storage.Standalone)
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("mila", "wrong-password")
	b.login("mila", "password-mila")
	tok, _, err := e.P.Tokens.IssueToken(t.Context(), storage.Token{Kind: token.User, AppID: app.ID, UserID: u.ID, Scope: scope.Friends, Flow: storage.FlowImplicit}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // 3 per second, bursts of 3: some are refused
		e.call("account.getAppPermissions", tok, nil)
	}
	e.call("users.get", "lku1nonsense", nil)
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(body)
	for _, want := range []string{
		`latchkey_logins_total{result="ok"} 1`, `latchkey_logins_total{result="wrong_password"} 1`,
		`latchkey_rate_limited_total{kind="api_user"} `, `latchkey_api_errors_total{code="6"} `, `latchkey_api_errors_total{code="5"} 1`,
		`latchkey_token_cache_total{result="hit"} `, `latchkey_token_cache_total{result="miss"} `,
		`latchkey_storage_duration_seconds_count{op="select tokens"} `, `latchkey_http_requests_total{code="200",route="/method/{name}"} 11`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, `route="POST `) || strings.Contains(m, `route="GET `) {
		t.Error("a route label carries its method")
	}
	if t.Failed() {
		t.Log(grepLines(m, "latchkey_"))
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.HasPrefix(l, prefix) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return fmt.Sprint(len(out), " lines:\n", strings.Join(out, "\n"))
}
