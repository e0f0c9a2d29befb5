package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"latchkey/internal/storage"
)

// Callbacks is the one owner of the Callback API (vk-wire.md §7): a
// community's servers, the confirmation handshake, and the delivery of its
// events from a queue in storage — in order per server, each answered "ok"
// within 10 s or retried with backoff, at most 5 times, nothing lost
// across a restart. Deliveries go through the server's one Outbound
// client, with its address rules.
type Callbacks struct {
	*core
	store eventStore
	out   *Outbound
	wake  chan struct{}
	once  sync.Once
}

// Callback API limits.
const (
	maxCallbackServers  = 10
	maxDeliveryAttempts = 5
	deliveryTimeout     = 10 * time.Second
	deliveryLease       = 30 * time.Second
	firstRetry          = 5 * time.Second
)

// CallbackServerView is a server with its secret opened, for its admins.
type CallbackServerView struct {
	storage.CallbackServer
	Secret string
}

func (c *Callbacks) init() {
	c.once.Do(func() { c.wake = make(chan struct{}, 1) })
}

func (c *Callbacks) checkURL(raw string) error { return c.out.CheckURL(raw) }

// hostAddr reads a URL's host as the address a resolver would take it for
// without asking DNS: an IPv6 or IPv4 literal, IPv4 in inet_aton's forms,
// or localhost (with or without the root's trailing dot).
func hostAddr(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, true
	}
	return inetAton(host)
}

// inetAton parses IPv4 as inet_aton(3) does: one to four parts, each
// decimal, octal (a leading 0) or hexadecimal (0x); the last part fills
// the bytes that remain ("127.1" is 127.0.0.1, "2130706433" too).
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		base, digits := 10, p
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" || strings.ContainsAny(digits, "+-_") {
			return netip.Addr{}, false
		}
		n, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		last := i == len(parts)-1
		if !last && n > 0xff || last && n >= 1<<(8*(4-i)) {
			return netip.Addr{}, false
		}
		if last {
			v = v<<(8*(4-i)) | n
		} else {
			v = v<<8 | n
		}
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// ConfirmationCode is the community's code: what its servers answer the
// confirmation with. One per community, stable.
func (c *Callbacks) ConfirmationCode(communityID int64) string {
	return strings.ToLower(c.Keys.Tag("callback-confirmation", strconv.FormatInt(communityID, 10)))[:8]
}

// Add registers a server for the community, created by the user creator,
// and queues its confirmation.
func (c *Callbacks) Add(ctx context.Context, creator, communityID int64, rawURL, title, secret string) (storage.CallbackServer, error) {
	if err := c.checkURL(rawURL); err != nil {
		return storage.CallbackServer{}, err
	}
	if n := utf8.RuneCountInString(title); n == 0 || n > 14 || !validText(title) {
		return storage.CallbackServer{}, invalid("title", "must be 1 to 14 characters")
	}
	if len(secret) > 50 || strings.ContainsFunc(secret, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') }) {
		return storage.CallbackServer{}, invalid("secret_key", "must be at most 50 Latin letters and digits")
	}
	existing, err := c.store.CallbackServers(ctx, communityID)
	if err != nil {
		return storage.CallbackServer{}, err
	}
	if len(existing) >= maxCallbackServers {
		return storage.CallbackServer{}, &Error{Kind: Conflict, Message: fmt.Sprintf("a community has at most %d callback servers", maxCallbackServers)}
	}
	now := c.now()
	s := storage.CallbackServer{CommunityID: communityID, URL: rawURL, Title: title, SecretSealed: c.Keys.Seal([]byte(secret)),
		CreatorID: creator, Status: storage.CallbackUnconfirmed, APIVersion: storage.DefaultLongPollVersion, CreatedAt: now}
	if err := c.store.CreateCallbackServer(ctx, &s, now); err != nil {
		return s, err
	}
	c.Wake()
	return s, nil
}

// Servers are the community's servers, secrets opened.
func (c *Callbacks) Servers(ctx context.Context, communityID int64) ([]CallbackServerView, error) {
	ss, err := c.store.CallbackServers(ctx, communityID)
	if err != nil {
		return nil, err
	}
	out := make([]CallbackServerView, len(ss))
	for i, s := range ss {
		secret, err := c.Keys.Open(s.SecretSealed)
		if err != nil {
			return nil, fmt.Errorf("callback server %d: %w", s.ID, err)
		}
		out[i] = CallbackServerView{CallbackServer: s, Secret: string(secret)}
	}
	return out, nil
}

// Delete removes a server and what it was owed.
func (c *Callbacks) Delete(ctx context.Context, communityID, id int64) error {
	return orNotFound(c.store.DeleteCallbackServer(ctx, communityID, id), "no callback server %d in this community", id)
}

