package cli

import (
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"latchkey/internal/bench"
)

func (e *env) benchCmd() *cobra.Command {
	o := bench.Options{Duration: 5 * time.Second, Concurrency: 32, Tokens: 256}
	var useDB bool
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the server on loopback: requests/s and p50/p99 latency per scenario",
		Long: `bench starts a real server on a loopback port (temporary SQLite database,
or --db with --use-db), seeds an app, a user and tokens, and drives it with
concurrent keep-alive clients, each scenario for --duration: the API path
(/method/account.getAppPermissions) next to a bare net/http handler returning
the same JSON, client credentials tokens, and complete authorization code
flows (/authorize with a signed-in, consented user, then /access_token).
--postgres runs the scenarios on PostgreSQL too. Rate limits are raised for
the run so that it measures throughput, not refusals.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Duration <= 0 || o.Duration > 10*time.Minute {
				return usage("--duration %v: want between 1ms and 10m", o.Duration)
			}
			if o.Concurrency < 1 || o.Concurrency > 1024 {
				return usage("--concurrency %d: want 1 to 1024", o.Concurrency)
			}
			if useDB {
				o.DB = e.cfg.DB
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			results, err := bench.Run(cmd.Context(), o, e.stderr)
			if err != nil {
				return err
			}
			bench.Print(e.stdout, results)
			return nil
		},
	}
	cmd.Flags().DurationVar(&o.Duration, "duration", o.Duration, "how long each scenario runs")
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", o.Concurrency, "concurrent clients")
	cmd.Flags().IntVar(&o.Tokens, "tokens", o.Tokens, "distinct user tokens the API scenario rotates through")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server and clients) to this file")
	cmd.Flags().StringVar(&o.Postgres, "postgres", "", "also run every scenario on this PostgreSQL database (postgres://…; it is added to)")
	cmd.Flags().BoolVar(&useDB, "use-db", false, "run against --db instead of a temporary SQLite file (it is added to)")
	return cmd
}
