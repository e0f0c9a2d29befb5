package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// BenchmarkRevocationReach measures how long a revocation takes to reach a
// server that holds the token in its cache, by the two roads revocations
// travel: another node on PostgreSQL (NOTIFY), and the command line on the
// same SQLite file (the revocation log, polled). The promise is within a
// second; it reports the median and the slowest in milliseconds.
func BenchmarkRevocationReach(b *testing.B) {
	b.Run("postgres-node", func(b *testing.B) {
		dsn := testenv.PostgresDSN(b)
		c := &clock{t: time.Now().UTC().Truncate(time.Second)}
		revoker, server := newNode(b, dsn, c), newNode(b, dsn, c)
		app := revoker.app(revoker.user("reach", "").ID, storage.Web, "https://reach.example/cb")
		measureReach(b, server, app.ServiceToken, func() {
			if _, err := revoker.P.Apps.NewServiceToken(context.Background(), platform.CLI, app.ID); err != nil {
				b.Fatal(err)
			}
		}, func() string {
			v, err := revoker.P.Apps.App(context.Background(), platform.CLI, app.ID)
			if err != nil {
				b.Fatal(err)
			}
			return v.ServiceToken
		})
	})
	b.Run("sqlite-cli", func(b *testing.B) {
		server := newEnv(b)
		app := server.app(server.user("reach", "").ID, storage.Web, "https://reach.example/cb")
		dsn := "sqlite:" + server.DB
		measureReach(b, server, app.ServiceToken, func() {
			runCLI(b, dsn, "app", "new-service-token", "--app", fmt.Sprint(app.ID))
		}, func() string {
			v, err := server.P.Apps.App(context.Background(), platform.CLI, app.ID)
			if err != nil {
				b.Fatal(err)
			}
			return v.ServiceToken
		})
	})
}

// measureReach replaces the service token b.N times (revoke) and times how
// long server takes to refuse the old one, which it has cached.
func measureReach(b *testing.B, server *env, tok string, revoke func(), current func() string) {
	works := func() bool {
		code, _ := apiError(server.call("secure.checkToken", tok, map[string]string{"token": "x"}))
		return code != 5
	}
	var took []time.Duration
	for b.Loop() {
		if !works() { // cached now
			b.Fatal("the service token is refused before its revocation")
		}
		revoke()
		took = append(took, waitFor(b, arrival, "the revocation reaching the server", func() bool { return !works() }))
		tok = current()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
