package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"latchkey/internal/testenv"
)

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// buildBinary builds the real program once per test run, as deployed
// (without the race detector), and returns its path.
func buildBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "latchkey-bin-*")
		if built.err != nil {
			return
		}
		os.Chmod(built.dir, 0o755) // another user runs it too
		built.bin = filepath.Join(built.dir, "latchkey")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, "latchkey/cmd/latchkey").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// runBinary runs the program with args in dir and returns its exit status
// and stderr.
func runBinary(t *testing.T, dir string, cred *syscall.Credential, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stderr.String()
}

// What a new user meets when the server cannot start: one line naming the
// problem and what to do, every problem of the command line at once, and
// nothing left behind.
func TestStartupErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	oneLine := func(name string, code int, stderr string, wantCode int, wants ...string) {
		t.Helper()
		if code != wantCode || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q: want exit %d and one line", name, code, stderr, wantCode)
		}
		for _, w := range wants {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: %q does not say %q", name, stderr, w)
			}
		}
	}

	code, stderr := runBinary(t, dir, nil, nil, "serve", "--rate-user", "abc", "--code-ttl", "5")
	oneLine("two malformed flags", code, stderr, 2, `--rate-user: want a number, got "abc"`, `--code-ttl: want a duration`)

	code, stderr = runBinary(t, dir, nil, nil, "serve", "--db", "sqlite:/no/such/dir/x.db", "--addr", "127.0.0.1:0")
	oneLine("a database in a missing directory", code, stderr, 2, "the directory /no/such/dir does not exist")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, stderr = runBinary(t, dir, nil, nil, "serve", "--addr", ln.Addr().String())
	oneLine("a port in use", code, stderr, 1, "listen on "+ln.Addr().String(), "address already in use")
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("a server that could not listen left %d files behind (%s…)", len(left), left[0].Name())
	}

	// A PostgreSQL no one listens on: pgx names each address on a line.
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := free.Addr().String()
	free.Close()
	code, stderr = runBinary(t, dir, nil, nil, "migrate", "--db", "postgres://nobody@"+addr+"/x?connect_timeout=5")
	oneLine("an unreachable PostgreSQL", code, stderr, 1, "connection refused")
}

// A database and secret made by a command run as root, then served by the
// service's own user: the error names the file, its owner and what to run.
func TestFilesOfAnotherUserAreNamed(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Missing(t, "root (to run the program as another user)")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is the test's alone
	db := "sqlite:" + filepath.Join(dir, "latchkey.db")
	for _, args := range [][]string{
		{"user", "create", "--db", db, "--login", "rooted", "--password", "password-rooted"},
		{"app", "create", "--db", db, "--owner", "1", "--title", "x", "--type", "web", "--redirect-uri", "https://x.example/cb"},
	} {
		if code, stderr := runBinary(t, dir, nil, nil, args...); code != 0 {
			t.Fatalf("%v as root: exit %d %s", args, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "latchkey.db.secret")); err != nil {
		t.Fatal("the secret was not made as root: ", err)
	}
	service := &syscall.Credential{Uid: 65532, Gid: 65532}
	code, stderr := runBinary(t, dir, service, nil, "serve", "--db", db, "--addr", "127.0.0.1:0")
	for _, want := range []string{"cannot read the server secret " + filepath.Join(dir, "latchkey.db.secret"), "belongs to uid 0", "runs as uid 65532", "chown -R 65532 " + dir} {
		if !strings.Contains(stderr, want) {
			t.Errorf("serve as the service's user: exit %d, %q does not say %q", code, stderr, want)
		}
	}
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("exit %d, %d lines: want a failure in one line", code, strings.Count(stderr, "\n"))
	}
	// With the secret given, the database file is what it cannot open.
	code, stderr = runBinary(t, dir, service, []string{"LATCHKEY_SECRET=" + strings.Repeat("s", 40)}, "serve", "--db", db, "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "cannot open the database file "+filepath.Join(dir, "latchkey.db")) || !strings.Contains(stderr, "belongs to uid 0") {
		t.Errorf("serve as the service's user with the secret: exit %d %q", code, stderr)
	}
}

// A binary built in a git checkout names its commit, with no -ldflags:
// from the build information Go records (`make build` asks for it).
func TestVersionNamesTheCommit(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		testenv.Missing(t, "a git checkout (git rev-parse HEAD: "+err.Error()+")")
	}
	bin := filepath.Join(t.TempDir(), "latchkey")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "latchkey/cmd/latchkey").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Version, Commit string }
	if err := json.Unmarshal(out, &v); err != nil || !strings.HasPrefix(v.Commit, strings.TrimSpace(string(head))) {
		t.Fatalf("version: %s (%v), want commit %s", out, err, head)
	}
}
