package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"latchkey/internal/admin/view"
)

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A 1 GiB upload through the gateway streams: the real server (built as
// deployed) passes it to the upstream as it comes, and its peak resident
// memory grows by a small fraction of the body, where buffering would grow
// it by the whole gigabyte.
func TestGatewayStreamsALargeUpload(t *testing.T) {
	const size = 1 << 30
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	}))
	t.Cleanup(up.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr

	c := newCLI(t)
	c.extra["LATCHKEY_PUBLIC_URL"] = base
	c.ok(nil, "user", "create", "--login", "uploader", "--password", "uploader-password")
	var app view.App
	c.ok(&app, "app", "create", "--owner", "1", "--title", "Uploader", "--type", "web")
	c.ok(nil, "app", "set", "--app", "1", "--client-credentials", "on")
	var api map[string]any
	c.ok(&api, "api", "create", "--owner", "1", "--name", "Files", "--slug", "files", "--upstream", up.URL,
		"--scope", "files:write=Upload files|Загружать файлы")
	if api["identifier"] != base+"/api/files" {
		t.Fatalf("api create printed %v", api)
	}
	cmd, _ := startBinary(t, "serve", "--addr", addr, "--public-url", base, "--db", "sqlite:"+filepath.Join(c.dir, "latchkey.db"))

	resp, err := http.PostForm(base+"/access_token", url.Values{"grant_type": {"client_credentials"}, "client_id": {strconv.FormatInt(app.ClientID, 10)},
		"client_secret": {app.ClientSecret}, "resource": {base + "/api/files"}, "scope": {"files:write"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	upload := func(n int64) string {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/files/upload", io.LimitReader(zeros{}, n))
		req.ContentLength = n
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("an upload of %d bytes: %d %s", n, resp.StatusCode, body)
		}
		return strings.TrimSpace(string(body))
	}
	upload(1 << 20) // the paths of a request warmed up
	before := peakRSS(t, cmd.Process.Pid)
	if got := upload(size); got != strconv.Itoa(size) {
		t.Fatalf("the upstream received %s bytes of %d", got, size)
	}
	after := peakRSS(t, cmd.Process.Pid)
	t.Logf("server peak RSS %d MB before a 1 GiB upload, %d MB after", before>>20, after>>20)
	if after-before > size/8 {
		t.Fatalf("a 1 GiB upload grew the server's peak memory by %d MB: it is buffered, not streamed", (after-before)>>20)
	}
}
