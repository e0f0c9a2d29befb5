package bench

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"latchkey/internal/platform"
)

// The gateway's scenarios: an upstream answering a small JSON body, called
// directly, through a bare httputil.ReverseProxy on its own listener, and
// through Latchkey's gateway with a token check; and forward
// authentication's /oauth/check, and a bare handler given the same request
// and answering as it does, without checking anything. The upstream's CPU is
// not the server's (see cpu.go): the proxies' figures are their own.
var gatewayScenarios = []string{"upstream", "proxy-bare", "gateway", "check-bare", "check"}

// gateway runs the scenarios of gatewayScenarios that o asks for.
func (t *target) gateway(ctx context.Context, o Options) []Result {
	body := []byte(`{"items":[1,2,3]}`)
	up, stopUp, err := listenAs("upstream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	if err != nil {
		return []Result{{Name: "gateway: upstream", Errors: 1, Note: err.Error()}}
	}
	defer stopUp()
	upURL, _ := url.Parse(up)
	// The bare proxy keeps as many idle connections to the upstream as
	// the gateway does: both are measured reusing them.
	bare, stopBare, err := listen(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.SetXForwarded() },
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
		ErrorLog:  log.New(io.Discard, "", 0), // the clients' last requests, cut at the end of a run
	})
	if err != nil {
		return []Result{{Name: "gateway: bare proxy", Errors: 1, Note: err.Error()}}
	}
	defer stopBare()
	api, err := t.p.APIs.CreateAPI(ctx, platform.CLI, platform.NewAPI{OwnerID: t.user.ID, APISettings: platform.APISettings{
		Name: "Load gateway", Slug: "load" + rand32()[:8], Upstream: up, Rate: 1_000_000,
		Scopes: []platform.ScopeSpec{{Name: "load:read", EN: "Read", RU: "Читать"}}}})
	if err != nil {
		return []Result{{Name: "gateway", Errors: 1, Note: err.Error()}}
	}
	// A token per worker, so that no one token's rate is what is measured.
	tokens := make([]string, o.Concurrency)
	for i := range tokens {
		tok, err := t.p.Issuer.ClientCredentials(ctx, t.app.App, t.app.Secret.Hash, "", &api.API, 1, "")
		if err != nil {
			return []Result{{Name: "gateway", Errors: 1, Note: err.Error()}}
		}
		tokens[i] = "Bearer " + tok.Access
	}
	bearer := func(w int, h http.Header) { h["Authorization"] = []string{tokens[w]} }
	publicHost := t.base[len("http://"):]
	checked := []byte(`{"subject":"","client_id":"` + fmt.Sprint(t.app.ID) + `","scope":"load:read"}`)
	bareCheck, stopBareCheck, err := listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Latchkey-Subject"] = []string{""}
		h["X-Latchkey-Client-Id"] = []string{fmt.Sprint(t.app.ID)}
		h["X-Latchkey-Scope"] = []string{"load:read"}
		h["X-Latchkey-Token-Id"] = []string{"0123456789abcdef0123456789abcdef"}
		h["Content-Type"] = []string{"application/json"}
		h["Cache-Control"] = []string{"no-store"}
		h["X-Request-Id"] = []string{"0123456789abcdef"}
		w.Write(checked)
	}))
	if err != nil {
		return []Result{{Name: "forward authentication: bare", Errors: 1, Note: err.Error()}}
	}
	defer stopBareCheck()
	forwarded := func(w int, h http.Header) {
		bearer(w, h)
		h["X-Forwarded-Proto"] = []string{"http"}
		h["X-Forwarded-Host"] = []string{publicHost}
		h["X-Original-Uri"] = []string{"/api/" + api.Slug + "/items"}
	}
	call := func(u string, header func(w int, h http.Header)) op {
		return func(ctx context.Context, w int, c *http.Client) error {
			req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
			if header != nil {
				header(w, req.Header)
			}
			return expect(c, req, body[:1])
		}
	}
	scenarios := []struct {
		key, name string
		do        op
	}{
		{"upstream", "upstream called directly", call(up+"/items", nil)},
		{"proxy-bare", "bare httputil.ReverseProxy to the upstream", call(bare+"/items", nil)},
		{"gateway", "gateway: token checked, proxied to the upstream", call(api.Identifier+"/items", bearer)},
		{"check-bare", "bare handler answering as /oauth/check", call(bareCheck+"/oauth/check", forwarded)},
		{"check", "forward authentication: /oauth/check", call(t.base+"/oauth/check", forwarded)},
	}
	var results []Result
	for _, sc := range scenarios {
		if !o.runs(sc.key) {
			continue
		}
		results = append(results, drive(ctx, sc.name, o.Concurrency, o.Duration, newClient(), sc.do))
	}
	return results
}

// listen serves h as the server's, on a loopback port of its own: its URL,
// and how to stop it.
func listen(h http.Handler) (string, func(), error) { return listenAs("server", h) }

// listenAs is listen with the CPU of h counted as side's (see cpu.go).
func listenAs(side string, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	as(side, func() { go srv.Serve(ln) })
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}
