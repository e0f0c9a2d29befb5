package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/internal/storage"
)

func testCommunityEvents(t *testing.T, s storage.Storage) {
	if n, err := s.LastEventSeq(ctx(), 7); err != nil || n != 0 {
		t.Fatalf("no events yet: %d %v", n, err)
	}
	for i, c := range []int64{7, 7, 8, 7} {
		e := storage.CommunityEvent{CommunityID: c, Type: "message_new", Object: fmt.Sprintf(`{"n":%d}`, i), CreatedAt: t0}
		must(t, addEvent(s, &e))
		if want := map[int]int64{0: 1, 1: 2, 2: 1, 3: 3}[i]; e.Seq != want {
			t.Fatalf("event %d of community %d: seq %d, want %d", i, c, e.Seq, want)
		}
	}
	es, err := s.CommunityEvents(ctx(), 7, 2, 10)
	must(t, err)
	if len(es) != 2 || es[0].Seq != 2 || es[1].Seq != 3 || es[1].Object != `{"n":3}` || !es[0].CreatedAt.Equal(t0) {
		t.Fatalf("events of 7 from 2: %+v", es)
	}
	if n, err := s.LastEventSeq(ctx(), 7); err != nil || n != 3 {
		t.Fatalf("LastEventSeq(7) = %d %v", n, err)
	}
	// Old events go; the numbers stay.
	late := storage.CommunityEvent{CommunityID: 7, Type: "group_join", Object: "{}", CreatedAt: t0.Add(time.Hour)}
	must(t, addEvent(s, &late))
	n, err := s.DeleteCommunityEvents(ctx(), t0.Add(time.Minute), 100)
	must(t, err)
	if es, _ := s.CommunityEvents(ctx(), 7, 1, 10); n != 4 || len(es) != 1 || es[0].Seq != 4 {
		t.Fatalf("after deleting the old ones (%d): %+v", n, es)
	}
	next := storage.CommunityEvent{CommunityID: 7, Type: "group_join", Object: "{}", CreatedAt: t0.Add(time.Hour)}
	must(t, addEvent(s, &next))
	if next.Seq != 5 {
		t.Fatalf("the next event after a deletion: seq %d, want 5", next.Seq)
	}
}

// eventJoiner numbers the users addEvent makes join.
var eventJoiner atomic.Int64

// addEvent stores e as the event of a new member joining its community
// (every write that stores an event does so with a change of its own).
func addEvent(s storage.Storage, e *storage.CommunityEvent) error {
	changed, err := s.SetMembership(ctx(), e.CommunityID, 1_000_000+eventJoiner.Add(1), true, e.CreatedAt, e)
	if err == nil && !changed {
		err = fmt.Errorf("joining community %d changed nothing", e.CommunityID)
	}
	return err
}

func testConcurrentCommunityEvents(t *testing.T, s storage.Storage) {
	const n = 16
	seqs := make(chan int64, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := storage.CommunityEvent{CommunityID: 9, Type: "group_join", Object: "{}", CreatedAt: t0}
			if err := addEvent(s, &e); err != nil {
				t.Error(err)
				return
			}
			seqs <- e.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for q := range seqs {
		if seen[q] || q < 1 || q > n {
			t.Fatalf("seq %d repeated or out of 1..%d", q, n)
		}
		seen[q] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct numbers, want %d", len(seen), n)
	}
}

func testLongPollSettings(t *testing.T, s storage.Storage) {
	ls, err := s.LongPollSettings(ctx(), 5)
	must(t, err)
	if ls.Enabled || len(ls.Events) != 0 || ls.APIVersion == "" {
		t.Fatalf("never set: %+v", ls)
	}
	set := func(enabled bool, version string, events ...string) {
		t.Helper()
		got, err := s.UpdateLongPollSettings(ctx(), 5, func(ls *storage.LongPollSettings) error {
			ls.Enabled, ls.APIVersion, ls.Events = enabled, version, events
			return nil
		})
		must(t, err)
		if got.APIVersion != version {
			t.Fatalf("the update returned %+v", got)
		}
	}
	set(true, "5.199", "message_new", "message_reply")
	set(true, "5.131", "message_new")
	// An error from the update changes nothing.
	refused := errors.New("refused")
	if _, err := s.UpdateLongPollSettings(ctx(), 5, func(ls *storage.LongPollSettings) error {
		ls.Enabled = false
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("a refused update: %v", err)
	}
	ls, err = s.LongPollSettings(ctx(), 5)
	must(t, err)
	if !ls.Enabled || ls.APIVersion != "5.131" || len(ls.Events) != 1 || ls.Events[0] != "message_new" {
		t.Fatalf("after two sets: %+v", ls)
	}
}

func testMessagePermissions(t *testing.T, s storage.Storage) {
	const community, user = 88, 9
	if ok, err := s.MessagesAllowed(ctx(), community, user); err != nil || !ok {
		t.Fatalf("before any choice: %v %v, want allowed", ok, err)
	}
	event := func(typ string) *storage.CommunityEvent {
		return &storage.CommunityEvent{CommunityID: community, Type: typ, Object: "{}", CreatedAt: t0}
	}
	// The caller decides which changes are events (the platform: every
	// allow, and a deny that changes something); storage says what changed
	// and stores the event in the same write.
	for i, c := range []struct {
		allowed, changed, due bool
	}{{false, true, true}, {false, false, false}, {true, true, true}, {true, false, true}} {
		typ := "message_deny"
		if c.allowed {
			typ = "message_allow"
		}
		e := event(typ)
		var sawChange bool
		stored, err := s.SetMessagesAllowed(ctx(), community, user, c.allowed, t0, func(changed bool) *storage.CommunityEvent {
			sawChange = changed
			if c.due {
				return e
			}
			return nil
		})
		must(t, err)
		if stored != c.due || (stored && e.Seq == 0) || sawChange != c.changed {
			t.Fatalf("step %d (allowed %v): stored %v, seq %d, changed %v; want stored %v, changed %v", i, c.allowed, stored, e.Seq, sawChange, c.due, c.changed)
		}
		if ok, _ := s.MessagesAllowed(ctx(), community, user); ok != c.allowed {
			t.Fatalf("step %d: MessagesAllowed %v, want %v", i, ok, c.allowed)
		}
	}
}
