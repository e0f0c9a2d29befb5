package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/html"

	"latchkey/internal/config"
	"latchkey/internal/dpop"
	"latchkey/internal/node"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Options configure a run.
type Options struct {
	// DB is the storage: "" for a temporary SQLite file, or a DSN. Its data
	// is added to, not replaced.
	DB string
	// Postgres, when set, runs every scenario a second time on this
	// PostgreSQL database (added to, not replaced).
	Postgres    string
	Duration    time.Duration // per scenario
	Concurrency int
	Tokens      int // distinct user tokens the API scenario rotates through
	// Tracing, when set, traces the server's requests and storage calls.
	Tracing trace.TracerProvider
	// Only, when set, names the scenarios to run (Scenarios lists them).
	Only []string
	// LiveTokens, when set, provisions this many live user tokens and
	// runs the "live" scenarios over them (see live.go).
	LiveTokens int
	// HeapProfile, when set, is the file a heap profile is written to
	// after the live run over every token.
	HeapProfile string
	// LiveClients, when set, runs the live scenarios' clients outside this
	// process, so that the memory, garbage collection and CPU profile
	// measured are the server's alone (the results say so). Nil runs them
	// in this process.
	LiveClients func(context.Context, LiveJob) (Result, error)
}

// Scenarios are the names Options.Only takes.
var Scenarios = append([]string{"bare", "api", "dpop", "dpop-nonce", "client-credentials", "api-tokens", "api-jwt", "api-introspect", "code", "refresh", "vkid-code", "vkid-refresh", "bots"},
	append(gatewayScenarios, "live")...)

func (o Options) runs(key string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, key) }

// Run measures a bare handler returning the API's JSON, then on each
// storage the API path, client credentials issuing and complete
// authorization-code flows.
func Run(ctx context.Context, o Options, log io.Writer) ([]Result, error) {
	dbs := []string{o.DB}
	if o.Postgres != "" {
		dbs = append(dbs, o.Postgres)
	}
	var results []Result
	for i, db := range dbs {
		o := o
		o.DB = db
		t, err := newTarget(ctx, o)
		if err != nil {
			return results, err
		}
		fmt.Fprintf(log, "bench: %s, %d workers, %s per scenario, server at %s\n", t.storage, o.Concurrency, o.Duration, t.base)
		if i == 0 && o.runs("bare") {
			results = append(results, t.bare(ctx, o))
		}
		for _, sc := range []struct {
			key string
			run func(context.Context, Options) Result
		}{
			{"api", t.api}, {"dpop", t.dpopAPI}, {"dpop-nonce", t.dpopNonceAPI}, {"client-credentials", t.clientCredentials},
			{"api-tokens", t.apiTokens(storage.TokenOpaque)}, {"api-jwt", t.apiTokens(storage.TokenJWT)}, {"api-introspect", t.apiIntrospect}, {"code", t.codeFlow},
			{"refresh", t.refresh}, {"vkid-code", t.vkidCodeFlow}, {"vkid-refresh", t.vkidRefresh}, {"bots", t.botEvents},
		} {
			if !o.runs(sc.key) {
				continue
			}
			b0, w0 := t.groupStats()
			r := sc.run(ctx, o)
			if b1, w1 := t.groupStats(); b1 > b0 {
				r.Note = strings.TrimPrefix(r.Note+fmt.Sprintf(", %.1f writes a commit", float64(w1-w0)/float64(b1-b0)), ", ")
			}
			r.Name = t.storage + "  " + r.Name
			results = append(results, r)
		}
		if slices.ContainsFunc(gatewayScenarios, o.runs) {
			for _, r := range t.gateway(ctx, o) {
				r.Name = t.storage + "  " + r.Name
				results = append(results, r)
			}
		}
		if o.LiveTokens > 0 && o.runs("live") {
			for _, r := range t.live(ctx, o, log) {
				r.Name = t.storage + "  " + r.Name
				results = append(results, r)
			}
		}
		t.close()
	}
	return results, nil
}

// target is a running server with seeded data.
type target struct {
	storage string
	base    string
	srv     *http.Server
	p       *platform.Platform
	store   storage.Storage
	app     platform.AppView
	user    storage.User
	tokens  []string
	login   string
	secret  string // the node's token secret: a load process apart makes its tokens again from it
	cleanup []func()
	// apis are an API with opaque tokens and one with JWTs.
	apis map[string]platform.APIView
}

const redirectURI = "https://load.example/cb"

