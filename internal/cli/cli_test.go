package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/internal/admin/view"
	"latchkey/internal/storage"
	"latchkey/internal/storage/sqlite"
	"latchkey/internal/testenv"
)

// cliEnv runs the real program against one temporary SQLite database.
type cliEnv struct {
	t      *testing.T
	dir    string
	db     string
	extra  map[string]string
	stderr bytes.Buffer
}

func newCLI(t *testing.T) *cliEnv {
	dir := t.TempDir()
	return &cliEnv{t: t, dir: dir, db: filepath.Join(dir, "latchkey.db"), extra: map[string]string{}}
}

func (c *cliEnv) getenv(k string) string {
	if k == "LATCHKEY_DB" {
		return "sqlite:" + c.db
	}
	return c.extra[k]
}

// run runs args and returns stdout and the error.
func (c *cliEnv) run(args ...string) (string, error) {
	var out bytes.Buffer
	c.stderr.Reset()
	err := Run(context.Background(), args, c.getenv, &out, &c.stderr)
	return out.String(), err
}

// ok runs args, requires success, and decodes the JSON printed into v.
func (c *cliEnv) ok(v any, args ...string) {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("latchkey %s: %v", strings.Join(args, " "), err)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("latchkey %s printed %q: %v", strings.Join(args, " "), out, err)
		}
	}
}

func TestCommandsPrintTheContractJSON(t *testing.T) {
	c := newCLI(t)
	var user map[string]any
	c.ok(&user, "user", "create", "--login", "alice", "--password", "correct horse", "--first-name", "Alice", "--email", "alice@example.com")
	if len(user) != 2 || user["id"] != float64(1) || user["login"] != "alice" {
		t.Fatalf("user create printed %v, want {\"id\":1,\"login\":\"alice\"}", user)
	}

	var app view.App
	c.ok(&app, "app", "create", "--owner", "1", "--title", "My app", "--type", "web",
		"--redirect-uri", "https://app.example/cb", "--redirect-uri", "https://app.example/cb?x=1,2")
	if app.ClientID == 0 || len(app.ClientSecret) != 24 || !strings.HasPrefix(app.ServiceToken, "lks1") {
		t.Fatalf("app create printed %+v", app)
	}
	if len(app.RedirectURIs) != 2 || app.RedirectURIs[1] != "https://app.example/cb?x=1,2" {
		t.Fatalf("redirect URIs = %q: a comma must not split a URI", app.RedirectURIs)
	}
	var raw map[string]any
	c.ok(&raw, "app", "show", "--app", "1")
	for _, k := range []string{"client_id", "client_secret", "service_token"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("app show lacks %q: %v", k, raw)
		}
	}

	var group map[string]any
	c.ok(&group, "group", "create", "--owner", "1", "--name", "Cats")
	if len(group) != 1 || group["id"] != float64(1) {
		t.Fatalf("group create printed %v", group)
	}
	c.ok(nil, "user", "create", "--login", "bob", "--password", "12345678")
	var okJSON map[string]any
	c.ok(&okJSON, "group", "add-admin", "--group", "1", "--user", "2")
	if okJSON["ok"] != true {
		t.Fatalf("add-admin printed %v", okJSON)
	}
	c.ok(&okJSON, "group", "remove-admin", "--group", "1", "--user", "2")
	if _, err := c.run("group", "remove-admin", "--group", "1", "--user", "1"); ExitCode(err) != 2 || !strings.Contains(err.Error(), "last admin") {
		t.Fatalf("removing the last admin: %v", err)
	}

	var rotated, retired, newSvc, ccOn, ccOff, deleted view.App
	c.ok(&rotated, "app", "rotate-secret", "--app", "1")
	if rotated.ClientSecret == app.ClientSecret || rotated.OldClientSecret != app.ClientSecret || rotated.OldClientSecretExpiresAt == 0 {
		t.Fatalf("rotate-secret: %+v", rotated)
	}
	c.ok(&retired, "app", "retire-secret", "--app", "1")
	if retired.OldClientSecret != "" || retired.ClientSecret != rotated.ClientSecret {
		t.Fatalf("retire-secret: %+v", retired)
	}
	c.ok(&newSvc, "app", "new-service-token", "--app", "1")
	if newSvc.ServiceToken == app.ServiceToken || !strings.HasPrefix(newSvc.ServiceToken, "lks1") {
		t.Fatalf("new-service-token kept %q", newSvc.ServiceToken)
	}
	c.ok(&ccOn, "app", "set", "--app", "1", "--client-credentials", "on")
	c.ok(&ccOff, "app", "set", "--app", "1", "--client-credentials", "off")
	if !ccOn.ClientCredentials || ccOff.ClientCredentials {
		t.Fatalf("client credentials on/off: %v/%v", ccOn.ClientCredentials, ccOff.ClientCredentials)
	}
	var edited view.App
	c.ok(&edited, "app", "set", "--app", "1", "--title", "Renamed", "--redirect-uri", "https://new.example/cb")
	if edited.Title != "Renamed" || len(edited.RedirectURIs) != 1 || edited.RedirectURIs[0] != "https://new.example/cb" || edited.ClientCredentials {
		t.Fatalf("app set settings: %+v", edited)
	}
	c.ok(&deleted, "app", "delete", "--app", "1")
	if _, err := c.run("app", "show", "--app", "1"); ExitCode(err) != 2 {
		t.Fatalf("show after delete: %v (exit %d), want exit 2", err, ExitCode(err))
	}

	// The service tokens of the deleted app are gone from storage.
	store, err := sqlite.Open(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.GetApp(context.Background(), 1); err != storage.ErrNotFound {
		t.Fatalf("deleted app still stored: %v", err)
	}
	audit, err := store.ListAudit(context.Background(), storage.AuditFilter{AppID: 1})
	if err != nil || len(audit) != 8 {
		t.Fatalf("audit log of app 1 has %d events (%v), want 8: create, rotate, retire, new token, on, off, settings, delete", len(audit), err)
	}
}

