package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// nodeClient starts a script of clients/node with its arguments, after
// checking that Node and the packages (npm ci) are there.
func nodeClient(t *testing.T, script string, args ...string) (*exec.Cmd, *bufio.Scanner, *os.File) {
	t.Helper()
	dir, err := filepath.Abs("../../clients/node")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "Node.js (apt-get install nodejs)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		testenv.Missing(t, "the Node clients (npm ci --prefix clients/node)")
	}
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Dir = dir
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, stderr.String())
		}
	})
	return cmd, bufio.NewScanner(out), w
}

// openid-client 6 (Node) runs discovery, the code flow with PKCE and nonce,
// UserInfo and a refresh against Latchkey.
func TestOpenIDClientNode(t *testing.T) {
	e := newEnv(t)
	u := e.user("nora", "nora@example.com")
	redirect := "https://nora.example/cb"
	app := e.app(u.ID, storage.Web, redirect)
	cmd, lines, stdin := nodeClient(t, "oidc-flow.mjs", e.URL, fmt.Sprint(app.ID), app.ClientSecret, redirect)
	next := func() map[string]any {
		t.Helper()
		done := make(chan bool, 1)
		go func() { done <- lines.Scan() }()
		select {
		case ok := <-done:
			if !ok {
				cmd.Wait()
				t.Fatalf("the Node client stopped: %v", lines.Err())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the Node client said nothing for 30 s")
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("the Node client printed %q", lines.Text())
		}
		return m
	}
	first := next()
	b := e.browser()
	if to := b.get(first["authorize"].(string)); to != "" {
		t.Fatalf("authorize went to %s", to)
	}
	to := b.login("nora", "password-nora")
	if to == "" {
		to = b.approve()
	}
	fmt.Fprintln(stdin, to)
	got := next()
	want := map[string]any{"sub": fmt.Sprint(u.ID), "nonceMatched": true, "email": "nora@example.com", "name": "Nora Tester",
		"refreshed": true, "rotated": true, "refreshedIdToken": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
