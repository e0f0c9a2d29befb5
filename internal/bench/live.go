package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The live-token scenarios: storage holds LiveTokens live user tokens
// across liveUsers users and liveApps apps, and API calls are spread
// uniformly over all of them, so that with the default cache (100,000
// tokens) most checks miss it and read storage. They are measured beside
// the same calls over a set that fits the cache, at full speed and then
// paced at half the warm peak, with the process's memory.
const (
	liveUsers = 10_000
	liveApps  = 100
	// liveBatch tokens are inserted per transaction.
	liveBatch = 10_000
	// warmSet is the size of the set that fits the cache.
	warmSet = 50_000
)

// liveTokens rebuilds the i-th provisioned token from the run's seed: the
// load tool keeps no million strings (which would be most of the memory it
// reports), only how to make them again.
type liveTokens struct {
	seed [16]byte
	// first is the first token's ID: the i-th's is first+i, in the order
	// provisioned, as the IDs of tokens minted one after another are.
	first uint64
	keys  *token.Keyring
}

func (l liveTokens) token(i int) (string, token.Hash) {
	var in [24]byte
	copy(in[:], l.seed[:])
	binary.BigEndian.PutUint64(in[16:], uint64(i))
	sum := sha256.Sum256(in[:])
	var r [token.RandomLen]byte
	copy(r[:], sum[:])
	return l.keys.MintFrom(token.User, l.first+uint64(i), r)
}