func newTarget(ctx context.Context, o Options) (*target, error) {
	t := &target{}
	dsn := o.DB
	if dsn == "" {
		dir, err := os.MkdirTemp("", "latchkey-bench-")
		if err != nil {
			return nil, err
		}
		t.cleanup = append(t.cleanup, func() { os.RemoveAll(dir) })
		dsn = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	st, err := config.ParseStorage(dsn)
	if err != nil {
		t.close()
		return nil, err
	}
	t.storage = st.Backend

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.close()
		return nil, err
	}
	t.base = "http://" + ln.Addr().String()
	public, _ := url.Parse(t.base)
	t.secret = "load-tool-secret-" + rand32()
	keys, err := token.NewKeyring(t.secret)
	if err != nil {
		t.close()
		return nil, err
	}
	cfg := config.Defaults()
	cfg.Storage = st
	// The limiter runs on every call, but with limits no load here reaches:
	// the tool measures throughput, not refusals.
	cfg.RateUser, cfg.RateCommunity, cfg.RateService = 1e9, 1e9, 1e9
	// Access logs are formatted as in production and thrown away. On
	// PostgreSQL the node runs with its revocation bus, as deployed.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var n *node.Node
	as("server", func() { // what the node starts counts as the server's CPU
		n, err = node.Open(ctx, node.Config{Config: cfg, Keys: keys, Log: logger, PublicURL: public, Tracing: o.Tracing})
	})
	if err != nil {
		t.close()
		return nil, err
	}
	t.cleanup = append(t.cleanup, func() { n.Close() })
	t.p = n.Platform
	t.store = n.Storage()
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	ran := make(chan struct{})
	as("server", func() { go func() { n.Run(runCtx); close(ran) }() })
	t.cleanup = append(t.cleanup, func() { stopRun(); <-ran })
	for start := time.Now(); !t.p.Cache.Enabled(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.close()
			return nil, errors.New("bench: the node did not start following revocations")
		}
	}
	t.srv = &http.Server{Handler: n, ReadHeaderTimeout: 10 * time.Second}
	as("server", func() { go t.srv.Serve(ln) })
	t.cleanup = append(t.cleanup, func() { t.srv.Close() })

	if err := t.seed(ctx, o); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// rand32 is 32 random hex digits.
func rand32() string {
	var b [16]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (t *target) close() {
	for i := len(t.cleanup) - 1; i >= 0; i-- {
		t.cleanup[i]()
	}
}

func (t *target) seed(ctx context.Context, o Options) error {
	login := "bench-" + rand32()[:12]
	var err error
	t.user, err = t.p.Users.CreateUser(ctx, platform.NewUser{Login: login, Password: "bench-password", FirstName: "Bench"})
	if err != nil {
		return err
	}
	t.login = login
	t.app, err = t.p.Apps.CreateApp(ctx, platform.CLI, platform.NewApp{OwnerID: t.user.ID, Title: "Load", Type: storage.Web,
		RedirectURIs: []string{redirectURI}})
	if err != nil {
		return err
	}
	if t.app, err = t.p.Apps.SetClientCredentials(ctx, platform.CLI, t.app.ID, true); err != nil {
		return err
	}
	// The user has consented before: the flow goes straight to the code.
	if err := t.p.Consents.Grant(ctx, t.user.ID, t.app.ID, scope.Friends, nil, true); err != nil {
		return err
	}
	t.apis = map[string]platform.APIView{}
	for _, format := range []string{storage.TokenOpaque, storage.TokenJWT} {
		a, err := t.p.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: t.user.ID, Identifier: "https://" + format + "-" + login[len("bench-"):] + ".load.example",
			APISettings: platform.APISettings{Name: "Load " + format, TokenFormat: format, Scopes: []platform.ScopeSpec{{Name: "load:read", EN: "Read", RU: "Читать"}}}})
		if err != nil {
			return err
		}
		t.apis[format] = a
	}
	for range max(o.Tokens, 1) {
		raw, _, err := t.p.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: t.app.ID, UserID: t.user.ID,
			Scope: 1 << 16, Flow: storage.FlowImplicit}, 0)
		if err != nil {
			return err
		}
		t.tokens = append(t.tokens, raw)
	}
	return nil
}

func newClient() func() *http.Client {
	return func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{
			Jar:       jar,
			Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
			Timeout: 30 * time.Second,
		}
	}
}

var errBadAnswer = errors.New("unexpected answer")

// get fetches u and checks that the body starts with want.
func get(ctx context.Context, c *http.Client, u string, want []byte) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	return expect(c, req, want)
}

// expect sends req and checks that the answer is a 200 whose body starts
// with want.
func expect(c *http.Client, req *http.Request, want []byte) error {
	_, err := expectHeader(c, req, want)
	return err
}

