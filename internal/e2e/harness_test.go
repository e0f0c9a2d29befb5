package e2e

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/html"

	"latchkey/internal/config"
	"latchkey/internal/node"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
	"latchkey/internal/token"
)

// clock is the injected time: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one running server with its storage.
type env struct {
	t   testing.TB
	URL string
	// Store is the test's own connection to the server's database, to
	// look at what was stored.
	Store storage.Storage
	P     *platform.Platform
	Clock *clock
	DB    string // SQLite file, when on SQLite
	DSN   string // PostgreSQL database, when on PostgreSQL
	Node  *node.Node
	// Stop ends the server's background work and its listener, as a
	// shutdown does (its storage stays open for the test).
	Stop func()
}

type option func(*config.Config)

func newEnv(t testing.TB, opts ...option) *env { return startEnv(t, "", nil, opts...) }

// newNode runs a server on the PostgreSQL database dsn, as one node of
// several: with the revocation bus, its background work running, and the
// given clock (nodes of one test share it).
func newNode(t testing.TB, dsn string, c *clock) *env { return startEnv(t, dsn, c) }

// onBothBackends runs body against a server on a SQLite file and against
// one on PostgreSQL (as a node, with its revocation bus).
func onBothBackends(t *testing.T, body func(t *testing.T, e *env), opts ...option) {
	t.Run("sqlite", func(t *testing.T) { body(t, newEnv(t, opts...)) })
	t.Run("postgres", func(t *testing.T) { body(t, startEnv(t, testenv.PostgresDSN(t), nil, opts...)) })
}

// fastAPI lifts the per-token rate limits, for tests that call a method
// many times.
func fastAPI(c *config.Config) { c.RateUser, c.RateCommunity, c.RateService = 1e6, 1e6, 1e6 }

func startEnv(t testing.TB, dsn string, c *clock, opts ...option) *env {
	t.Helper()
	return start(t, startOptions{dsn: dsn, clock: c}, opts...)
}

// newTLSEnv serves HTTPS with httptest's certificate, for clients that
// speak only HTTPS (VK ID's web SDK). Its URL is https://127.0.0.1:port.
func newTLSEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	return start(t, startOptions{tls: true}, opts...)
}

// startOptions are how a test server differs from the plain one.
type startOptions struct {
	dsn   string // PostgreSQL; "" for a SQLite file
	clock *clock
	tls   bool
	// tracing traces requests and storage calls.
	tracing trace.TracerProvider
	// outboundCAs are what the server's outbound HTTPS trusts (nil: the
	// system's).
	outboundCAs *x509.CertPool
	// log, when set, receives the server's log lines (JSON).
	log io.Writer
	// sqlite is the SQLite file to serve ("" for a new one): a node
	// started on another's file is that server restarted.
	sqlite string
	// localhost names the server http://localhost:PORT rather than by its
	// address: passkeys need a host name.
	localhost bool
	// wrap, when set, stands between the server and its clients (a test
	// that plays a man in the middle).
	wrap func(http.Handler) http.Handler
}

