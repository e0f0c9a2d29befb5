// Command latchkey-bench is Latchkey's load tool: it starts a real server on
// a loopback port (a temporary SQLite database, and then the PostgreSQL
// database given), seeds an app, a user and tokens, and drives it with
// concurrent keep-alive clients, each scenario for -duration: the API path
// (/method/account.getAppPermissions) next to a bare net/http handler
// returning the same JSON, client credentials tokens, and complete
// authorization code flows. Rate limits are raised for the run so that it
// measures throughput, not refusals. It is a separate binary: the server
// does not carry it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"

	"latchkey/internal/bench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "latchkey-bench:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	o := bench.Options{Duration: 5 * time.Second, Concurrency: 32, Tokens: 256}
	fs := flag.NewFlagSet("latchkey-bench", flag.ContinueOnError)
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long each scenario runs")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "concurrent clients")
	fs.IntVar(&o.Tokens, "tokens", o.Tokens, "distinct user tokens the API scenario rotates through")
	fs.IntVar(&o.LiveTokens, "live-tokens", 0, "also provision this many live user tokens (10,000 users, 100 apps) and measure API calls spread uniformly over them, beside a set that fits the cache (try 1000000)")
	fs.StringVar(&o.DB, "db", "", "run against this storage (sqlite:PATH or postgres://…; added to) instead of a temporary SQLite file")
	fs.StringVar(&o.Postgres, "postgres", "", "also run every scenario on this PostgreSQL database (postgres://…; it is added to)")
	only := fs.String("scenarios", "", "run only these scenarios, comma-separated: "+strings.Join(bench.Scenarios, ", "))
	fs.StringVar(&o.HeapProfile, "memprofile", "", "with -live-tokens: write a heap profile to this file after the uniform run (server and clients, or the server alone with -live-clients-apart)")
	apart := fs.Bool("live-clients-apart", false, "run the clients of the bare, api and client-credentials scenarios, and with -live-tokens of the live ones, in a process of their own, so that the CPU, memory, garbage collection and profiles measured are the server's alone (by default they run in the server's process, as every other scenario's do)")
	job := fs.Bool("live-job", false, "run one live scenario's clients, as read in JSON on standard input, and write the result in JSON (how the tool runs them apart from the server)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (server and clients, but not the live scenarios' clients with -live-clients-apart) to this file")
	traceFile := fs.String("trace", "", "write an execution trace of the whole run to this file (which clients: as for -cpuprofile), for go tool trace: where goroutines wait")
	startup := fs.String("startup", "", "instead of the scenarios: start this latchkey binary -startup-runs times on a migrated SQLite database and report the median time to its first /healthz 200, its CPU by then, and its memory after 2s idle")
	startupRuns := fs.Int("startup-runs", 7, "with -startup: how many starts")
	idle := fs.Int("idle-polls", 0, "instead of the scenarios: open this many waiting Bots Long Poll requests and report the CPU and memory they cost")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *only != "" {
		for _, k := range strings.Split(*only, ",") {
			if !slices.Contains(bench.Scenarios, k) {
				return fmt.Errorf("-scenarios: unknown scenario %q (want some of %s)", k, strings.Join(bench.Scenarios, ", "))
			}
			o.Only = append(o.Only, k)
		}
	}
	if o.Duration <= 0 || o.Duration > 10*time.Minute {
		return fmt.Errorf("-duration %v: want between 1ms and 10m", o.Duration)
	}
	if o.LiveTokens < 0 || o.LiveTokens > 10_000_000 {
		return fmt.Errorf("-live-tokens %d: want 0 to 10000000", o.LiveTokens)
	}
	if o.Concurrency < 1 || o.Concurrency > 1024 {
		return fmt.Errorf("-concurrency %d: want 1 to 1024", o.Concurrency)
	}
	for _, r := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{*cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile}, {*traceFile, trace.Start, trace.Stop}} {
		if r.path == "" {
			continue
		}
		f, err := os.Create(r.path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := r.start(f); err != nil {
			return err
		}
		defer r.stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *job {
		return runJob(ctx, os.Stdin, os.Stdout)
	}
	if *apart {
		o.LiveClients = spawnJob
	}
	if *startup != "" {
		report, err := bench.Startup(ctx, *startup, *startupRuns, 2*time.Second)
		if err != nil {
			return err
		}
		fmt.Println(report)
		return nil
	}
	if *idle > 0 {
		report, err := bench.IdlePolls(ctx, o, *idle, 10*time.Second)
		if err != nil {
			return err
		}
		fmt.Println(report)
		return nil
	}
	results, err := bench.Run(ctx, o, os.Stderr)
	if err != nil {
		return err
	}
	bench.Print(os.Stdout, results)
	return nil
}

// runJob runs the clients of one live scenario, read from in, and writes
// their result to out.
func runJob(ctx context.Context, in io.Reader, out io.Writer) error {
	var j bench.LiveJob
	if err := json.NewDecoder(in).Decode(&j); err != nil {
		return fmt.Errorf("-live-job: %w", err)
	}
	r, err := bench.RunLiveJob(ctx, j)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(r)
}

// spawnJob runs the clients of one live scenario in a process of their own
// (this program, with -live-job), so that the server's process holds only
// the server.
func spawnJob(ctx context.Context, j bench.LiveJob) (bench.Result, error) {
	self, err := os.Executable()
	if err != nil {
		return bench.Result{}, err
	}
	in, err := json.Marshal(j)
	if err != nil {
		return bench.Result{}, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, self, "-live-job")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return bench.Result{}, fmt.Errorf("the live clients' process: %w", err)
	}
	var r bench.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return bench.Result{}, fmt.Errorf("the live clients' process: %w", err)
	}
	return r, nil
}