// expectHeader is expect that also returns the answer's header.
func expectHeader(c *http.Client, req *http.Request, want []byte) (http.Header, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, want) {
		return nil, fmt.Errorf("%w: %d %.100s", errBadAnswer, resp.StatusCode, body)
	}
	return resp.Header, nil
}

// api: /method/account.getAppPermissions with valid user tokens.
func (t *target) api(ctx context.Context, o Options) Result {
	urls := make([]string, len(t.tokens))
	for i, tok := range t.tokens {
		urls[i] = t.base + "/method/account.getAppPermissions?v=5.199&access_token=" + tok
	}
	want := []byte(`{"response":65536}`)
	const name = "api: account.getAppPermissions"
	if o.LiveClients != nil {
		return apart(runJob(ctx, o, LiveJob{Name: name, URLs: urls, Want: string(want), Concurrency: o.Concurrency, Duration: o.Duration}))
	}
	calls := make([]int, o.Concurrency) // per worker: no shared counter
	return drive(ctx, name, o.Concurrency, o.Duration, newClient(), func(ctx context.Context, w int, c *http.Client) error {
		calls[w]++
		return get(ctx, c, urls[(w*7919+calls[w])%len(urls)], want)
	})
}

const bareName = "bare net/http handler"

// apart notes that r's clients ran in a process of their own.
func apart(r Result) Result {
	if r.Note == "" {
		r.Note = "clients apart"
	}
	return r
}

// bare: a plain net/http handler returning the same JSON with no checks,
// on its own loopback listener: the ceiling the API path is compared with.
func (t *target) bare(ctx context.Context, o Options) Result {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{Name: bareName, Errors: 1}
	}
	body := []byte(`{"response":65536}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body)
	})}
	as("server", func() { go srv.Serve(ln) })
	defer srv.Close()
	u := "http://" + ln.Addr().String() + "/method/account.getAppPermissions?v=5.199&access_token=" + t.tokens[0]
	if o.LiveClients != nil {
		return apart(runJob(ctx, o, LiveJob{Name: bareName, URLs: []string{u}, Want: string(body), Concurrency: o.Concurrency, Duration: o.Duration}))
	}
	return drive(ctx, bareName, o.Concurrency, o.Duration, newClient(), func(ctx context.Context, _ int, c *http.Client) error {
		return get(ctx, c, u, body)
	})
}

// clientCredentials: POST /access_token grant_type=client_credentials, the
// secret in the form; each answer is a new service token.
func (t *target) clientCredentials(ctx context.Context, o Options) Result {
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {fmt.Sprint(t.app.ID)}, "client_secret": {t.app.ClientSecret}}.Encode()
	want := []byte(`{"access_token":"lks1`)
	const name = "client credentials tokens"
	if o.LiveClients != nil {
		return apart(runJob(ctx, o, LiveJob{Name: name, URLs: []string{t.base + "/access_token"}, Form: body, Want: string(want), Concurrency: o.Concurrency, Duration: o.Duration}))
	}
	return drive(ctx, name, o.Concurrency, o.Duration, newClient(), func(ctx context.Context, _ int, c *http.Client) error {
		return post(ctx, c, t.base+"/access_token", body, want)
	})
}

// apiTokens: client credentials tokens for an API (RFC 8707), in format.
func (t *target) apiTokens(format string) func(context.Context, Options) Result {
	return func(ctx context.Context, o Options) Result {
		body := url.Values{"grant_type": {"client_credentials"}, "client_id": {fmt.Sprint(t.app.ID)}, "client_secret": {t.app.ClientSecret},
			"resource": {t.apis[format].Identifier}, "scope": {"load:read"}}.Encode()
		return drive(ctx, "client credentials tokens for an API ("+format+")", o.Concurrency, o.Duration, newClient(), func(ctx context.Context, _ int, c *http.Client) error {
			return post(ctx, c, t.base+"/access_token", body, []byte(`{"access_token":"`))
		})
	}
}

// apiIntrospect: an API introspecting a live opaque token for it.
func (t *target) apiIntrospect(ctx context.Context, o Options) Result {
	api := t.apis[storage.TokenOpaque]
	tok, err := t.p.Issuer.ClientCredentials(ctx, t.app.App, t.app.Secret.Hash, "", &api.API, 1, "")
	if err != nil {
		return Result{Name: "introspection by an API", Errors: 1}
	}
	body := url.Values{"token": {tok.Access}, "client_id": {api.IntrospectionClientID}, "client_secret": {api.IntrospectionSecret}}.Encode()
	return drive(ctx, "introspection by an API", o.Concurrency, o.Duration, newClient(), func(ctx context.Context, _ int, c *http.Client) error {
		return post(ctx, c, t.base+"/oauth/introspect", body, []byte(`{"active":true`))
	})
}

func post(ctx context.Context, c *http.Client, u, body string, want []byte) error {
	req, _ := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return expect(c, req, want)
}

// csrfField finds the value of the form field named csrf in an HTML page,
// read with the HTML parser the tests use.
func csrfField(page io.Reader) (string, bool) {
	doc, err := html.Parse(page)
	if err != nil {
		return "", false
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "input" {
			continue
		}
		var name, value string
		for _, a := range n.Attr {
			switch a.Key {
			case "name":
				name = a.Val
			case "value":
				value = a.Val
			}
		}
		if name == "csrf" && value != "" {
			return value, true
		}
	}
	return "", false
}

// logIn signs the client's cookie jar in as the bench user, as a browser
// would: the login page for the CSRF cookie and token, then the form.
func (t *target) logIn(ctx context.Context, c *http.Client) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", t.base+"/login", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	csrf, ok := csrfField(resp.Body)
	resp.Body.Close()
	if !ok {
		return fmt.Errorf("%w: no CSRF token on the login page", errBadAnswer)
	}
	form := url.Values{"login": {t.login}, "password": {"bench-password"}, "csrf": {csrf}, "next": {"/"}}
	req, _ = http.NewRequestWithContext(ctx, "POST", t.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("%w: login answered %d", errBadAnswer, resp.StatusCode)
	}
	return nil
}

