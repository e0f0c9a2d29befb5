package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"latchkey/internal/token"
)

func TestBurstThenRefusedThenRecovered(t *testing.T) {
	l := New(1000)
	k := token.HashOf("a")
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !l.Allow(k, 3, 3, now) {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	if l.Allow(k, 3, 3, now) {
		t.Fatal("fourth request in the same instant allowed")
	}
	if !l.Allow(token.HashOf("b"), 3, 3, now) {
		t.Fatal("another key was limited")
	}
	if !l.Allow(k, 3, 3, now.Add(time.Second/3)) {
		t.Fatal("not recovered after one interval")
	}
	if l.Allow(k, 3, 3, now.Add(time.Second/3)) {
		t.Fatal("recovered more than one request per interval")
	}
	// A second later the whole burst is back.
	later := now.Add(2 * time.Second)
	for i := range 3 {
		if !l.Allow(k, 3, 3, later) {
			t.Fatalf("request %d after a pause refused", i+1)
		}
	}
}

func TestSustainedRate(t *testing.T) {
	l := New(1000)
	k := token.HashOf("steady")
	start := time.Unix(0, 0)
	allowed := 0
	for ms := range 10_000 { // 10 s, one attempt per millisecond
		if l.Allow(k, 20, 20, start.Add(time.Duration(ms)*time.Millisecond)) {
			allowed++
		}
	}
	if allowed < 199 || allowed > 221 {
		t.Fatalf("%d requests allowed in 10 s at 20/s with burst 20, want about 220", allowed)
	}
}

func TestBounded(t *testing.T) {
	l := New(shards * 16)
	now := time.Unix(0, 0)
	for i := range 100_000 {
		l.Allow(token.HashOf(fmt.Sprint(i)), 1, 1, now)
	}
	n := 0
	for i := range l.shards {
		n += len(l.shards[i].tat)
	}
	if n > shards*16 {
		t.Fatalf("%d keys kept, bound %d", n, shards*16)
	}
}

// Returned requests do not count: a limit of failures lets successes
// through without end, and refuses once the failures reach the burst.
func TestReturnedRequestsDoNotCount(t *testing.T) {
	l := New(100)
	var key token.Hash
	now := time.Unix(1000, 0)
	for i := range 1000 {
		if !l.Allow(key, 1, 5, now) {
			t.Fatalf("success %d was refused", i)
		}
		l.Return(key, 1)
	}
	for i := range 5 {
		if !l.Allow(key, 1, 5, now) {
			t.Fatalf("failure %d of a burst of 5 was refused", i)
		}
	}
	if l.Allow(key, 1, 5, now) {
		t.Fatal("the sixth failure in a burst of 5 was allowed")
	}
}

// Keys that went idle are dropped as new ones come, long before the
// limiter is full: a million keys used once each leave few behind.
func TestIdleKeysDoNotAccumulate(t *testing.T) {
	l := New(1 << 20)
	now := time.Unix(1_700_000_000, 0)
	for i := range 1_000_000 {
		var k token.Hash
		k[0], k[1], k[2], k[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		if !l.Allow(k, 1000, 1, now.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatal("a first request refused")
		}
	}
	n := 0
	for i := range l.shards {
		n += len(l.shards[i].tat)
	}
	if n > 64*256 {
		t.Fatalf("%d keys kept after a million used once each at 1000/s, want a few thousand", n)
	}
}

// BenchmarkAllow is one counted request of a key already seen, from both
// cores at once over 256 keys: the API's case for a busy token.
func BenchmarkAllow(b *testing.B) {
	l := New(1 << 20)
	var keys [256]token.Hash
	for i := range keys {
		keys[i] = token.HashOf(fmt.Sprint(i))
	}
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			l.Allow(keys[i%len(keys)], 1e9, 1<<20, now)
		}
	})
}