// provision stores n live user tokens through the storage layer in
// batches, and reports how long it took.
func (t *target) provision(ctx context.Context, n int, log io.Writer) (liveTokens, error) {
	l := liveTokens{keys: t.p.Keys, first: uint64(time.Now().UnixMilli()) << 16}
	copy(l.seed[:], rand32())
	start := time.Now()
	apps := make([]int64, liveApps)
	for i := range apps {
		a, err := t.p.Apps.CreateApp(ctx, platform.CLI, platform.NewApp{OwnerID: t.user.ID, Title: fmt.Sprint("Live ", i), Type: storage.Web,
			RedirectURIs: []string{redirectURI}})
		if err != nil {
			return l, err
		}
		apps[i] = a.ID
	}
	users := make([]int64, liveUsers)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	prefix := rand32()[:8]
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(users); i += 16 {
				u := storage.User{Login: fmt.Sprintf("live-%s-%d", prefix, i), PasswordHash: "!", CreatedAt: time.Now()}
				if err := t.store.CreateUser(ctx, &u); err != nil {
					errs <- err
					return
				}
				users[i] = u.ID
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return l, err
	default:
	}
	now := time.Now()
	batches := make(chan int)
	for range 2 {
		wg.Go(func() {
			batch := make([]storage.Token, 0, liveBatch)
			for from := range batches {
				batch = batch[:0]
				for i := from; i < min(from+liveBatch, n); i++ {
					_, h := l.token(i)
					batch = append(batch, storage.Token{Hash: h, Kind: token.User, AppID: apps[(i/liveUsers)%liveApps], UserID: users[i%liveUsers],
						Scope: 1 << 16, IssuedAt: now, Flow: storage.FlowImplicit})
				}
				if err := t.store.CreateTokens(ctx, batch); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for from := 0; from < n; from += liveBatch {
		batches <- from
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		return l, err
	default:
	}
	d := time.Since(start)
	fmt.Fprintf(log, "bench: %s: %d live tokens (%d users, %d apps) provisioned in %v (%.0f tokens/s)\n",
		t.storage, n, liveUsers, liveApps, d.Round(100*time.Millisecond), float64(n)/d.Seconds())
	return l, nil
}

// LiveJob is one run of API calls over provisioned tokens, or over fixed
// URLs: what a load process needs to make the tokens again and call the
// server.
type LiveJob struct {
	Name        string
	Base        string // the server's URL
	Secret      string // the server's token secret
	Seed        [16]byte
	First       uint64  // the first token's ID
	Set         int     // calls draw uniformly from the first Set tokens
	Rate        float64 // calls per second, or 0 for as fast as the clients go
	Concurrency int
	Duration    time.Duration
	// URLs, when set, are called in turn instead of the provisioned
	// tokens (the bare, api and client credentials scenarios with their
	// clients apart), each answer starting with Want: with GET, or with
	// POST when Form is set, Form as the body.
	URLs []string
	Want string
	Form string
}

// RunLiveJob calls the API as j says, in this process.
func RunLiveJob(ctx context.Context, j LiveJob) (Result, error) {
	if len(j.URLs) > 0 && j.Concurrency > 0 && j.Duration > 0 {
		calls := make([]int, j.Concurrency) // per worker: no shared counter
		return drivePaced(ctx, j.Name, j.Concurrency, j.Duration, j.Rate, newClient(), func(ctx context.Context, w int, c *http.Client) error {
			calls[w]++
			u := j.URLs[(w*7919+calls[w])%len(j.URLs)]
			if j.Form != "" {
				return post(ctx, c, u, j.Form, []byte(j.Want))
			}
			return get(ctx, c, u, []byte(j.Want))
		}), nil
	}
	if j.Set <= 0 || j.Concurrency <= 0 || j.Duration <= 0 {
		return Result{}, fmt.Errorf("bench: a live job needs tokens, clients and a duration, got %d, %d and %v", j.Set, j.Concurrency, j.Duration)
	}
	keys, err := token.NewKeyring(j.Secret)
	if err != nil {
		return Result{}, err
	}
	l := liveTokens{seed: j.Seed, first: j.First, keys: keys}
	want := []byte(`{"response":65536}`)
	draws := make([]uint64, j.Concurrency)
	for w := range draws {
		draws[w] = uint64(w)*0x9e3779b97f4a7c15 + 1
	}
	call := func(ctx context.Context, w int, c *http.Client) error {
		// xorshift: a uniform draw per call, no shared state.
		x := draws[w]
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		draws[w] = x
		raw, _ := l.token(int(x % uint64(j.Set)))
		return get(ctx, c, j.Base+"/method/account.getAppPermissions?v=5.199&access_token="+raw, want)
	}
	return drivePaced(ctx, j.Name, j.Concurrency, j.Duration, j.Rate, newClient(), call), nil
}

// liveAPI runs the API over the first set tokens of l, drawn uniformly,
// at full speed, or paced at rate calls per second when rate > 0, and
// notes the server process's memory.
func (t *target) liveAPI(ctx context.Context, o Options, name string, l liveTokens, set int, rate float64) Result {
	r := runJob(ctx, o, LiveJob{Name: name, Base: t.base, Secret: t.secret, Seed: l.seed, First: l.first, Set: set, Rate: rate, Concurrency: o.Concurrency, Duration: o.Duration})
	if r.Errors > 0 && r.Requests == 0 {
		return r
	}
	where := "server and clients"
	if o.LiveClients != nil {
		where = "server"
	}
	r.Note = fmt.Sprintf("RSS %.0f MB (peak %.0f MB, %s)", float64(procStatus("VmRSS"))/1e6, float64(procStatus("VmHWM"))/1e6, where)
	return r
}

// runJob runs j's clients: in a process of their own with
// o.LiveClients, whose server CPU is then this process's, or here.
func runJob(ctx context.Context, o Options, j LiveJob) Result {
	run := o.LiveClients
	if run == nil {
		run = RunLiveJob
	}
	runtime.GC()
	var cpu *cpuMeter
	if o.LiveClients != nil {
		cpu = meterCPU() // in this process, the server alone
	}
	r, err := run(ctx, j)
	if cpu != nil {
		r.ServerCPU = cpu.serverCPU()
	}
	if err != nil {
		return Result{Name: j.Name, Errors: 1, Note: err.Error()}
	}
	return r
}

// live provisions o.LiveTokens tokens and measures the API over a warm set
// and over all of them, at full speed and at half the warm peak.
func (t *target) live(ctx context.Context, o Options, log io.Writer) []Result {
	l, err := t.provision(ctx, o.LiveTokens, log)
	if err != nil {
		fmt.Fprintf(log, "bench: provisioning failed: %v\n", err)
		return []Result{{Name: "live tokens: provisioning", Errors: 1}}
	}
	settle(log)
	warm := min(warmSet, o.LiveTokens)
	// Warm the cache with the warm set, as a node that has served it.
	for i := range warm {
		raw, _ := l.token(i)
		t.p.Tokens.CheckToken(ctx, raw)
	}
	hits0, misses0 := t.p.Cache.Counts()
	peakWarm := t.liveAPI(ctx, o, fmt.Sprintf("api: %d tokens (cache warm)", warm), l, warm, 0)
	hits1, misses1 := t.p.Cache.Counts()
	peakWarm.Note += ratio(hits1-hits0, misses1-misses0)
	if peakWarm.Requests == 0 {
		return []Result{peakWarm} // its clients did not run: no rate to pace the others at
	}
	peakLive := t.liveAPI(ctx, o, fmt.Sprintf("api: %d live tokens, uniform", o.LiveTokens), l, o.LiveTokens, 0)
	hits2, misses2 := t.p.Cache.Counts()
	peakLive.Note += ratio(hits2-hits1, misses2-misses1)
	if o.HeapProfile != "" {
		if f, err := os.Create(o.HeapProfile); err == nil {
			runtime.GC()
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	half := peakWarm.PerSecond() / 2
	pacedWarm := t.liveAPI(ctx, o, fmt.Sprintf("api: %d tokens (cache warm) at %.0f/s", warm, half), l, warm, half)
	pacedLive := t.liveAPI(ctx, o, fmt.Sprintf("api: %d live tokens, uniform, at %.0f/s", o.LiveTokens, half), l, o.LiveTokens, half)
	return []Result{peakWarm, peakLive, pacedWarm, pacedLive}
}

func ratio(hits, misses uint64) string {
	if hits+misses == 0 {
		return ""
	}
	return fmt.Sprintf(", cache hits %.0f%%", 100*float64(hits)/float64(hits+misses))
}

// settle waits, up to a minute, until the process is idle (under 2% of a
// core for half a second): what provisioning left to do (SQLite copying a
// million rows from its WAL into the database) is not the scenarios' to
// pay for.
func settle(log io.Writer) {
	const window, idle = 500 * time.Millisecond, 10 * time.Millisecond
	start := time.Now()
	for time.Since(start) < time.Minute {
		before := cpuTime()
		time.Sleep(window)
		if cpuTime()-before < idle {
			fmt.Fprintf(log, "bench: settled %v after provisioning\n", time.Since(start).Round(100*time.Millisecond))
			return
		}
	}
	fmt.Fprintf(log, "bench: still busy a minute after provisioning\n")
}