// codeFlow: a complete authorization-code flow for a signed-in user who has
// consented before: GET /authorize → 302 with a code → POST /access_token →
// a user token.
func (t *target) codeFlow(ctx context.Context, o Options) Result {
	id := fmt.Sprint(t.app.ID)
	auth := url.Values{"client_id": {id}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"friends"}, "state": {"load"}}
	return t.signIns(ctx, o, "authorization code flows", auth, func(ctx context.Context, c *http.Client, back url.Values) error {
		body := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "client_secret": {t.app.ClientSecret},
			"redirect_uri": {redirectURI}, "code": {back.Get("code")}}.Encode()
		return post(ctx, c, t.base+"/access_token", body, []byte(`{"access_token":"lku1`))
	})
}

// vkidCodeFlow: the VK ID dialect's sign-in for a signed-in user who has
// consented: GET /authorize with PKCE → 302 with code and device_id → POST
// /oauth2/auth (parameters in the query, the code in the body, as VK ID's
// web SDK sends them) → tokens.
func (t *target) vkidCodeFlow(ctx context.Context, o Options) Result {
	const verifier = "bench-verifier-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	id := fmt.Sprint(t.app.ID)
	auth := url.Values{"client_id": {id}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"friends"}, "state": {"load"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"s256"}}
	return t.signIns(ctx, o, "VK ID code flows (/authorize + /oauth2/auth)", auth, func(ctx context.Context, c *http.Client, back url.Values) error {
		q := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "redirect_uri": {redirectURI}, "code_verifier": {verifier},
			"device_id": {back.Get("device_id")}, "state": {"load"}}.Encode()
		return post(ctx, c, t.base+"/oauth2/auth?"+q, url.Values{"code": {back.Get("code")}}.Encode(), []byte(`{"access_token":"lku1`))
	})
}

// signIns drives code flows: each operation is GET /authorize?auth, which
// answers at once with a code (the user consented before), then exchange
// of what the redirect carried. Each worker logs in once, before the clock
// starts, one after the other: logins from one address at once would meet
// its login throttle, which counts every attempt while it is checked.
func (t *target) signIns(ctx context.Context, o Options, name string, auth url.Values, exchange func(context.Context, *http.Client, url.Values) error) Result {
	authURL := t.base + "/authorize?" + auth.Encode()
	ready := make(chan *http.Client, o.Concurrency)
	for range o.Concurrency {
		c := newClient()()
		t.logIn(ctx, c) // a failed login shows as every operation of the worker failing
		ready <- c
	}
	return drive(ctx, name, o.Concurrency, o.Duration, func() *http.Client { return <-ready }, func(ctx context.Context, _ int, c *http.Client) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", authURL, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
			return fmt.Errorf("%w: /authorize answered %d %q", errBadAnswer, resp.StatusCode, resp.Header.Get("Location"))
		}
		return exchange(ctx, c, loc.Query())
	})
}

// refresh: POST /access_token grant_type=refresh_token.
func (t *target) refresh(ctx context.Context, o Options) Result {
	id := fmt.Sprint(t.app.ID)
	return t.rotations(ctx, o, "refresh grants", "", func(ctx context.Context, refresh string) *http.Request {
		body := url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "client_secret": {t.app.ClientSecret}, "refresh_token": {refresh}}.Encode()
		req, _ := http.NewRequestWithContext(ctx, "POST", t.base+"/access_token", strings.NewReader(body))
		return req
	})
}

