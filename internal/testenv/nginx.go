package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nginx starts Debian's nginx (apt-get install nginx) on a free loopback
// port with the server block server(port) returns, as an unprivileged
// process (nobody, when the tests run as root), and returns its base URL.
// It is stopped when the test ends.
func Nginx(t testing.TB, server func(port int) string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			Missing(t, "nginx (apt-get install nginx)")
		}
		bin = "/usr/sbin/nginx"
	}
	// Not t.TempDir(): nobody must reach it, and the test's own temporary
	// directory is its owner's alone.
	dir, err := os.MkdirTemp("", "latchkey-nginx-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777) // nobody writes its pid and temporary files there
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var temps strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "%s_temp_path %s;\n", k, filepath.Join(dir, k))
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %s;
error_log stderr warn;
events { worker_connections 64; }
http {
access_log off;
%s
server {
listen 127.0.0.1:%d;
%s
}
}
`, filepath.Join(dir, "nginx.pid"), temps.String(), port, server(port))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-e", "stderr", "-p", dir, "-c", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("nginx:\n%s", stderr.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("nginx did not listen on %s:\n%s", addr, stderr.String())
		}
	}
}
