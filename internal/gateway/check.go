package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"latchkey/internal/httpx"
	"latchkey/internal/metrics"
)

// Check serves GET /oauth/check, forward authentication: the original
// request's URL is rebuilt from X-Forwarded-Proto (https when absent),
// X-Forwarded-Host and X-Original-URI or X-Forwarded-Uri, its method from
// X-Original-Method or X-Forwarded-Method; the API is the one whose
// identifier is the URL's longest prefix ending at a path segment. The
// answer is 200 with the X-Latchkey-* headers, or the gateway's 401, 403
// or 429.
func (g *Gateway) Check(w http.ResponseWriter, r *http.Request) {
	g.init()
	h := r.Header
	proto := h.Get("X-Forwarded-Proto")
	if proto != "http" {
		proto = "https"
	}
	host := h.Get("X-Forwarded-Host")
	uri := h.Get("X-Original-URI")
	if uri == "" {
		uri = h.Get("X-Forwarded-Uri")
	}
	method := h.Get("X-Original-Method")
	if method == "" {
		method = h.Get("X-Forwarded-Method")
	}
	if method == "" {
		method = http.MethodGet
	}
	original, err := url.Parse(proto + "://" + host + uri)
	if host == "" || uri == "" || !strings.HasPrefix(uri, "/") || err != nil || original.Host != host {
		refuse(w, &refusal{http.StatusUnauthorized, "", "the original request is unknown: send X-Forwarded-Host and X-Original-URI (or X-Forwarded-Uri)"})
		return
	}
	api, err := g.APIs.ForURL(r.Context(), original)
	if err != nil {
		refuse(w, &refusal{http.StatusServiceUnavailable, "", "the token cannot be checked right now; try again"})
		return
	}
	if api == nil {
		refuse(w, &refusal{http.StatusUnauthorized, "", "no API is served at " + original.Scheme + "://" + original.Host + original.Path})
		return
	}
	target := func() string {
		return (&url.URL{Scheme: original.Scheme, Host: original.Host, Path: original.Path}).String()
	}
	rel := "/" + strings.TrimPrefix(strings.TrimPrefix(original.Path, mustPath(api.Identifier)), "/")
	caller, rf := g.check(w, r, api, target, method, rel)
	if rf != nil {
		g.Metrics.Gateway(api.Identifier, metrics.GatewayCheck, rf.status)
		refuse(w, rf)
		return
	}
	g.Metrics.Gateway(api.Identifier, metrics.GatewayCheck, http.StatusOK)
	out := w.Header()
	caller.headers(out)
	httpx.WriteJSON(w, http.StatusOK, checked{caller.Subject, caller.ClientID, caller.Scope})
}

// checked is the body of /oauth/check's 200, for a reader of the answer
// rather than of its headers.
type checked struct {
	Subject  string `json:"subject"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}
