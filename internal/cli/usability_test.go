package cli

import (
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestVersionCompletionAndHelp(t *testing.T) {
	c := newCLI(t)
	out, err := c.run("version")
	var v struct{ Version, Commit, Go string }
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.Commit == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("version: %q %v", out, err)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, err := c.run("completion", shell)
		if err != nil || !strings.Contains(out, "latchkey") || len(out) < 500 {
			t.Fatalf("completion %s: %d bytes, %v", shell, len(out), err)
		}
	}
	out, err = c.run()
	if err != nil || !strings.Contains(out, "Available Commands") || !strings.Contains(out, "serve") {
		t.Fatalf("a bare latchkey: %v\n%s", err, out)
	}
	if _, err := c.run("nonsense"); ExitCode(err) != 2 || !strings.Contains(err.Error(), `unknown command "nonsense"`) {
		t.Fatalf("an unknown command: %v", err)
	}
}

// Every flag of every command can come from the environment, and a
// malformed value is named with what the flag wants.
func TestEnvironmentAndMalformedValues(t *testing.T) {
	c := newCLI(t)
	c.extra["LATCHKEY_LOGIN"] = "envuser"
	c.extra["LATCHKEY_PASSWORD"] = "from-the-environment"
	var user struct{ ID int64 }
	c.ok(&user, "user", "create")
	if user.ID == 0 {
		t.Fatal("user create with its flags in the environment made no user")
	}
	delete(c.extra, "LATCHKEY_LOGIN")
	delete(c.extra, "LATCHKEY_PASSWORD")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"app", "show", "--app", "abc"}, nil, `--app: want a whole number, got "abc"`},
		{[]string{"serve", "--rate-user", "abc"}, nil, `--rate-user: want a number, got "abc"`},
		{[]string{"serve", "--code-ttl", "soon"}, nil, `--code-ttl: want a duration such as 90s, 10m or 12h, got "soon"`},
		{[]string{"app", "show"}, map[string]string{"LATCHKEY_APP": "abc"}, `LATCHKEY_APP: want a whole number, got "abc"`},
	} {
		for k, v := range tc.env {
			c.extra[k] = v
		}
		_, err := c.run(tc.args...)
		for k := range tc.env {
			delete(c.extra, k)
		}
		if ExitCode(err) != 2 || err.Error() != tc.want {
			t.Errorf("latchkey %v: %v, want exit 2 with %q", tc.args, err, tc.want)
		}
	}
}

