// Package metrics is a node's Prometheus registry and the counters every
// layer feeds: tokens issued, API errors by code, rate-limit refusals by
// kind, logins by result, token-cache hits and misses, storage latency by
// operation. Each node has its own (tests run many in one process); every
// method is safe on a nil *Metrics, which counts nothing.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are one node's.
type Metrics struct {
	Registry    *prometheus.Registry
	issued      *prometheus.CounterVec
	apiErrors   *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	logins      *prometheus.CounterVec
	storage     *prometheus.HistogramVec
	gateway     *prometheus.CounterVec
	upstream    *prometheus.HistogramVec
	// storageOps caches the histogram of each operation: a storage call
	// pays for a map read, not a label hash.
	storageOps sync.Map // string → prometheus.Observer
	// gatewayCounts and upstreams do the same for the gateway's counts
	// and upstream timings.
	gatewayCounts sync.Map // gatewayKey → prometheus.Counter
	upstreams     sync.Map // string → prometheus.Observer
}

type gatewayKey struct {
	api, mode string
	status    int
}

// Kinds of rate-limit refusal (latchkey_rate_limited_total{kind}).
const (
	LimitAPIUser      = "api_user"
	LimitAPICommunity = "api_community"
	LimitAPIService   = "api_service"
	LimitAPISecure    = "api_secure"
	LimitLogin        = "login"
	LimitSignup       = "signup"
	LimitDeviceCode   = "device_code"
	LimitVKID         = "vkid"
)

// Results of a login attempt (latchkey_logins_total{result}).
const (
	LoginOK        = "ok"
	LoginFailed    = "wrong_password"
	LoginThrottled = "throttled"
	LoginBusy      = "busy"
)

// Sources are values read when /metrics is scraped; each may be nil.
type Sources struct {
	// PasswordChecks is how many password hashes and checks run now.
	PasswordChecks func() int64
	// TokenCache is how many token-cache lookups hit and missed.
	TokenCache func() (hits, misses uint64)
}

// New registers the Go runtime and process collectors, every counter, and
// the values of src.
func New(src Sources) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_tokens_issued_total", Help: "Tokens issued, by kind.",
	}, []string{"kind"})
	m.apiErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_api_errors_total", Help: "API calls answered with an error, by VK error code.",
	}, []string{"code"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_rate_limited_total", Help: "Requests refused by a rate limit or throttle, by kind.",
	}, []string{"kind"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_logins_total", Help: "Login attempts, by result.",
	}, []string{"result"})
	m.storage = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "latchkey_storage_duration_seconds", Help: "Storage calls' latency, by operation (statement and table).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"op"})
	m.gateway = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_gateway_requests_total",
		Help: "Requests for a registered API, by API (its identifier), mode (proxy: /api/<slug>/; check: /oauth/check) and the answer's status.",
	}, []string{"api", "mode", "status"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "latchkey_gateway_upstream_duration_seconds", Help: "How long an API's upstream took to answer (its headers), by API.",
		Buckets: prometheus.DefBuckets,
	}, []string{"api"})
	m.Registry.MustRegister(m.issued, m.apiErrors, m.rateLimited, m.logins, m.storage, m.gateway, m.upstream)
	if src.PasswordChecks != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "latchkey_password_checks_in_flight", Help: "Password hashes and checks running now (bounded per process).",
		}, func() float64 { return float64(src.PasswordChecks()) }))
	}
	if src.TokenCache != nil {
		for i, result := range []string{"hit", "miss"} {
			m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "latchkey_token_cache_total", Help: "Token-cache lookups, by result.", ConstLabels: prometheus.Labels{"result": result},
			}, func() float64 {
				hits, misses := src.TokenCache()
				return float64([]uint64{hits, misses}[i])
			}))
		}
	}
	return m
}

// Issued counts a token minted.
func (m *Metrics) Issued(kind string) {
	if m != nil {
		m.issued.WithLabelValues(kind).Inc()
	}
}

// APIError counts an API call answered with VK error code.
func (m *Metrics) APIError(code int) {
	if m != nil {
		m.apiErrors.WithLabelValues(strconv.Itoa(code)).Inc()
	}
}

// Limited counts a request refused by the limit of kind.
func (m *Metrics) Limited(kind string) {
	if m != nil {
		m.rateLimited.WithLabelValues(kind).Inc()
	}
}

// Login counts a login attempt's result.
func (m *Metrics) Login(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

// Storage records how long a storage operation took.
func (m *Metrics) Storage(op string, d time.Duration) {
	if m == nil {
		return
	}
	o, ok := m.storageOps.Load(op)
	if !ok {
		o, _ = m.storageOps.LoadOrStore(op, m.storage.WithLabelValues(op))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// Modes of a request for a registered API
// (latchkey_gateway_requests_total{mode}).
const (
	GatewayProxy = "proxy"
	GatewayCheck = "check"
)

// Gateway counts a request for the API identified by api, answered with
// status, in mode.
func (m *Metrics) Gateway(api, mode string, status int) {
	if m == nil {
		return
	}
	k := gatewayKey{api, mode, status}
	c, ok := m.gatewayCounts.Load(k)
	if !ok {
		c, _ = m.gatewayCounts.LoadOrStore(k, m.gateway.WithLabelValues(api, mode, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
}

// Upstream records how long api's upstream took to answer.
func (m *Metrics) Upstream(api string, d time.Duration) {
	if m == nil {
		return
	}
	o, ok := m.upstreams.Load(api)
	if !ok {
		o, _ = m.upstreams.LoadOrStore(api, m.upstream.WithLabelValues(api))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}