func start(t testing.TB, so startOptions, opts ...option) *env {
	t.Helper()
	dsn, c, useTLS := so.dsn, so.clock, so.tls
	ctx := context.Background()
	if c == nil {
		c = &clock{t: time.Now().UTC().Truncate(time.Second)}
	}
	e := &env{t: t, Clock: c}
	cfg := config.Defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if dsn != "" {
		cfg.Storage = config.Storage{Backend: config.Postgres, URL: dsn}
		e.DSN = dsn
	} else {
		e.DB = so.sqlite
		if e.DB == "" {
			e.DB = filepath.Join(t.TempDir(), "latchkey.db")
		}
		cfg.Storage = config.Storage{Backend: config.SQLite, Path: e.DB}
	}
	keys, err := token.NewKeyring("e2e-test-secret-0123456789abcdefghijklmnop")
	if err != nil {
		t.Fatal(err)
	}
	// The URL is known only once the listener exists; the handler is set
	// after. A request before that (a stray client of an earlier test on a
	// reused port) is told to come back.
	var h atomic.Pointer[node.Node]
	var serve http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := h.Load(); n != nil {
			n.ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})
	if so.wrap != nil {
		serve = so.wrap(serve)
	}
	ts := httptest.NewUnstartedServer(serve)
	if useTLS {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	e.URL = ts.URL
	if so.localhost {
		e.URL = strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)
	}
	public, _ := url.Parse(e.URL)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if so.log != nil {
		log = slog.New(slog.NewJSONHandler(so.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := node.Open(ctx, node.Config{Config: cfg, Keys: keys, Log: log, Now: e.Clock.Now, PublicURL: public, Tracing: so.tracing, OutboundCAs: so.outboundCAs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	h.Store(n)
	e.P = n.Platform
	e.Node = n
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(runCtx); close(done) }()
	var once sync.Once
	e.Stop = func() { once.Do(func() { stop(); <-done; ts.Close() }) }
	t.Cleanup(e.Stop)
	for start := time.Now(); !n.Platform.Cache.Enabled(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the node did not start following revocations")
		}
	}
	// The tests look at the database as an outsider would, through a
	// connection of their own; the server reaches it only through its
	// platform.
	if e.Store, err = node.OpenStorage(ctx, cfg.Storage); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Store.Close() })
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// user creates a user with password "password-"+login.
func (e *env) user(login string, email string) storage.User {
	e.t.Helper()
	u, err := e.P.Users.CreateUser(context.Background(), platform.NewUser{Login: login, Password: "password-" + login, FirstName: strings.ToUpper(login[:1]) + login[1:], LastName: "Tester", Email: email})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) app(owner int64, t storage.AppType, redirects ...string) platform.AppView {
	e.t.Helper()
	a, err := e.P.Apps.CreateApp(context.Background(), platform.CLI, platform.NewApp{OwnerID: owner, Title: "Test " + string(t) + " app", Type: t, RedirectURIs: redirects})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) blank() string { return e.URL + "/blank.html" }

// ---- the form-filling browser

// browser is a cookie-jar HTTP client that reads HTML forms and submits them
// by field name, as a person would without JavaScript. It follows redirects
// within the server and stops at the first redirect that leaves it (the
// app's redirect URI), returning that URL.
type browser struct {
	t      testing.TB
	e      *env
	client *http.Client
	// last page seen
	page    string
	status  int
	pageURL string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: e.t, e: e}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

// do sends a request and follows redirects on the server; it returns the
// first URL outside the server, or "" when it ended on a page.
func (b *browser) do(req *http.Request) string {
	b.t.Helper()
	req.Header.Set("Accept", "text/html")
	for range 10 {
		resp, err := b.client.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			next, err := req.URL.Parse(loc)
			if err != nil {
				b.t.Fatalf("bad Location %q", loc)
			}
			if !strings.HasPrefix(next.String(), b.e.URL+"/") || strings.HasPrefix(next.String(), b.e.blank()) {
				return next.String()
			}
			req, _ = http.NewRequest("GET", next.String(), nil)
			req.Header.Set("Accept", "text/html")
			continue
		}
		b.page, b.status, b.pageURL = string(body), resp.StatusCode, req.URL.String()
		return ""
	}
	b.t.Fatal("too many redirects")
	return ""
}