func TestBadInputExits2AndWritesNothing(t *testing.T) {
	c := newCLI(t)
	c.ok(nil, "user", "create", "--login", "owner", "--password", "12345678")
	c.ok(nil, "app", "create", "--owner", "1", "--title", "T", "--type", "web")
	cases := []struct {
		name string
		args []string
		want string // part of the error
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"group command without a subcommand", []string{"app"}, "needs a subcommand"},
		{"missing required flag", []string{"user", "create", "--login", "x1"}, `"password"`},
		{"unknown flag", []string{"user", "create", "--login", "abc", "--password", "12345678", "--age", "3"}, "unknown flag"},
		{"short login", []string{"user", "create", "--login", "ab", "--password", "12345678"}, "login"},
		{"short password", []string{"user", "create", "--login", "abc", "--password", "short"}, "password"},
		{"bad email", []string{"user", "create", "--login", "abc", "--password", "12345678", "--email", "nope"}, "email"},
		{"taken login", []string{"user", "create", "--login", "owner", "--password", "12345678"}, "taken"},
		{"bad app type", []string{"app", "create", "--owner", "1", "--title", "T", "--type", "desktop"}, "type"},
		{"unknown owner", []string{"app", "create", "--owner", "99", "--title", "T", "--type", "web"}, "no user with id 99"},
		{"relative redirect URI", []string{"app", "create", "--owner", "1", "--title", "T", "--type", "web", "--redirect-uri", "/cb"}, "redirect URI"},
		{"http redirect URI off loopback", []string{"app", "create", "--owner", "1", "--title", "T", "--type", "web", "--redirect-uri", "http://app.example/cb"}, "https"},
		{"redirect URI with fragment", []string{"app", "create", "--owner", "1", "--title", "T", "--type", "web", "--redirect-uri", "https://a.example/#x"}, "fragment"},
		{"iframe app without URL", []string{"app", "create", "--owner", "1", "--title", "T", "--type", "iframe"}, "iframe"},
		{"owner not a number", []string{"app", "create", "--owner", "one", "--title", "T", "--type", "web"}, "owner"},
		{"unknown app", []string{"app", "show", "--app", "42"}, "no app with id 42"},
		{"client credentials maybe", []string{"app", "set", "--app", "1", "--client-credentials", "maybe"}, "on or off"},
		{"app set with nothing to change", []string{"app", "set", "--app", "1"}, "nothing to change"},
		{"app set with a bad redirect URI", []string{"app", "set", "--app", "1", "--redirect-uri", "ftp://x"}, "redirect URI"},
		{"retire without rotation", []string{"app", "retire-secret", "--app", "1"}, "no old secret"},
		{"group of unknown owner", []string{"group", "create", "--owner", "99", "--name", "G"}, "no user"},
		{"admin of unknown group", []string{"group", "add-admin", "--group", "99", "--user", "1"}, "no community"},
		{"bad storage DSN", []string{"--db", "mysql://h/db", "migrate"}, "sqlite:PATH or postgres://"},
		{"stray argument", []string{"migrate", "now"}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, c.db)
			out, err := c.run(tc.args...)
			if ExitCode(err) != 2 {
				t.Fatalf("exit %d (%v), want 2", ExitCode(err), err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line containing %q", msg, tc.want)
			}
			if out != "" {
				t.Fatalf("stdout = %q, want nothing", out)
			}
			if after := snapshot(t, c.db); after != before {
				t.Fatalf("storage changed: %s -> %s", before, after)
			}
		})
	}
}

