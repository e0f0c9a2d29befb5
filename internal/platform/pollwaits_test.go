package platform

import (
	"errors"
	"testing"
)

// The node's bound refuses a wait; a community's bound ends its oldest; a
// key's second wait ends its first; leaving is counted once.
func TestPollWaitBounds(t *testing.T) {
	w := newPollWaits(3, 2)
	ended := func(p *pollWait) bool {
		select {
		case <-p.ended:
			return true
		default:
			return false
		}
	}
	a, _ := w.enter(1, "k1")
	b, _ := w.enter(1, "k1")
	if !ended(a) || ended(b) || w.waiting() != 1 {
		t.Fatalf("a second wait on a key: first ended %v, second ended %v, %d waiting", ended(a), ended(b), w.waiting())
	}
	c, _ := w.enter(1, "k2")
	d, _ := w.enter(1, "k3")
	if !ended(b) || ended(c) || ended(d) || w.waiting() != 2 {
		t.Fatalf("a community's third wait with a bound of 2: oldest ended %v, %d waiting", ended(b), w.waiting())
	}
	w.leave(1, b) // ended already: not counted again
	e, _ := w.enter(2, "k1")
	if _, err := w.enter(3, "k1"); !errors.Is(err, ErrPollBusy) || w.waiting() != 3 {
		t.Fatalf("a wait beyond the node's bound: %v, %d waiting", err, w.waiting())
	}
	for _, p := range []struct {
		community int64
		w         *pollWait
	}{{1, c}, {1, d}, {2, e}} {
		w.leave(p.community, p.w)
	}
	if w.waiting() != 0 || len(w.byCommunity) != 0 {
		t.Fatalf("after every wait left: %d waiting, %d communities", w.waiting(), len(w.byCommunity))
	}
}