func (b *browser) get(u string) string {
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

// form is an HTML form as parsed from the page.
type form struct {
	action string
	fields url.Values
	// buttons: name → values of submit buttons
	buttons map[string][]string
}

// forms parses the forms of the last page.
func (b *browser) forms() []form {
	b.t.Helper()
	doc, err := html.Parse(strings.NewReader(b.page))
	if err != nil {
		b.t.Fatal(err)
	}
	var out []form
	var cur *form
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := func(k string) string {
				for _, a := range n.Attr {
					if a.Key == k {
						return a.Val
					}
				}
				return ""
			}
			switch n.Data {
			case "form":
				out = append(out, form{action: attr("action"), fields: url.Values{}, buttons: map[string][]string{}})
				cur = &out[len(out)-1]
			case "input":
				if cur != nil && attr("name") != "" {
					cur.fields.Set(attr("name"), attr("value"))
				}
			case "button":
				if cur != nil && attr("name") != "" {
					cur.buttons[attr("name")] = append(cur.buttons[attr("name")], attr("value"))
				}
			case "textarea":
				if cur != nil && attr("name") != "" {
					text := ""
					if n.FirstChild != nil {
						text = n.FirstChild.Data
					}
					cur.fields.Set(attr("name"), text)
				}
			case "select":
				if cur != nil && attr("name") != "" {
					cur.fields.Set(attr("name"), "")
					for o := n.FirstChild; o != nil; o = o.NextSibling {
						for _, a := range o.Attr {
							if a.Key == "selected" {
								for _, v := range o.Attr {
									if v.Key == "value" {
										cur.fields.Set(attr("name"), v.Val)
									}
								}
							}
						}
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type == html.ElementNode && n.Data == "form" {
			cur = nil
		}
	}
	walk(doc)
	return out
}

// formWith returns the page's form that has the named field or button.
func (b *browser) formWith(name string) form {
	b.t.Helper()
	for _, f := range b.forms() {
		if _, ok := f.fields[name]; ok {
			return f
		}
		if _, ok := f.buttons[name]; ok {
			return f
		}
	}
	b.t.Fatalf("no form with %q on page %s (status %d):\n%s", name, b.pageURL, b.status, b.page)
	return form{}
}

// submit fills the form's fields and posts it, pressing button name=value
// when given.
func (b *browser) submit(f form, fill map[string]string, button ...string) string {
	b.t.Helper()
	vals := url.Values{}
	for k, v := range f.fields {
		vals[k] = append([]string(nil), v...)
	}
	for k, v := range fill {
		vals.Set(k, v)
	}
	if len(button) == 2 {
		ok := false
		for _, v := range f.buttons[button[0]] {
			ok = ok || v == button[1]
		}
		if !ok {
			b.t.Fatalf("form has no button %s=%s (buttons %v)", button[0], button[1], f.buttons)
		}
		vals.Set(button[0], button[1])
	}
	action, err := url.Parse(b.pageURL)
	if err != nil {
		b.t.Fatal(err)
	}
	target, _ := action.Parse(f.action)
	req, _ := http.NewRequest("POST", target.String(), strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login fills the login form on the current page.
func (b *browser) login(login, password string) string {
	b.t.Helper()
	return b.submit(b.formWith("password"), map[string]string{"login": login, "password": password})
}

// approve presses Allow on the current consent page.
func (b *browser) approve() string {
	b.t.Helper()
	return b.submit(b.formWith("decision"), nil, "decision", "allow")
}

func (b *browser) deny() string {
	b.t.Helper()
	return b.submit(b.formWith("decision"), nil, "decision", "deny")
}

// authorize builds an /authorize URL.
func (e *env) authorize(params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	return e.URL + "/authorize?" + q.Encode()
}

// fragment returns the parameters in a redirect URL's fragment.
func fragment(t testing.TB, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := url.ParseQuery(p.Fragment)
	if err != nil {
		t.Fatalf("fragment of %s: %v", u, err)
	}
	return v
}

func query(t testing.TB, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}

// postForm posts to an endpoint and decodes the JSON answer.
func (e *env) postForm(path string, vals url.Values, basicID, basicSecret string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	return e.doJSON(req)
}

func (e *env) getJSON(u string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return e.doJSON(req)
}

func (e *env) doJSON(req *http.Request) (int, map[string]any) {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			e.t.Fatalf("%s %s: %d %q is not JSON", req.Method, req.URL.Path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, m
}

// introspect asks whether tok is active, as app.
func (e *env) introspect(app platform.AppView, tok string) map[string]any {
	e.t.Helper()
	status, m := e.postForm("/oauth/introspect", url.Values{"token": {tok}}, fmt.Sprint(app.ID), app.ClientSecret)
	if status != 200 {
		e.t.Fatalf("introspect: %d %v", status, m)
	}
	return m
}

func active(m map[string]any) bool { return m["active"] == true }

// readStored opens the test's own read-only connection to the server's
// database, to count what was stored without going through the server.
func (e *env) readStored() *sql.DB {
	e.t.Helper()
	driver, dsn := "pgx", e.DSN
	if e.DB != "" {
		driver, dsn = "sqlite", "file:"+e.DB+"?mode=ro"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}