// snapshot summarises what the database holds.
func snapshot(t *testing.T, db string) string {
	t.Helper()
	s, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	users, _ := s.GetUsers(ctx, []int64{1, 2, 3, 4, 5})
	apps, _ := s.ListApps(ctx, storage.AppFilter{OwnerID: 1})
	communities, _ := s.ListAdminCommunities(ctx, 1)
	audit, _ := s.ListAudit(ctx, storage.AuditFilter{})
	b, _ := json.Marshal([]int{len(users), len(apps), len(communities), len(audit)})
	return string(b)
}

func TestSecretFromEnvironment(t *testing.T) {
	c := newCLI(t)
	c.extra["LATCHKEY_SECRET"] = "too short"
	c.ok(nil, "user", "create", "--login", "owner", "--password", "12345678") // needs no secret
	if _, err := c.run("app", "create", "--owner", "1", "--title", "T", "--type", "standalone"); ExitCode(err) != 2 || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("short LATCHKEY_SECRET: %v", err)
	}
	c.extra["LATCHKEY_SECRET"] = strings.Repeat("s", 32) + "," + strings.Repeat("t", 40)
	c.ok(nil, "app", "create", "--owner", "1", "--title", "T", "--type", "standalone")
	if _, err := os.Stat(c.db + ".secret"); !os.IsNotExist(err) {
		t.Fatalf("a secret file was created although LATCHKEY_SECRET is set: %v", err)
	}
}

func TestGeneratedSecretIsPrivateAndReused(t *testing.T) {
	c := newCLI(t)
	c.ok(nil, "user", "create", "--login", "owner", "--password", "12345678")
	var a view.App
	c.ok(&a, "app", "create", "--owner", "1", "--title", "T", "--type", "standalone")
	if !strings.Contains(c.stderr.String(), "created a server secret") {
		t.Fatalf("stderr %q does not say a secret was created", c.stderr.String())
	}
	fi, err := os.Stat(c.db + ".secret")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, mode %v; want 0600", err, fi.Mode())
	}
	var shown view.App
	c.ok(&shown, "app", "show", "--app", "1")
	if shown.ServiceToken != a.ServiceToken || strings.Contains(c.stderr.String(), "created") {
		t.Fatal("a later command did not reuse the secret file")
	}
}

// The database holds hashes and ciphertexts only: grep a copy of the file
// (and its WAL) for every secret the commands printed.
func TestDatabaseHoldsNoSecretsInTheClear(t *testing.T) {
	c := newCLI(t)
	const password = "hunter2-but-longer"
	c.ok(nil, "user", "create", "--login", "owner", "--password", password)
	var a, rotated, svc view.App
	c.ok(&a, "app", "create", "--owner", "1", "--title", "T", "--type", "web")
	c.ok(&rotated, "app", "rotate-secret", "--app", "1")
	c.ok(&svc, "app", "new-service-token", "--app", "1")
	secrets := []string{password, a.ClientSecret, a.ServiceToken, rotated.ClientSecret, svc.ServiceToken}
	testenv.AssertFilesLack(t, secrets, c.db, c.db+"-wal")
}

// startServe runs `latchkey serve` in-process on port 0 and returns its base
// URL, what it printed on stdout, and a stop function that waits for the
// graceful shutdown.
func startServe(t *testing.T, getenv func(string) string, args ...string) (base string, stdout *bytes.Buffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stdout = &bytes.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), getenv, stdout, pw)
		pw.Close()
	}()
	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	lines := bufio.NewScanner(pr)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		base = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("serve did not start listening")
	}
	var stopped bool
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return base, stdout, stop
}