// --config: a YAML file of flag names; the environment and the command line
// win over it; a key no command knows, or a bad value, is named.
func TestConfigFile(t *testing.T) {
	c := newCLI(t)
	file := filepath.Join(c.dir, "latchkey.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("login: fromfile\npassword: from-the-file-1\nfirst-name: File\n")
	var user struct{ Login string }
	c.ok(&user, "user", "create", "--config", file)
	if user.Login != "fromfile" {
		t.Fatalf("user create from the file: %+v", user)
	}
	c.extra["LATCHKEY_LOGIN"] = "fromenv"
	c.ok(&user, "user", "create", "--config", file)
	if user.Login != "fromenv" {
		t.Fatalf("the environment did not win over the file: %+v", user)
	}
	c.ok(&user, "user", "create", "--config", file, "--login", "fromflag")
	if user.Login != "fromflag" {
		t.Fatalf("the flag did not win: %+v", user)
	}
	delete(c.extra, "LATCHKEY_LOGIN")
	// Keys of other commands' flags are fine; unknown ones are not.
	write("login: other\npassword: from-the-file-1\npublic-url: https://lk.example\n")
	c.ok(nil, "user", "create", "--config", file)
	write("login: x\nlogn: typo\n")
	if _, err := c.run("user", "create", "--config", file); ExitCode(err) != 2 || !strings.Contains(err.Error(), `unknown key "logn"`) {
		t.Fatalf("an unknown key: %v", err)
	}
	write("rate-user: fast\n")
	if _, err := c.run("serve", "--config", file); ExitCode(err) != 2 || !strings.Contains(err.Error(), `rate-user: want a number, got "fast"`) {
		t.Fatalf("a bad value: %v", err)
	}
	if _, err := c.run("user", "create", "--config", filepath.Join(c.dir, "missing.yaml")); ExitCode(err) != 2 {
		t.Fatalf("a missing file: %v", err)
	}
}

// A LATCHKEY_ variable that sets no flag is reported at start, with the
// one it is likely a misspelling of; the known ones are not.
func TestUnknownEnvironmentVariablesReported(t *testing.T) {
	dir := t.TempDir()
	var out, errs strings.Builder
	environ := []string{"LATCHKEY_DB=sqlite:" + filepath.Join(dir, "l.db"), "LATCHKEY_ADRR=127.0.0.1:9", "LATCHKEY_NOTHING_LIKE_IT=1",
		"LATCHKEY_RATE_USER=5", "LATCHKEY_SECRET=0123456789abcdef0123456789abcdef", "PATH=/bin"}
	if err := Main(t.Context(), []string{"migrate"}, environ, &out, &errs); err != nil {
		t.Fatal(err)
	}
	got := errs.String()
	if !strings.Contains(got, "LATCHKEY_ADRR sets nothing and is ignored (did you mean LATCHKEY_ADDR?)") ||
		!strings.Contains(got, "LATCHKEY_NOTHING_LIKE_IT sets nothing and is ignored\n") {
		t.Fatalf("stderr: %q", got)
	}
	for _, known := range []string{"LATCHKEY_DB", "LATCHKEY_RATE_USER", "LATCHKEY_SECRET", "PATH"} {
		if strings.Contains(got, known+" ") {
			t.Fatalf("%s was reported: %q", known, got)
		}
	}
}

// The demo's web app comes back to the demo's own callback page, which
// shows the code exchange and an API call; and the demo lifts the
// per-token limits, so a dozen calls in a row all answer.
func TestDemoCallbackShowsTheExchange(t *testing.T) {
	c := newCLI(t)
	base, stdout, _ := startServe(t, c.getenv, "--demo")
	codeURL := regexp.MustCompile(`the exchange: (\S+)`).FindStringSubmatch(stdout.String())
	if codeURL == nil || !strings.Contains(stdout.String(), "rate limits are off") {
		t.Fatalf("the demo's output:\n%s", stdout.String())
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	hidden := regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	submit := func(page, action string, fields url.Values) string {
		t.Helper()
		for _, m := range hidden.FindAllStringSubmatch(page, -1) {
			fields.Set(m[1], html.UnescapeString(m[2]))
		}
		resp, err := browser.PostForm(base+action, fields)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	resp, err := browser.Get(codeURL[1])
	if err != nil {
		t.Fatal(err)
	}
	login, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	consent := submit(string(login), "/login", url.Values{"login": {"demo"}, "password": {"demo-password"}})
	page := submit(consent, "/authorize", url.Values{"decision": {"allow"}})
	for _, want := range []string{"/access_token", "&#34;access_token&#34;: &#34;lku1", "/method/users.get", "&#34;first_name&#34;: &#34;Demo&#34;"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the callback page lacks %q:\n%s", want, page)
		}
	}
	tok := regexp.MustCompile(`lku1[0-9a-f]{76}`).FindString(page)
	for i := range 12 {
		resp, err := http.Get(base + "/method/users.get?v=5.199&access_token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"response"`) {
			t.Fatalf("call %d in a row: %s", i+1, b)
		}
	}
}

// healthcheck (the container's health check) says ok for a ready server
// and fails for one that is not there.
func TestHealthcheck(t *testing.T) {
	c := newCLI(t)
	base, _, _ := startServe(t, c.getenv)
	out, err := c.run("healthcheck", "--url", base+"/readyz")
	if err != nil || strings.TrimSpace(out) != `{"ok":true}` {
		t.Fatalf("a ready server: %q %v", out, err)
	}
	if _, err := c.run("healthcheck", "--url", base+"/nothing-here"); err == nil {
		t.Fatal("a 404 passed the health check")
	}
	if _, err := c.run("healthcheck", "--url", "http://127.0.0.1:1/readyz"); err == nil {
		t.Fatal("no server passed the health check")
	}
}

// --admin-addr: /metrics and the admin API on their own listener, and
// /metrics no more on the public one; an admin token from the command line
// opens the API.
func TestAdminListener(t *testing.T) {
	c := newCLI(t)
	var tok struct{ Token string }
	c.ok(&tok, "admin-token", "create", "--name", "ops")
	if !strings.HasPrefix(tok.Token, "lkx1") {
		t.Fatalf("admin-token create: %q", tok.Token)
	}
	if _, err := c.run("admin-token", "create", "--name", "ops"); ExitCode(err) != 2 && err == nil {
		t.Fatal("a second token of the same name was made")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	base, _, _ := startServe(t, c.getenv, "--admin-addr", adminAddr)
	get := func(u, bearer string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		var resp *http.Response
		for range 50 { // the admin listener starts beside the main one
			if resp, err = http.DefaultClient.Do(req); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	admin := "http://" + adminAddr
	if s := get(admin+"/metrics", ""); s != 200 {
		t.Fatalf("admin /metrics: %d", s)
	}
	if s := get(base+"/metrics", ""); s == 200 {
		t.Fatal("/metrics is still on the public listener")
	}
	if s := get(admin+"/debug/pprof/", ""); s != 200 {
		t.Fatalf("/debug/pprof/: %d", s)
	}
	if s := get(admin+"/admin/v1/users", tok.Token); s != 200 {
		t.Fatalf("the admin API with the token: %d", s)
	}
	var ok struct{ OK bool }
	c.ok(&ok, "admin-token", "revoke", "--name", "ops")
	if s := get(admin+"/admin/v1/users", tok.Token); s != 401 {
		t.Fatalf("the admin API with a revoked token: %d", s)
	}
}
