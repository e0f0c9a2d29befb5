package storagetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/internal/storage"
)

func testThrottles(t *testing.T, s storage.Storage) {
	k := hash("ip:192.0.2.1")
	window := 15 * time.Minute
	take := func(now time.Time) (bool, time.Time) {
		t.Helper()
		ok, started, err := s.TakeAttempt(ctx(), k, 3, now.Add(-window), now)
		must(t, err)
		return ok, started
	}
	for i := range 3 {
		if ok, started := take(t0.Add(time.Duration(i) * time.Second)); !ok || !started.Equal(t0) {
			t.Fatalf("attempt %d: %v, window from %v, want counted in the window from %v", i+1, ok, started, t0)
		}
	}
	if ok, started := take(t0.Add(time.Minute)); ok || !started.Equal(t0) {
		t.Fatalf("a 4th attempt of 3: %v (window from %v), want refused, the window from %v", ok, started, t0)
	}
	must(t, s.RefundAttempt(ctx(), k, t0.Add(time.Minute).Add(-window)))
	if ok, _ := take(t0.Add(time.Minute)); !ok {
		t.Fatal("a refunded attempt was not given back")
	}
	if ok, _ := take(t0.Add(time.Minute)); ok {
		t.Fatal("a refund gave back more than one attempt")
	}
	later := t0.Add(window + time.Second)
	if ok, started := take(later); !ok || !started.Equal(later) {
		t.Fatalf("after the window: %v from %v, want a new window from %v", ok, started, later)
	}
	must(t, s.ResetAttempts(ctx(), k))
	for range 3 {
		if ok, _ := take(later); !ok {
			t.Fatal("attempts still counted after a reset")
		}
	}
	other := hash("login:alice")
	if ok, _, err := s.TakeAttempt(ctx(), other, 1, later.Add(-window), later); err != nil || !ok {
		t.Fatalf("another key shares the count: %v %v", ok, err)
	}
	n, err := s.PruneAttempts(ctx(), later.Add(time.Second))
	must(t, err)
	if n != 2 {
		t.Fatalf("pruned %d windows, want 2", n)
	}
}

func testConcurrentAttempts(t *testing.T, s storage.Storage) {
	k := hash("login:bob")
	const n, limit = 24, 5
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			passed, _, err := s.TakeAttempt(ctx(), k, limit, t0.Add(-time.Hour), t0)
			if err != nil {
				t.Error(err)
			}
			if passed {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit {
		t.Fatalf("%d of %d concurrent attempts passed a limit of %d", ok.Load(), n, limit)
	}
}

func testHeartbeat(t *testing.T, s storage.Storage) {
	beat := func(node string, now time.Time) int {
		t.Helper()
		n, err := s.Heartbeat(ctx(), node, now, now.Add(-3*time.Second), now.Add(-time.Minute))
		must(t, err)
		return n
	}
	if n := beat("a", t0); n != 1 {
		t.Fatalf("one node: %d live", n)
	}
	if n := beat("b", t0.Add(time.Second)); n != 2 {
		t.Fatalf("two nodes: %d live", n)
	}
	if n := beat("a", t0.Add(2*time.Second)); n != 2 {
		t.Fatalf("a beating again: %d live, want 2", n)
	}
	if n := beat("a", t0.Add(5*time.Second)); n != 1 {
		t.Fatalf("b silent for 4 s: %d live, want 1", n)
	}
	if n, err := s.Heartbeat(ctx(), "a", t0.Add(2*time.Minute), t0, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("b, silent for two minutes, was not forgotten: %d live since its last beat (%v)", n, err)
	}
	beat("b", t0.Add(2*time.Minute))
	must(t, s.ForgetNode(ctx(), "b"))
	if n := beat("a", t0.Add(2*time.Minute)); n != 1 {
		t.Fatalf("after b left: %d live, want 1", n)
	}
}

func testRunExclusive(t *testing.T, s storage.Storage) {
	ran, err := s.RunExclusive(ctx(), "job", func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("RunExclusive alone: ran %v, %v", ran, err)
	}
	inner := errors.New("inner")
	if _, err := s.RunExclusive(ctx(), "job", func(context.Context) error { return inner }); !errors.Is(err, inner) {
		t.Fatalf("RunExclusive lost fn's error: %v", err)
	}
}
