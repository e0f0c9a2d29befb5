package bench

import (
	"bytes"
	"context"
	"runtime/pprof"
	"time"

	"github.com/google/pprof/profile"
)

// The server's CPU per operation, apart from its clients' in the same
// process: every goroutine of the server (the node, its listeners, the
// bare handler and proxy) carries the label side=server, inherited by
// every goroutine it starts (net/http's connections, the committer), and
// the clients' side=client (the gateway's upstream: side=upstream). A scenario runs under the
// CPU profiler, and its samples are summed by label. Samples with no label
// (the garbage collector's background workers, the runtime) are shared out
// in proportion to the labelled ones: each side pays for the garbage it
// makes, roughly.
const sideLabel = "side"

// as runs f with side's label, so that the goroutines it starts count as
// side's: "server", or another that is not the server (the gateway's
// upstream).
func as(side string, f func()) {
	pprof.Do(context.Background(), pprof.Labels(sideLabel, side), func(context.Context) { f() })
}

// asClient labels the calling goroutine as a client's.
func asClient() {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(sideLabel, "client")))
}

// cpuMeter profiles the process while a scenario runs.
type cpuMeter struct {
	buf bytes.Buffer
	on  bool
}

// meterCPU starts the profiler; when it cannot (the whole run is being
// profiled with -cpuprofile), the scenario reports no CPU figure.
func meterCPU() *cpuMeter {
	m := &cpuMeter{}
	m.on = pprof.StartCPUProfile(&m.buf) == nil
	return m
}

// serverCPU stops the profiler and returns the server's share of the CPU
// the process used meanwhile (0 when it did not run or saw nothing).
func (m *cpuMeter) serverCPU() time.Duration {
	if !m.on {
		return 0
	}
	pprof.StopCPUProfile()
	p, err := profile.Parse(&m.buf)
	if err != nil {
		return 0
	}
	v := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			v = i
		}
	}
	if v < 0 {
		return 0
	}
	var server, others, unlabelled int64
	for _, s := range p.Sample {
		switch side := s.Label[sideLabel]; {
		case len(side) == 0:
			unlabelled += s.Value[v]
		case side[0] == "server":
			server += s.Value[v]
		default:
			others += s.Value[v]
		}
	}
	if server == 0 {
		return 0
	}
	share := float64(server) / float64(server+others)
	return time.Duration(float64(server) + share*float64(unlabelled))
}