// vkidRefresh: POST /oauth2/auth grant_type=refresh_token, on the device
// the grant is bound to.
func (t *target) vkidRefresh(ctx context.Context, o Options) Result {
	q := url.Values{"grant_type": {"refresh_token"}, "client_id": {fmt.Sprint(t.app.ID)}, "device_id": {"bench-device"}, "state": {"load"}}.Encode()
	return t.rotations(ctx, o, "VK ID refreshes (/oauth2/auth)", "bench-device", func(ctx context.Context, refresh string) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, "POST", t.base+"/oauth2/auth?"+q, strings.NewReader(url.Values{"refresh_token": {refresh}}.Encode()))
		return req
	})
}

// rotations drives refresh scenarios: each worker follows its own grant
// (bound to device, "" for none), every answer's refresh token is the next
// request's (rotation), so each call spends one and mints one.
func (t *target) rotations(ctx context.Context, o Options, name, device string, request func(context.Context, string) *http.Request) Result {
	current := make([]string, o.Concurrency)
	for w := range current {
		var family token.Hash
		copy(family[:], rand32())
		raw, err := t.p.Refreshes.Issue(ctx, platform.Grant{Family: family, AppID: t.app.ID, UserID: t.user.ID, Scope: scope.Friends, DeviceID: device})
		if err != nil {
			return Result{Name: name, Errors: 1}
		}
		current[w] = raw
	}
	return drive(ctx, name, o.Concurrency, o.Duration, newClient(), func(ctx context.Context, w int, c *http.Client) error {
		req := request(ctx, current[w])
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.RefreshToken == "" {
			return fmt.Errorf("%w: refresh answered %d", errBadAnswer, resp.StatusCode)
		}
		current[w] = out.RefreshToken
		return nil
	})
}

// dpopAPI: the API path with DPoP-bound tokens (RFC 9449): each call
// carries a fresh proof, signed by the worker (ES256), which the server
// checks and records (its jti), next to the bearer API scenario.
func (t *target) dpopAPI(ctx context.Context, o Options) Result { return t.dpopCalls(ctx, o, false) }

// dpopNonceAPI is dpopAPI with each proof carrying the nonce of the
// answer before it (RFC 9449 §9), which the node remembers in memory.
func (t *target) dpopNonceAPI(ctx context.Context, o Options) Result {
	return t.dpopCalls(ctx, o, true)
}

func (t *target) dpopCalls(ctx context.Context, o Options, nonced bool) Result {
	name := "api: DPoP-bound account.getAppPermissions"
	if nonced {
		name += ", proofs with the node's nonce"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return Result{Name: name, Errors: 1}
	}
	signer := dpop.NewSigner(key, jose.ES256)
	tokens := make([]string, max(o.Tokens, 1))
	for i := range tokens {
		raw, _, err := t.p.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: t.app.ID, UserID: t.user.ID,
			Scope: 1 << 16, Flow: storage.FlowCode, JKT: signer.JKT()}, 0)
		if err != nil {
			return Result{Name: name, Errors: 1}
		}
		tokens[i] = raw
	}
	target := t.base + "/method/account.getAppPermissions"
	want := []byte(`{"response":65536}`)
	calls := make([]int, o.Concurrency)
	nonces := make([]string, o.Concurrency) // per worker: the last answer's
	// jtis unique across runs on one database: a prefix of the run's, then
	// the worker and its count.
	run := rand32()[:12]
	return drive(ctx, name, o.Concurrency, o.Duration, newClient(), func(ctx context.Context, w int, c *http.Client) error {
		calls[w]++
		tok := tokens[(w*7919+calls[w])%len(tokens)]
		proof, err := signer.ProofWithNonce("GET", target, tok, run+"-"+strconv.Itoa(w)+"-"+strconv.Itoa(calls[w]), nonces[w], time.Now())
		if err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", target+"?v=5.199", nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", proof)
		h, err := expectHeader(c, req, want)
		if nonced && err == nil {
			nonces[w] = h.Get("DPoP-Nonce")
		}
		return err
	})
}

// groupStats is how many shared commits the storage made and how many
// writes they held, on a backend that groups its commits (SQLite); 0, 0
// otherwise.
func (t *target) groupStats() (int64, int64) {
	if g, ok := t.store.(interface{ GroupStats() (int64, int64) }); ok {
		return g.GroupStats()
	}
	return 0, 0
}
