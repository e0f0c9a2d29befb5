package e2e

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/internal/storage"
)

// The README's device and DPoP example runs: it gets a DPoP-bound token
// through the device flow while a browser allows the code, and calls the
// API with it.
func TestDeviceDPoPExampleRuns(t *testing.T) {
	e := newEnv(t)
	u := e.user("exam", "")
	app := e.app(u.ID, storage.Standalone)
	bin := filepath.Join(t.TempDir(), "device-dpop")
	if out, err := exec.Command("go", "build", "-o", bin, "latchkey/examples/device-dpop").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-server", e.URL, "-client-id", fmt.Sprint(app.ID))
	out, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 10)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the example stopped: %s", stderr.String())
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("the example said nothing for 30 s")
		}
		return ""
	}
	m := regexp.MustCompile(`^Open (\S+) and allow the code (\S+)\.$`).FindStringSubmatch(next())
	if m == nil {
		t.Fatal("the example did not say where to allow the code")
	}
	approveDevice(t, e, "exam", m[1], "", "allow")
	if l := next(); l != "Got a DPoP token." {
		t.Fatalf("the example said %q", l)
	}
	if l := next(); !strings.HasPrefix(l, `users.get: {"response":[{"id":`) {
		t.Fatalf("the example's API call: %q", l)
	}
}
