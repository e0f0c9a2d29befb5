package web

import (
	"context"
	"time"

	"latchkey/internal/token"
)

// Throttle counts attempts per key (logins, sign-ups, device codes,
// messages, client registrations) in fixed windows. Over the limit, the action is refused for
// that key until the window ends.
//
// The counts live in storage, so that every node behind a load balancer
// adds to the same count: a limit holds for the whole deployment, not per
// node. These actions are rare next to API calls, and each costs a
// password check or a write anyway; one more statement is cheap.
//
// Take checks and counts in one step (one atomic statement), before the
// work it guards: however many requests arrive together, on however many
// nodes, at most limit of them get through per window (a check before the
// work and a count after it would let a burst through whole).
type Throttle struct {
	c      Counter
	name   string
	now    func() time.Time
	window time.Duration
}

// Counter is where a throttle's counts live (the platform's storage).
type Counter interface {
	TakeAttempt(ctx context.Context, key token.Hash, limit int, since, now time.Time) (bool, time.Time, error)
	RefundAttempt(ctx context.Context, key token.Hash, since time.Time) error
	ResetAttempts(ctx context.Context, key token.Hash) error
}

// NewThrottle counts in windows of w, in c, under name: throttles of
// different names count apart.
func NewThrottle(c Counter, name string, now func() time.Time, w time.Duration) *Throttle {
	return &Throttle{c: c, name: name, now: now, window: w}
}

// key is what is stored for key: its SHA-256, never the address or login.
func (t *Throttle) key(key string) token.Hash { return token.HashOf(t.name + "\x00" + key) }

// Take counts one attempt for key and reports whether it is within limit;
// when it is not, nothing is counted and wait says when the window ends.
func (t *Throttle) Take(ctx context.Context, key string, limit int) (ok bool, wait time.Duration, err error) {
	now := t.now()
	ok, started, err := t.c.TakeAttempt(ctx, t.key(key), limit, now.Add(-t.window), now)
	if err != nil || ok {
		return ok, 0, err
	}
	return false, max(0, started.Add(t.window).Sub(now)), nil
}

// Refund gives back an attempt that turned out not to count (a successful
// login, against the per-address limit).
func (t *Throttle) Refund(ctx context.Context, key string) error {
	return t.c.RefundAttempt(ctx, t.key(key), t.now().Add(-t.window))
}

// Reset forgets key's attempts.
func (t *Throttle) Reset(ctx context.Context, key string) error {
	return t.c.ResetAttempts(ctx, t.key(key))
}