func TestServeRealProgram(t *testing.T) {
	c := newCLI(t)
	base, stdout, stop := startServe(t, c.getenv, "--demo")
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("GET %s: %d, request id %q", path, resp.StatusCode, resp.Header.Get("X-Request-Id"))
		}
	}
	// Two API errors, for the counters below.
	for range 2 {
		if resp, err := http.Get(base + "/method/users.get?v=5.199&access_token=lku1nonsense"); err == nil {
			resp.Body.Close()
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`latchkey_http_requests_total{code="200",route="/healthz"} 1`, `latchkey_tokens_issued_total{kind="service"} 2`,
		"latchkey_password_checks_in_flight 0", `latchkey_api_errors_total{code="5"} 2`, `latchkey_token_cache_total{result="miss"}`,
		`latchkey_token_cache_total{result="hit"}`, `latchkey_storage_duration_seconds_count{op="select users"}`, `route="/method/{name}"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	printed := stdout.String()
	for _, want := range []string{`login "demo", password "demo-password"`, base + "/authorize?client_id=1&", "redirect_uri=" + strings.ReplaceAll(strings.ReplaceAll(base, ":", "%3A"), "/", "%2F") + "%2Fblank.html"} {
		if !strings.Contains(printed, want) {
			t.Errorf("demo output lacks %q:\n%s", want, printed)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}

	// A second --demo run seeds nothing new and prints the same login.
	_, stdout2, stop2 := startServe(t, c.getenv, "--demo")
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout2.String(), "client_id=1, web app client_id=2") {
		t.Fatalf("second demo run:\n%s", stdout2.String())
	}
	store, err := sqlite.Open(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if apps, _ := store.ListApps(context.Background(), storage.AppFilter{OwnerID: 1}); len(apps) != 2 {
		t.Fatalf("after two demo runs the demo user has %d apps, want 2", len(apps))
	}
}

func TestServeReportsEveryConfigProblemAtOnce(t *testing.T) {
	c := newCLI(t)
	c.extra["LATCHKEY_CODE_TTL"] = "0s"
	_, err := c.run("serve", "--addr", "nonsense", "--public-url", "ftp://x", "--log-format", "xml", "--rate-user", "0")
	if ExitCode(err) != 2 {
		t.Fatalf("exit %d: %v", ExitCode(err), err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	for _, want := range []string{"--addr", "--public-url", "--log-format", "--rate-user", "--code-ttl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	_, err = c.run("serve", "--code-ttl", "soon")
	if ExitCode(err) != 2 {
		t.Fatalf("unparsable flag: exit %d", ExitCode(err))
	}
	c.extra = map[string]string{"LATCHKEY_RATE_USER": "fast"}
	if _, err = c.run("serve"); ExitCode(err) != 2 || !strings.Contains(err.Error(), "LATCHKEY_RATE_USER") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestServeOnPostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	env := map[string]string{"LATCHKEY_DB": dsn}
	getenv := func(k string) string { return env[k] }
	if err := Run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, getenv, io.Discard, io.Discard); ExitCode(err) != 2 || !strings.Contains(err.Error(), "LATCHKEY_SECRET is required with PostgreSQL") {
		t.Fatalf("serve on PostgreSQL without a secret: %v", err)
	}
	env["LATCHKEY_SECRET"] = strings.Repeat("k", 40)
	base, stdout, stop := startServe(t, getenv, "--demo")
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(stdout.String(), `login "demo"`) {
		t.Fatalf("readyz %d; demo output %q", resp.StatusCode, stdout.String())
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
}

// Bad input writes nothing at all: not the server secret, not a new
// database file.
func TestBadInputCreatesNoFiles(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{"app", "show", "--app", "1"},
		{"app", "create", "--owner", "1", "--title", "T", "--type", "web"},
		{"group", "create", "--owner", "1", "--name", "G"},
	} {
		if _, err := c.run(args...); ExitCode(err) != 2 || !strings.Contains(err.Error(), "does not exist yet") {
			t.Fatalf("%v on no database: %v", args, err)
		}
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Fatalf("a refused command created the database: %v", err)
	}
	c.ok(nil, "user", "create", "--login", "first", "--password", "12345678")
	for _, args := range [][]string{
		{"app", "show", "--app", "7"},
		{"app", "new-service-token", "--app", "7"},
		{"app", "create", "--owner", "9", "--title", "T", "--type", "web"},
	} {
		if _, err := c.run(args...); ExitCode(err) != 2 {
			t.Fatalf("%v: %v", args, err)
		}
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range entries {
		if strings.HasSuffix(f.Name(), ".secret") {
			t.Fatal("a command refused for bad input created the server secret file")
		}
	}
}

// latchkey api: create prints the contract's shape with the introspection
// secret, set keeps what it is not given, rotate-secret shows a new
// secret, delete marks the API deleted; bad flags are usage errors.
func TestAPICommands(t *testing.T) {
	c := newCLI(t)
	c.ok(nil, "user", "create", "--login", "dev", "--password", "dev-password")
	var created map[string]any
	c.ok(&created, "api", "create", "--owner", "1", "--name", "Orders", "--identifier", "https://orders.example/api",
		"--scope", "orders:read=Read your orders|Читать ваши заказы", "--scope", "orders:write=Place orders|Оформлять заказы", "--token-format", "jwt")
	scopes, _ := created["scopes"].([]any)
	if created["id"] != 1.0 || created["identifier"] != "https://orders.example/api" || created["token_format"] != "jwt" || created["token_ttl_seconds"] != 300.0 ||
		created["introspection_client_id"] != "api-1" || len(created["introspection_secret"].(string)) < 20 || len(scopes) != 2 ||
		scopes[1].(map[string]any)["description"].(map[string]any)["ru"] != "Оформлять заказы" {
		t.Fatalf("api create printed %v", created)
	}
	var set map[string]any
	c.ok(&set, "api", "set", "--api", "1", "--name", "Orders v2", "--token-ttl", "10m")
	if set["name"] != "Orders v2" || set["token_ttl_seconds"] != 600.0 || len(set["scopes"].([]any)) != 2 || set["token_format"] != "jwt" || set["introspection_secret"] != nil {
		t.Fatalf("api set printed %v, want the new name and lifetime and the rest kept, no secret", set)
	}
	var rotated map[string]any
	c.ok(&rotated, "api", "rotate-secret", "--api", "1")
	if rotated["introspection_secret"] == nil || rotated["introspection_secret"] == created["introspection_secret"] {
		t.Fatalf("api rotate-secret printed %v", rotated)
	}
	var list struct{ APIs []map[string]any }
	c.ok(&list, "api", "list")
	if len(list.APIs) != 1 {
		t.Fatalf("api list printed %v", list)
	}
	for _, bad := range [][]string{
		{"api", "create", "--owner", "1", "--name", "Bad", "--identifier", "https://bad.example", "--scope", "no-description"},
		{"api", "create", "--owner", "1", "--name", "Bad", "--identifier", "http://bad.example"},
		{"api", "create", "--owner", "1", "--name", "Orders", "--identifier", "https://orders.example/api"},
		{"api", "set", "--api", "1", "--route", "nonsense"},
		{"api", "show", "--api", "99"},
	} {
		if _, err := c.run(bad...); err == nil {
			t.Errorf("latchkey %s succeeded", strings.Join(bad, " "))
		}
	}
	var deleted map[string]any
	c.ok(&deleted, "api", "delete", "--api", "1")
	if deleted["deleted"] != true {
		t.Fatalf("api delete printed %v", deleted)
	}
}

// latchkey registration-token: create prints {"token":…} only, list shows
// the tokens without them, revoke ends one (a second revoke is an error).
func TestRegistrationTokenCommands(t *testing.T) {
	c := newCLI(t)
	var created map[string]any
	c.ok(&created, "registration-token", "create", "--name", "partners", "--ttl", "24h", "--max-uses", "3")
	if len(created) != 1 || len(fmt.Sprint(created["token"])) < 40 {
		t.Fatalf("registration-token create printed %v", created)
	}
	var list struct{ Tokens []map[string]any }
	c.ok(&list, "registration-token", "list")
	if len(list.Tokens) != 1 || list.Tokens[0]["name"] != "partners" || list.Tokens[0]["max_uses"] != 3.0 || list.Tokens[0]["expires_at"] == 0.0 ||
		strings.Contains(fmt.Sprint(list), fmt.Sprint(created["token"])) {
		t.Fatalf("registration-token list printed %v", list)
	}
	c.ok(nil, "registration-token", "revoke", "--id", fmt.Sprint(list.Tokens[0]["id"]))
	if _, err := c.run("registration-token", "revoke", "--id", fmt.Sprint(list.Tokens[0]["id"])); err == nil {
		t.Fatal("revoking a revoked token succeeded")
	}
	if _, err := c.run("registration-token", "create"); err == nil || !strings.Contains(err.Error(), "name") {
		t.Fatalf("create without --name: %v", err)
	}
}
