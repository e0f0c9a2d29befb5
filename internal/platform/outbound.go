package platform

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// Outbound is the one HTTP client with which the server reaches out:
// Callback API deliveries and client ID metadata documents. Targets on
// loopback, private or link-local addresses are refused when dialled (so
// no name that resolves there slips through) unless Allow lists them, and
// redirects are not followed: the answer is what was asked.
type Outbound struct {
	// Allow are the loopback, private or link-local ranges targets may be
	// in (--callback-allow).
	Allow []netip.Prefix
	// RootCAs are the certificates HTTPS targets are checked against (nil:
	// the system's).
	RootCAs *x509.CertPool

	client *http.Client
	once   sync.Once
}

// ErrTargetRefused is a URL on a network the server may not reach.
var ErrTargetRefused = errors.New("targets on loopback, private or link-local addresses are refused (the operator may allow ranges with --callback-allow)")

// refused reports whether a target may not be at ip.
func (o *Outbound) refused(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range o.Allow {
		if p.Contains(ip) {
			return false
		}
	}
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast()
}

// Client is the client, made on first use. Each request bounds its own
// time with its context.
func (o *Outbound) Client() *http.Client {
	o.once.Do(func() {
		dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			ip, err2 := netip.ParseAddr(host)
			if err != nil || err2 != nil || o.refused(ip) {
				return ErrTargetRefused
			}
			return nil
		}}
		// Receivers close idle connections: Node's http server after 5 s,
		// about when a Callback API delivery's first retry comes. Idle
		// connections are dropped here sooner, and a delivery carries an
		// Idempotency-Key, so that a connection the receiver closed as it
		// was reused is retried on a new one (net/http replays such
		// requests) instead of costing the delivery an attempt and 15 s.
		o.client = &http.Client{
			Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 2, IdleConnTimeout: 4 * time.Second,
				TLSHandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return o.client
}

// CheckURL refuses a URL that is no absolute http(s) URL, or whose host
// is an address (or localhost) that may not be reached, in any form the
// dialer would read as one: resolvers take "127.1", "0x7f000001",
// "2130706433" and "0177.0.0.1" as 127.0.0.1 (inet_aton), and "localhost."
// as localhost. A name that resolves there is refused when dialled.
func (o *Outbound) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(raw) > 2048 {
		return invalid("url", "must be an absolute http or https URL without user info")
	}
	if ip, ok := hostAddr(u.Hostname()); ok && o.refused(ip) {
		return &Error{Kind: Invalid, Field: "url", Message: ErrTargetRefused.Error(), Err: ErrTargetRefused}
	}
	return nil
}
