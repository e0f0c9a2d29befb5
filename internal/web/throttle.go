package web

import (
	"sync"
	"time"
)

// Throttle counts attempts per key (logins, sign-ups) in fixed windows. Over
// the limit, the action is refused for that key until the window ends.
//
// Take checks and counts in one step, under one lock, before the work it
// guards: however many requests arrive together, at most limit of them
// get through per window (a check before the work and a count after it
// would let a burst through whole).
type Throttle struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	hits   map[string]*window
}

type window struct {
	start time.Time
	count int
}

// NewThrottle counts in windows of w.
func NewThrottle(now func() time.Time, w time.Duration) *Throttle {
	return &Throttle{now: now, window: w, hits: map[string]*window{}}
}

// Take counts one attempt for key and reports whether it is within limit;
// when it is not, nothing is counted and wait says when the window ends.
func (t *Throttle) Take(key string, limit int) (ok bool, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	w := t.hits[key]
	if w == nil || now.Sub(w.start) >= t.window {
		if len(t.hits) > 100_000 {
			// Bounded memory: drop ended windows.
			for k, w := range t.hits {
				if now.Sub(w.start) >= t.window {
					delete(t.hits, k)
				}
			}
		}
		w = &window{start: now}
		t.hits[key] = w
	}
	if w.count >= limit {
		return false, w.start.Add(t.window).Sub(now)
	}
	w.count++
	return true, 0
}

// Refund gives back an attempt that turned out not to count (a successful
// login, against the per-address limit).
func (t *Throttle) Refund(key string) {
	t.mu.Lock()
	if w := t.hits[key]; w != nil && w.count > 0 {
		w.count--
	}
	t.mu.Unlock()
}

// Reset forgets key's attempts.
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	delete(t.hits, key)
	t.mu.Unlock()
}
