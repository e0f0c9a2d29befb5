// Package api serves /method/{name}: the VK API envelope, and the pipeline
// every method call goes through once: token check (from the cache, MAC
// first), token kind, scope, rate limit and parameter validation. Methods
// are small values registered with what they need; see internal/methods.
package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"latchkey/internal/httpx"
	"latchkey/internal/metrics"
	"latchkey/internal/platform"
	"latchkey/internal/ratelimit"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Kinds is the set of token kinds a method accepts.
type Kinds uint8

// Accept is the set of the given kinds.
func Accept(kinds ...token.Kind) Kinds {
	var s Kinds
	for _, k := range kinds {
		s |= kindBit(k)
	}
	return s
}

// Has reports whether k is in the set.
func (s Kinds) Has(k token.Kind) bool { b := kindBit(k); return b != 0 && s&b != 0 }

func kindBit(k token.Kind) Kinds {
	switch k {
	case token.User:
		return 1
	case token.Community:
		return 2
	case token.Service:
		return 4
	}
	return 0
}

// RateClass picks the per-token limit of a method.
type RateClass int

const (
	// RateToken: the token kind's limit (user, community, service).
	RateToken RateClass = iota
	// RateSecure: secure.* methods, limited by the app's user count.
	RateSecure
)

// ParamType is how a parameter is validated.
type ParamType int

const (
	Int     ParamType = iota // a decimal integer
	IntList                  // comma-separated integers
	String                   // text
)

// Param declares one parameter of a method.
type Param struct {
	Name     string
	Type     ParamType
	Required bool
	// Max bounds an Int's value, an IntList's length or a String's runes
	// (0: no bound). Min bounds an Int's value.
	Max, Min int64
}

// Method is one API method and what calling it takes.
type Method struct {
	Name  string
	Kinds Kinds
	// Open methods work with any token or none.
	Open bool
	// UserScope, CommunityScope: the scope a user or community token needs.
	UserScope      scope.Mask
	CommunityScope scope.Mask
	Rate           RateClass
	Params         []Param
	Handle         func(c *Call) (any, error)
}

// Call is one validated method call.
type Call struct {
	Ctx context.Context
	// Token is the caller's token; HasToken is false for an open method
	// called without one.
	Token    storage.Token
	HasToken bool
	Version  string
	IP       string
	Now      time.Time
	ints     map[string]int64
	lists    map[string][]int64
	strs     map[string]string
	params   params // the request's, kept with the Call for the next
}

// Int returns an Int parameter and whether it was given.
func (c *Call) Int(name string) (int64, bool) { v, ok := c.ints[name]; return v, ok }

// IntList returns an IntList parameter (nil when absent).
func (c *Call) IntList(name string) []int64 { return c.lists[name] }

// Str returns a String parameter ("" when absent).
func (c *Call) Str(name string) string { return c.strs[name] }

// Limits are the per-token rates, requests per second.
type Limits struct {
	User, Community, Service float64
}

// Platform is what the dispatcher asks of the domain layer.
type Platform interface {
	// CheckTokenAt checks a token (platform.Refused classifies its errors).
	CheckTokenAt(ctx context.Context, raw string, now time.Time) (storage.Token, error)
	// TokenUsed notes a use, for "last used" on a community's page.
	TokenUsed(h token.Hash, now time.Time)
	AppUserCount(ctx context.Context, appID int64) (int64, error)
	// CheckBinding checks a DPoP-bound token's presentation (RFC 9449).
	CheckBinding(ctx context.Context, t storage.Token, dpopScheme bool, proof, method, target, raw string) error
	// DPoPNonce is the nonce for a DPoP client's next proofs.
	DPoPNonce() string
	// Nodes is how many nodes share the limits (platform.Heartbeat): each
	// enforces its share.
	Nodes() int
}

// Dispatcher serves /method/{name}.
type Dispatcher struct {
	P   Platform
	Now func() time.Time
	// PublicURL is the server's URL without a trailing slash: DPoP proofs
	// name the URL the client called.
	PublicURL string
	Log       *slog.Logger
	Limits    Limits
	// Metrics counts errors and refusals (nil: none).
	Metrics *metrics.Metrics
	methods map[string]*Method
	limiter *ratelimit.Limiter
	users   appUsers
}

