package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"latchkey/internal/dpop"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"

	"github.com/go-jose/go-jose/v4"
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

// Node's jose verifies a JWT access token for an API (jwtVerify with typ
// at+jwt, the issuer and the audience against /oauth/jwks), before and
// after a key rotation; a DPoP-bound one carries cnf.jkt; a token for
// another API, or tampered with, fails.
func TestJWTAccessTokensVerifyWithNodeJose(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dev := e.user("dev", "")
	orders := e.api(dev.ID, "https://orders.example/api", storage.TokenJWT)
	files := e.api(dev.ID, "https://files.example", storage.TokenJWT)
	app := e.app(dev.ID, storage.Web, "https://svc.example/cb")
	if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	token := func(api platform.APIView, proof string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", e.URL+"/access_token", strings.NewReader(url.Values{"grant_type": {"client_credentials"},
			"resource": {api.Identifier}, "scope": {"orders:read"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(fmt.Sprint(app.ID), app.ClientSecret)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != 200 {
			t.Fatalf("a token for %s: %d %v", api.Identifier, resp.StatusCode, m)
		}
		return m["access_token"].(string)
	}
	cmd, lines, stdin := nodeClient(t, "jwt-verify.mjs", e.URL, orders.Identifier)
	verify := func(tok string) map[string]any {
		t.Helper()
		fmt.Fprintln(stdin, tok)
		done := make(chan bool, 1)
		go func() { done <- lines.Scan() }()
		select {
		case ok := <-done:
			if !ok {
				cmd.Wait()
				t.Fatalf("the Node verifier stopped: %v", lines.Err())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the Node verifier said nothing for 30 s")
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("the Node verifier printed %q", lines.Text())
		}
		return m
	}
	first := verify(token(orders, ""))
	claims, _ := first["claims"].(map[string]any)
	if first["ok"] != true || claims["client_id"] != fmt.Sprint(app.ID) || claims["scope"] != "orders:read" || claims["aud"] != orders.Identifier {
		t.Fatalf("jose on a token for the API: %v", first)
	}
	if _, err := e.P.Signing.Rotate(ctx, platform.CLI); err != nil {
		t.Fatal(err)
	}
	after := verify(token(orders, ""))
	if after["ok"] != true || after["kid"] == first["kid"] {
		t.Fatalf("jose on a token signed after the rotation: %v (before: %v)", after, first["kid"])
	}
	if _, err := e.P.Signing.RotateAlg(ctx, platform.CLI, "ES256"); err != nil {
		t.Fatal(err)
	}
	if es := verify(token(orders, "")); es["ok"] != true || es["kid"] == after["kid"] {
		t.Fatalf("jose on a token signed with the ES256 key: %v", es)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := dpop.NewSigner(key, jose.ES256)
	proof, err := signer.Proof("POST", e.URL+"/access_token", "", "node-jose-1", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	bound := verify(token(orders, proof))
	cnf, _ := bound["claims"].(map[string]any)["cnf"].(map[string]any)
	if bound["ok"] != true || cnf["jkt"] != signer.JKT() {
		t.Fatalf("jose on a DPoP-bound token: %v, want cnf.jkt %s", bound, signer.JKT())
	}
	if m := verify(token(files, "")); m["ok"] != false {
		t.Fatalf("jose took another API's token: %v", m)
	}
	tok := token(orders, "")
	if m := verify(tok[:len(tok)-4] + "AAAA"); m["ok"] != false {
		t.Fatalf("jose took a tampered token: %v", m)
	}
}
