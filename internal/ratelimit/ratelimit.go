// Package ratelimit limits requests per key (a token) with the generic cell
// rate algorithm: one int64 per key, the theoretical arrival time. A request
// over the limit is refused at once, never queued.
package ratelimit

import (
	"sync"
	"time"

	"latchkey/internal/token"
)

const shards = 64

// Limiter holds the state of every key it has seen recently.
type Limiter struct {
	maxPerShard int
	shards      [shards]shard
}

type shard struct {
	mu  sync.Mutex
	tat map[token.Hash]*int64 // unix nanoseconds: updated in place, one lookup a request
	// kept is how many keys the last sweep kept: the next sweep comes
	// when the shard has doubled since, so that idle keys go at a cost
	// spread over the inserts and the map stays near the busy keys' count.
	kept int
	_    [32]byte
}

// New returns a limiter that keeps at most about size keys; idle keys are
// dropped first when it is full.
func New(size int) *Limiter {
	l := &Limiter{maxPerShard: max(16, size/shards)}
	for i := range l.shards {
		l.shards[i].tat = make(map[token.Hash]*int64)
	}
	return l
}

// Allow reports whether a request for key at now fits rate per second with
// bursts of up to burst requests, and counts it if so.
func (l *Limiter) Allow(key token.Hash, rate float64, burst int, now time.Time) bool {
	interval := int64(float64(time.Second) / rate)
	tolerance := interval * int64(max(burst, 1)-1)
	t := now.UnixNano()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.tat[key]
	tat := t
	if p != nil && *p > t {
		tat = *p
	}
	if tat-t > tolerance {
		return false
	}
	if p == nil {
		if full := len(s.tat) >= l.maxPerShard; full || len(s.tat) >= max(2*s.kept, 64) {
			s.sweep(t, full)
			s.kept = len(s.tat)
		}
		p = new(int64)
		s.tat[key] = p
	}
	*p = tat + interval
	return true
}

func (l *Limiter) shard(key token.Hash) *shard { return &l.shards[key.Spread()%shards] }

// Return gives back a request Allow counted for key at rate, for limits
// that count only failures: each request is counted before it is worked
// on (so concurrent ones cannot all slip under the limit), and the ones
// that succeed are given back.
func (l *Limiter) Return(key token.Hash, rate float64) {
	interval := int64(float64(time.Second) / rate)
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.tat[key]; p != nil {
		*p -= interval
	}
}

// sweep drops keys whose allowance is full again (idle keys); if none are
// and the shard is full, it drops an arbitrary one.
func (s *shard) sweep(now int64, full bool) {
	n := len(s.tat)
	for k, tat := range s.tat {
		if *tat <= now {
			delete(s.tat, k)
		}
	}
	if full && len(s.tat) == n {
		for k := range s.tat {
			delete(s.tat, k)
			break
		}
	}
}
