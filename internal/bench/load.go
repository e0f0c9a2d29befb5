// Package bench is Latchkey's load tool: it runs a real server on a loopback
// port, drives it with concurrent HTTP clients for a bounded time, and prints
// requests per second with p50 and p99 latency per scenario. It sends
// traffic only to the loopback listeners it opened itself.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Result is one scenario's measurement.
type Result struct {
	Name     string
	Requests int
	Errors   int
	Elapsed  time.Duration
	P50, P99 time.Duration
	// ServerCPU is the CPU the server used over the run (see cpu.go), or
	// 0 when it was not measured.
	ServerCPU time.Duration
	Note      string // what else was measured (memory, cache hits)
}

// CPUPerOp is the server's CPU per completed operation, or 0.
func (r Result) CPUPerOp() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(r.Requests)
}

// PerSecond is the completed operations per second.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// op performs one operation with the worker's client; an error counts as a
// failed request.
type op func(ctx context.Context, worker int, c *http.Client) error

// drive runs op from concurrency workers until d has passed, each worker with
// a keep-alive client of its own (made, and logged in where the scenario
// needs it, before the clock starts), and measures every call.
func drive(ctx context.Context, name string, concurrency int, d time.Duration, newClient func() *http.Client, do op) Result {
	return drivePaced(ctx, name, concurrency, d, 0, newClient, do)
}

// drivePaced is drive at a fixed rate when rate > 0: the workers share a
// schedule of rate operations per second, and each operation's latency is
// counted from when it was due, so that a stall delaying the operations
// behind it counts against each of them; a worker behind schedule goes on
// at once.
func drivePaced(ctx context.Context, name string, concurrency int, d time.Duration, rate float64, newClient func() *http.Client, do op) Result {
	var every time.Duration // per worker
	if rate > 0 {
		every = time.Duration(float64(time.Second) * float64(concurrency) / rate)
	}
	clients := make([]*http.Client, concurrency)
	var ready sync.WaitGroup
	for w := range concurrency {
		ready.Go(func() { clients[w] = newClient() })
	}
	ready.Wait()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, concurrency)
	var errs atomic.Int64
	var wg sync.WaitGroup
	cpu := meterCPU()
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			asClient()
			c := clients[w]
			samples := make([]time.Duration, 0, 1<<14)
			for k := 0; ctx.Err() == nil; k++ {
				t0 := time.Now()
				if every > 0 {
					due := start.Add(time.Duration(k)*every + time.Duration(w)*every/time.Duration(concurrency))
					if wait := due.Sub(t0); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
							continue
						}
					}
					t0 = due
				}
				if err := do(ctx, w, c); err != nil {
					if ctx.Err() != nil {
						break
					}
					errs.Add(1)
					continue
				}
				samples = append(samples, time.Since(t0))
			}
			lat[w] = samples
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	serverCPU := cpu.serverCPU()
	var all []time.Duration
	for _, s := range lat {
		all = append(all, s...)
	}
	slices.Sort(all)
	r := Result{Name: name, Requests: len(all), Errors: int(errs.Load()), Elapsed: elapsed, ServerCPU: serverCPU}
	if len(all) > 0 {
		r.P50 = all[len(all)/2]
		r.P99 = all[len(all)*99/100]
	}
	return r
}

// Print writes results as a table: beside each rate, the server's CPU per
// operation and its ratio to the bare handler's per request, when the run
// measured one (the figure that holds on shared cores, where rates move
// with whatever else runs).
func Print(w io.Writer, results []Result) {
	var bare time.Duration
	for _, r := range results {
		if r.Name == bareName {
			bare = r.CPUPerOp()
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\t ops\t ops/s\t p50\t p99\t server CPU/op\t ×bare\t errors\t")
	for _, r := range results {
		cpu, ratio := "-", "-"
		if c := r.CPUPerOp(); c > 0 {
			cpu = fmt.Sprintf("%.1fµs", float64(c)/float64(time.Microsecond))
			if bare > 0 {
				ratio = fmt.Sprintf("%.2f", float64(c)/float64(bare))
			}
		}
		fmt.Fprintf(tw, "%s\t %d\t %.0f\t %s\t %s\t %s\t %s\t %d\t", r.Name, r.Requests, r.PerSecond(), round(r.P50), round(r.P99), cpu, ratio, r.Errors)
		if r.Note != "" {
			fmt.Fprintf(tw, " %s", r.Note)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d > 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}