// New returns a dispatcher with the given methods.
func New(p Platform, now func() time.Time, log *slog.Logger, limits Limits, methods []*Method) *Dispatcher {
	d := &Dispatcher{P: p, Now: now, Log: log, Limits: limits, methods: map[string]*Method{}, limiter: ratelimit.New(1 << 20)}
	for _, m := range methods {
		d.methods[m.Name] = m
	}
	d.users.counts = map[int64]appCount{}
	return d
}

const maxBody = 1 << 20

// ServeHTTP answers every call with HTTP 200 and the VK envelope, for the
// method its route names ({name}).
func (d *Dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.Serve(w, r, r.PathValue("name"))
}

// Serve answers a call of the method name, for a router that has read the
// name from the path itself.
func (d *Dispatcher) Serve(w http.ResponseWriter, r *http.Request, name string) {
	c := calls.Get().(*Call)
	ps, err := parseParams(w, r, c.params[:0])
	if err == nil {
		var resp any
		resp, err = d.call(w, r, c, name, ps)
		d.write(w, r, name, ps, resp, err)
	} else {
		d.write(w, r, name, ps, nil, ErrParam("body"))
	}
	clear(ps) // no parameter (a token) stays behind in the pool
	if cap(ps) > maxPooledParams {
		ps = make(params, 0, 8) // a rare request with many: not kept for every later one
	}
	*c = Call{params: ps[:0]}
	calls.Put(c)
}

// maxPooledParams bounds the room for parameters a pooled Call keeps.
const maxPooledParams = 64

// calls recycles Call values, and the room for their parameters: one of
// each per API request otherwise.
var calls = sync.Pool{New: func() any { return &Call{params: make(params, 0, 8)} }}

// params are a request's parameters in order, the form body's before the
// query's (as net/http's Request.Form has them), kept in a slice: a call
// has a handful, and a map per request costs more than scanning them.
type params []kv

// Get returns the first value of key, or "".
func (p params) Get(key string) string {
	for i := range p {
		if p[i].Key == key {
			return p[i].Value
		}
	}
	return ""
}

// appendPairs adds the pairs of a URL-encoded string; malformed pairs are
// skipped, as url.ParseQuery skips them.
func (p params) appendPairs(s string) params {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || k == "" {
			continue
		}
		p = append(p, kv{k, v})
	}
	return p
}

// parseParams appends r's parameters to ps.
func parseParams(w http.ResponseWriter, r *http.Request, ps params) (params, error) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch ct {
		case "multipart/form-data":
			if err := r.ParseMultipartForm(maxBody); err != nil {
				return ps, err
			}
			for _, k := range slices.Sorted(maps.Keys(r.MultipartForm.Value)) {
				for _, v := range r.MultipartForm.Value[k] {
					ps = append(ps, kv{k, v})
				}
			}
		case "application/x-www-form-urlencoded", "":
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return ps, err
			}
			ps = ps.appendPairs(string(body))
		}
	}
	return ps.appendPairs(r.URL.RawQuery), nil
}

