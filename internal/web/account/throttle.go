package account

import (
	"sync"
	"time"
)

// throttle counts events per key (failed logins, sign-ups) in fixed windows.
// Over the limit, the action is refused for that key until the window ends.
type throttle struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	hits   map[string]*window
}

type window struct {
	start time.Time
	fails int
}

func newThrottle(now func() time.Time, w time.Duration) *throttle {
	return &throttle{now: now, window: w, hits: map[string]*window{}}
}

// blocked reports whether key has reached limit failures in this window, and
// when the window ends.
func (t *throttle) blocked(key string, limit int) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.hits[key]
	now := t.now()
	if w == nil || now.Sub(w.start) >= t.window {
		return false, 0
	}
	return w.fails >= limit, w.start.Add(t.window).Sub(now)
}

func (t *throttle) add(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.hits) > 100_000 {
		// Bounded memory: drop ended windows.
		for k, w := range t.hits {
			if now.Sub(w.start) >= t.window {
				delete(t.hits, k)
			}
		}
	}
	w := t.hits[key]
	if w == nil || now.Sub(w.start) >= t.window {
		w = &window{start: now}
		t.hits[key] = w
	}
	w.fails++
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.hits, key)
	t.mu.Unlock()
}
