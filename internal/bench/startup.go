package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Startup measures a built latchkey binary runs times, each on a SQLite
// database migrated beforehand (as a restarted node finds it): the time from
// starting the process to the first 200 from /healthz, the CPU the process
// used to get there (from /proc, user and system), and its resident memory
// once it has idled for idle. It reports the median of each.
func Startup(ctx context.Context, binary string, runs int, idle time.Duration) (string, error) {
	if runs < 1 {
		return "", fmt.Errorf("bench: startup runs %d: want at least 1", runs)
	}
	dir, err := os.MkdirTemp("", "latchkey-startup-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "LATCHKEY_SECRET=startup-secret-"+rand32())
	var ready, cpu []time.Duration
	var rss, anon []int64
	for i := range runs {
		db := "sqlite:" + filepath.Join(dir, fmt.Sprint(i, ".db"))
		migrate := exec.CommandContext(ctx, binary, "migrate", "--db", db)
		migrate.Env = env
		if out, err := migrate.CombinedOutput(); err != nil {
			return "", fmt.Errorf("bench: %s migrate: %w: %s", binary, err, out)
		}
		r, c, m, a, err := startOnce(ctx, binary, db, env, idle)
		if err != nil {
			return "", err
		}
		ready, cpu, rss, anon = append(ready, r), append(cpu, c), append(rss, m), append(anon, a)
	}
	slices.Sort(ready)
	slices.Sort(cpu)
	slices.Sort(rss)
	slices.Sort(anon)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("start-up (median of %d, SQLite, migrated): first /healthz 200 after %v (min %v, max %v), %v CPU to get there; "+
		"RSS after %v idle %.1f MiB, of which %.1f MiB the process's own (RssAnon) and the rest the binary's pages it has touched (RssFile, shared and reclaimable)",
		runs, round(ready[runs/2]), round(ready[0]), round(ready[runs-1]), round(cpu[runs/2]), idle, mib(rss[runs/2]), mib(anon[runs/2])), nil
}

// startOnce starts the server, waits for its first 200 from /healthz, and
// returns how long that took, the process's CPU by then, and its resident
// memory after idle: all of it, and its anonymous part.
func startOnce(ctx context.Context, binary, db string, env []string, idle time.Duration) (ready, cpu time.Duration, rss, anon int64, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "serve", "--db", db, "--addr", addr)
	cmd.Env, cmd.Stderr = env, &stderr
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Since(start) > 10*time.Second {
			return 0, 0, 0, 0, fmt.Errorf("bench: %s serve gave no /healthz 200 in 10s: %v\n%s", binary, err, stderr.String())
		}
		time.Sleep(200 * time.Microsecond)
	}
	ready = time.Since(start)
	if cpu, err = procCPU(cmd.Process.Pid); err != nil {
		return 0, 0, 0, 0, err
	}
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return 0, 0, 0, 0, ctx.Err()
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	rss, anon = procStatusOf(pid, "VmRSS"), procStatusOf(pid, "RssAnon")
	if rss == 0 {
		return 0, 0, 0, 0, fmt.Errorf("bench: no VmRSS for %s serve", binary)
	}
	return ready, cpu, rss, anon, nil
}

// procCPU is a process's user and system CPU, from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %q", pid, b)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}