func (d *Dispatcher) call(w http.ResponseWriter, r *http.Request, c *Call, name string, ps params) (any, error) {
	m := d.methods[name]
	if m == nil {
		return nil, ErrUnknownMethod
	}
	v := ps.Get("v")
	if v == "" {
		return nil, ErrNoVersion
	}
	*c = Call{Ctx: r.Context(), Version: v, Now: d.Now(), params: c.params}
	raw, dpopScheme := ps.Get("access_token"), false
	if raw == "" {
		raw, dpopScheme = httpx.Credential(r.Header.Get("Authorization"))
	}
	if raw == "" {
		if !m.Open {
			return nil, ErrNoToken
		}
	} else {
		t, err := d.P.CheckTokenAt(r.Context(), raw, c.Now)
		switch {
		case err == nil && t.APIID != 0:
			return nil, ErrInvalidToken // another API's token (RFC 8707)
		case err == nil:
		case errors.Is(err, platform.ErrTokenInvalid):
			return nil, ErrInvalidToken
		case errors.Is(err, platform.ErrTokenExpired):
			return nil, ErrExpiredToken
		case errors.Is(err, platform.ErrTokenRevoked):
			if t.RevokeReason == storage.RevokedByUser {
				return nil, ErrUserRevoked
			}
			return nil, ErrInvalidToken
		default:
			return nil, err // logged by write, as a failure or a client gone
		}
		if t.JKT != "" || dpopScheme {
			// RFC 9449 §7: a bound token only with its key's fresh proof;
			// §9: the nonce for the next (which spares a storage write).
			w.Header()["Dpop-Nonce"] = []string{d.P.DPoPNonce()}
			err := d.P.CheckBinding(r.Context(), t, dpopScheme, r.Header.Get("DPoP"), r.Method, d.PublicURL+r.URL.Path, raw)
			var be *platform.ErrBinding
			if errors.As(err, &be) {
				return nil, &Error{5, "User authorization failed: " + be.Error() + "."}
			}
			if err != nil {
				return nil, err
			}
		}
		c.Token, c.HasToken = t, true
		if err := m.permits(&t); err != nil {
			return nil, err
		}
		if kind, ok := d.allow(r.Context(), m, &t, c.Now); !ok {
			d.Metrics.Limited(kind)
			return nil, ErrTooMany
		}
		if t.Kind == token.Community {
			d.P.TokenUsed(t.Hash, c.Now) // for "last used" on the community's page
		}
	}
	if err := c.parse(m, ps); err != nil {
		return nil, err
	}
	c.IP = httpx.ClientIP(r)
	return m.Handle(c)
}

// permits checks the token's kind and scope against the method.
func (m *Method) permits(t *storage.Token) error {
	if m.Open {
		return nil
	}
	switch t.Kind {
	case token.User:
		if !m.Kinds.Has(token.User) || !t.Scope.Has(m.UserScope) {
			return ErrAccessDenied
		}
	case token.Community:
		if !m.Kinds.Has(token.Community) {
			return ErrGroupAuth
		}
		if !t.Scope.Has(m.CommunityScope) {
			return ErrAccessDenied
		}
	case token.Service:
		if !m.Kinds.Has(token.Service) {
			return ErrServiceAuth
		}
	default:
		return ErrInvalidToken
	}
	return nil
}

// allow takes a call from this node's share of the limit that applies
// (the limit over the nodes serving, so that together they hold it), and
// names it (for metrics) whether or not the call fits.
func (d *Dispatcher) allow(ctx context.Context, m *Method, t *storage.Token, now time.Time) (string, bool) {
	var rate float64
	key, kind := t.Hash, metrics.LimitAPIUser
	switch {
	case m.Rate == RateSecure:
		// vk-wire.md §4: the secure.* limit is the app's, whatever token
		// it calls with.
		rate, key, kind = d.secureRate(ctx, t.AppID, now), appKey(t.AppID), metrics.LimitAPISecure
	case t.Kind == token.Community:
		rate, kind = d.Limits.Community, metrics.LimitAPICommunity
	case t.Kind == token.Service:
		rate, kind = d.Limits.Service, metrics.LimitAPIService
	default:
		rate = d.Limits.User
	}
	burst := max(int(rate), 1)
	if n := d.P.Nodes(); n > 1 {
		rate, burst = rate/float64(n), max(burst/n, 1)
	}
	return kind, d.limiter.Allow(key, rate, burst, now)
}

// appKey is the limiter's key for an app: a value no token's SHA-256 can
// take in practice (a fixed prefix, then the app id).
func appKey(appID int64) token.Hash {
	var k token.Hash
	copy(k[:], "latchkey app limit\x00")
	binary.BigEndian.PutUint64(k[24:], uint64(appID))
	return k
}

// secure.* limits by the app's user count (vk-wire.md §4).
func secureLimit(users int64) float64 {
	switch {
	case users < 10_000:
		return 5
	case users < 100_000:
		return 8
	case users < 1_000_000:
		return 20
	}
	return 35
}

// appUsers caches each app's user count for a minute.
type appUsers struct {
	mu     sync.Mutex
	counts map[int64]appCount
}

type appCount struct {
	n  int64
	at time.Time
}

