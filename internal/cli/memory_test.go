package cli

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// 200 failed logins at once, each costing an argon2id check of 19 MiB, are
// each answered wrong password, throttled or busy: attempts are counted
// before the check, and checks run a bounded number at a time. What that
// bound keeps the server's memory to is BenchmarkParallelFailedLogins's
// peak-MB (make bench; about 150 MB where 200 checks at once would take
// 4 GB).
func TestParallelFailedLoginsAreBounded(t *testing.T) {
	counts, peak := failedLoginStorm(t, 200)
	t.Logf("answers %v, server peak RSS %d MB", counts, peak>>20)
}

// BenchmarkParallelFailedLogins reports the server's peak memory during a
// storm of 200 failed logins at once.
func BenchmarkParallelFailedLogins(b *testing.B) {
	var peak int64
	for b.Loop() {
		_, p := failedLoginStorm(b, 200)
		peak = max(peak, p)
	}
	b.ReportMetric(float64(peak>>20), "peak-MB")
}

// failedLoginStorm starts the real server, sends n failed logins at once,
// checks each answer, and returns the answers by status and the server's
// peak resident memory.
func failedLoginStorm(t testing.TB, n int) (map[int]int, int64) {
	dir := t.TempDir()
	cmd, base := startBinary(t, "serve", "--addr", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(dir, "l.db"))
	csrfRE := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	clients := make([]*http.Client, n)
	tokens := make([]string, n)
	for i := range n {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := clients[i].Get(base + "/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := csrfRE.FindSubmatch(page)
		if m == nil {
			t.Fatal("no CSRF token on the login page")
		}
		tokens[i] = string(m[1])
	}
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			form := url.Values{"login": {fmt.Sprintf("nobody%d", i)}, "password": {"wrong-password"}, "csrf": {tokens[i]}}
			resp, err := clients[i].PostForm(base+"/login", form)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts[http.StatusUnauthorized] == 0 || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests]+counts[http.StatusServiceUnavailable] != n {
		t.Fatalf("answers %v: want wrong-password, throttled or busy, nothing else", counts)
	}
	return counts, peakRSS(t, cmd.Process.Pid)
}

// startBinary builds the real program as deployed (without the race
// detector, which would multiply its memory and slow it), starts it with
// args, and returns it and the base URL it listens on, once it does. It is
// killed when the test ends.
func startBinary(t testing.TB, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	found := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		return cmd, "http://" + addr
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not start")
	}
	return nil, ""
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func peakRSS(t testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's peak memory: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
