package password

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := hash(t, "correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$") || strings.Contains(h, "correct horse") {
		t.Fatalf("Hash = %q", h)
	}
	if err := Verify(ctx, h, "correct horse"); err != nil {
		t.Fatalf("Verify(right password) = %v", err)
	}
	if err := Verify(ctx, h, "correct horse "); err != ErrMismatch {
		t.Fatalf("Verify(wrong password) = %v, want ErrMismatch", err)
	}
	if h1, h2 := hash(t, "x"), hash(t, "x"); h1 == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA", "$argon2id$v=19$m=1,t=1,p=1$!!$AA",
		"$argon2id$v=19$m=4194304,t=1,p=1$AAAA$AAAA"} { // 4 GiB: refused, not allocated
		if err := Verify(ctx, bad, "x"); err == nil || err == ErrMismatch {
			t.Errorf("Verify(%q) = %v, want a format error", bad, err)
		}
	}
}

// However many checks arrive at once, at most Concurrency run: each takes
// 19 MiB, so memory stays bounded. A check that waits longer than MaxWait
// for its turn (on a loaded machine) is told ErrBusy; none fails otherwise.
func TestConcurrentChecksAreBounded(t *testing.T) {
	h := hash(t, "right")
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak, checked := int64(0), 0
	for range 40 {
		wg.Go(func() {
			switch err := Verify(context.Background(), h, "wrong"); err {
			case ErrMismatch:
				mu.Lock()
				checked++
				mu.Unlock()
			case ErrBusy:
			default:
				t.Error(err)
			}
		})
		wg.Go(func() {
			n := InFlight()
			mu.Lock()
			peak = max(peak, n)
			mu.Unlock()
		})
	}
	wg.Wait()
	if peak > int64(Concurrency) {
		t.Fatalf("%d checks ran at once, want at most %d", peak, Concurrency)
	}
	if checked < Concurrency {
		t.Fatalf("only %d of 40 checks ran", checked)
	}
}

// A caller that cannot get a turn in time is told so, not queued forever.
func TestBusyWhenNoTurnComes(t *testing.T) {
	for range Concurrency {
		slots <- struct{}{}
	}
	defer func() {
		for range Concurrency {
			<-slots
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Hash(ctx, "x"); err != ErrBusy {
		t.Fatalf("Hash with every slot taken and the caller gone: %v, want ErrBusy", err)
	}
}