// SetSettings sets which events a server gets, and in which API version.
func (c *Callbacks) SetSettings(ctx context.Context, communityID, id int64, apiVersion string, events map[string]bool) error {
	_, err := c.store.UpdateCallbackServer(ctx, communityID, id, func(s *storage.CallbackServer) error {
		if apiVersion != "" {
			s.APIVersion = apiVersion
		}
		var err error
		s.Events, err = withEvents(s.Events, events)
		return err
	})
	return orNotFound(err, "no callback server %d in this community", id)
}

// Wake makes Run look at the queue now (an event or a server was added).
func (c *Callbacks) Wake() {
	c.init()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run delivers what is due until ctx ends: at once when woken, and at
// least every poll otherwise (retries come due with time).
func (c *Callbacks) Run(ctx context.Context, poll time.Duration) {
	c.init()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		c.deliverDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
	}
}

// deliverDue sends every claimed delivery, servers side by side.
func (c *Callbacks) deliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		now := c.now()
		due, err := c.store.NextDeliveries(ctx, now, now.Add(deliveryLease), 32)
		if err != nil {
			c.Log.WarnContext(ctx, "callback: reading the delivery queue failed", "err", err)
			return
		}
		if len(due) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, d := range due {
			wg.Go(func() { c.deliver(ctx, d) })
		}
		wg.Wait()
	}
}

// deliver makes one attempt at d and records its outcome.
func (c *Callbacks) deliver(ctx context.Context, d storage.Delivery) {
	err := c.attempt(ctx, d)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and another try comes
	}
	d.Attempts++
	d.UpdatedAt = c.now()
	switch {
	case err == nil:
		d.Status, d.LastError = storage.CallbackOK, ""
	case d.Attempts >= maxDeliveryAttempts || errors.Is(err, errEventGone):
		d.Status, d.LastError = storage.CallbackFailed, err.Error()
	default:
		backoff := firstRetry
		for range d.Attempts - 1 {
			backoff *= 3 // 5 s, 15 s, 45 s, 135 s
		}
		d.NextAt, d.LastError = c.now().Add(backoff), err.Error()
	}
	if err := c.store.FinishDelivery(context.WithoutCancel(ctx), d); err != nil {
		c.Log.WarnContext(ctx, "callback: recording a delivery failed", "delivery", d.ID, "err", err)
	}
}

var errEventGone = errors.New("the event is no longer kept")

// attempt POSTs d to its server and checks the answer: the community's
// code for the confirmation, "ok" for an event.
func (c *Callbacks) attempt(ctx context.Context, d storage.Delivery) error {
	if d.AppID != 0 {
		return c.logout(ctx, d)
	}
	servers, err := c.Servers(ctx, d.CommunityID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(servers, func(s CallbackServerView) bool { return s.ID == d.ServerID })
	if i < 0 {
		return errEventGone
	}
	s := servers[i]
	body := map[string]any{"type": "confirmation", "group_id": d.CommunityID}
	if s.Secret != "" {
		body["secret"] = s.Secret // vk-wire.md §7: SDKs check it before answering
	}
	want := c.ConfirmationCode(d.CommunityID)
	if d.Type != "confirmation" {
		es, err := c.store.CommunityEvents(ctx, d.CommunityID, d.Seq, 1)
		if err != nil {
			return err
		}
		if len(es) == 0 || es[0].Seq != d.Seq {
			return errEventGone
		}
		body = map[string]any{"type": es[0].Type, "object": json.RawMessage(es[0].Object), "group_id": d.CommunityID,
			"event_id": strconv.FormatInt(d.CommunityID, 36) + "_" + strconv.FormatInt(d.Seq, 36), "v": s.APIVersion, "secret": s.Secret}
		want = "ok"
	}
	raw, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.URL, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey Callback API")
	req.Header.Set("Idempotency-Key", "delivery-"+strconv.FormatInt(d.ID, 10))
	resp, err := c.out.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	if strings.TrimSpace(string(got)) != want {
		return fmt.Errorf("answered %q, not %q", truncate(string(got), 40), want)
	}
	return nil
}

// logout POSTs a logout token to an app (Back-Channel Logout §2.5): any
// 2xx answer is a delivery.
func (c *Callbacks) logout(ctx context.Context, d storage.Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", d.URL, strings.NewReader(url.Values{"logout_token": {d.Payload}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Latchkey back-channel logout")
	req.Header.Set("Idempotency-Key", "delivery-"+strconv.FormatInt(d.ID, 10))
	resp, err := c.out.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