func (d *Dispatcher) secureRate(ctx context.Context, appID int64, now time.Time) float64 {
	d.users.mu.Lock()
	c, ok := d.users.counts[appID]
	d.users.mu.Unlock()
	if !ok || now.Sub(c.at) > time.Minute {
		n, err := d.P.AppUserCount(ctx, appID)
		if err != nil {
			n = c.n
		}
		c = appCount{n, now}
		d.users.mu.Lock()
		if len(d.users.counts) > 100_000 {
			clear(d.users.counts)
		}
		d.users.counts[appID] = c
		d.users.mu.Unlock()
	}
	return secureLimit(c.n)
}

// parse validates the declared parameters.
func (c *Call) parse(m *Method, ps params) error {
	for _, p := range m.Params {
		v := strings.TrimSpace(ps.Get(p.Name))
		if v == "" {
			if p.Required {
				return ErrParam(p.Name)
			}
			continue
		}
		switch p.Type {
		case Int:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || (p.Max != 0 && n > p.Max) || n < p.Min {
				return ErrParam(p.Name)
			}
			if c.ints == nil {
				c.ints = map[string]int64{}
			}
			c.ints[p.Name] = n
		case IntList:
			var ids []int64
			for part := range strings.SplitSeq(v, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
				if err != nil {
					return ErrParam(p.Name)
				}
				ids = append(ids, n)
			}
			if p.Max != 0 && int64(len(ids)) > p.Max {
				return ErrParam(p.Name)
			}
			if c.lists == nil {
				c.lists = map[string][]int64{}
			}
			c.lists[p.Name] = ids
		case String:
			// Text only: invalid UTF-8 or NUL is refused here, for every
			// method, before anything reaches storage.
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) || p.Max != 0 && int64(utf8.RuneCountInString(v)) > p.Max {
				return ErrParam(p.Name)
			}
			if c.strs == nil {
				c.strs = map[string]string{}
			}
			c.strs[p.Name] = v
		}
	}
	return nil
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// write writes the envelope: {"response":…} or {"error":{…}}, always HTTP
// 200 with application/json; charset=utf-8.
func (d *Dispatcher) write(w http.ResponseWriter, r *http.Request, name string, ps params, resp any, err error) {
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufs.Put(buf)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			if httpx.ClientGone(r, err) {
				d.Log.DebugContext(r.Context(), "api: the client went away", "method", name, "request_id", httpx.RequestID(w))
			} else {
				d.Log.ErrorContext(r.Context(), "api: method failed", "method", name, "request_id", httpx.RequestID(w), "err", err)
			}
			ae = ErrInternal
		}
		d.Metrics.APIError(ae.Code)
		writeError(buf, ae, name, ps)
	} else if n, ok := resp.(int64); ok {
		// The common answer of the hottest methods: no encoder needed.
		buf.WriteString(`{"response":`)
		buf.Write(strconv.AppendInt(buf.AvailableBuffer(), n, 10))
		buf.WriteByte('}')
	} else {
		buf.WriteString(`{"response":`)
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(resp); err != nil {
			buf.Reset()
			writeError(buf, ErrInternal, name, ps)
		} else {
			buf.Truncate(buf.Len() - 1) // Encode's newline
			buf.WriteByte('}')
		}
	}
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	if buf.Len() > smallAnswer {
		h["Content-Length"] = []string{strconv.Itoa(buf.Len())}
	}
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// smallAnswer is how long an answer net/http sends with a Content-Length
// it counts itself (written whole, before the handler returns: it holds
// 2048 bytes before it would chunk): those need no header of ours, which
// costs two allocations.
const smallAnswer = 2000

var (
	jsonType = []string{"application/json; charset=utf-8"}
	noStore  = []string{"no-store"}
)

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// writeError writes the error envelope with request_params: oauth and
// method first, then every parameter but access_token, by name, each once.
func writeError(buf *bytes.Buffer, e *Error, name string, ps params) {
	list := []kv{{"oauth", "1"}, {"method", name}}
	seen := map[string]bool{"access_token": true, "method": true, "oauth": true}
	for _, p := range ps {
		if !seen[p.Key] {
			seen[p.Key] = true
			list = append(list, kv{p.Key, ps.Get(p.Key)})
		}
	}
	slices.SortFunc(list[2:], func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	body := map[string]any{"error": map[string]any{"error_code": e.Code, "error_msg": e.Msg, "request_params": list}}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(body)
	buf.Truncate(buf.Len() - 1)
}
