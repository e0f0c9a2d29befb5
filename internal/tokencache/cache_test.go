package tokencache

import (
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

func rec(i int) storage.Token {
	return storage.Token{Hash: token.HashOf(fmt.Sprint(i)), AppID: int64(i)}
}

func TestGetPutInvalidate(t *testing.T) {
	c := New(1000)
	r := rec(1)
	_, gen, ok := c.Get(r.Hash)
	if ok {
		t.Fatal("hit in an empty cache")
	}
	c.Put(r, gen)
	got, _, ok := c.Get(r.Hash)
	if !ok || got.AppID != 1 {
		t.Fatalf("Get after Put = %+v, %v", got, ok)
	}
	c.Invalidate([]token.Hash{r.Hash})
	if _, _, ok := c.Get(r.Hash); ok {
		t.Fatal("hit after Invalidate")
	}
}

func TestPutAfterRacingInvalidateIsDropped(t *testing.T) {
	c := New(1000)
	r := rec(2)
	_, gen, _ := c.Get(r.Hash) // miss; the caller goes to storage...
	c.Invalidate([]token.Hash{r.Hash})
	c.Put(r, gen) // ...and comes back with what is now stale
	if _, _, ok := c.Get(r.Hash); ok {
		t.Fatal("a stale record was cached after a racing revocation")
	}
}

func TestBoundedAndClear(t *testing.T) {
	c := New(shards * 4)
	for i := range 10_000 {
		r := rec(i)
		_, gen, _ := c.Get(r.Hash)
		c.Put(r, gen)
	}
	if n := c.Len(); n > shards*4 {
		t.Fatalf("cache holds %d entries, bound %d", n, shards*4)
	}
	c.Clear()
	if c.Len() != 0 {
		t.Fatal("Clear left entries")
	}
	var none *Cache
	none.Put(rec(1), 0)
	if _, _, ok := none.Get(rec(1).Hash); ok {
		t.Fatal("a nil cache returned a hit")
	}
}

func TestDisabledCacheHoldsNothing(t *testing.T) {
	c := New(1000)
	r := rec(3)
	c.Put(r, 0)
	c.Disable()
	if _, _, ok := c.Get(r.Hash); ok {
		t.Fatal("a disabled cache answered")
	}
	c.Put(r, 0)
	c.Enable()
	if _, _, ok := c.Get(r.Hash); ok {
		t.Fatal("a record put while disabled survived")
	}
	_, gen, _ := c.Get(r.Hash)
	c.Put(r, gen)
	if _, _, ok := c.Get(r.Hash); !ok {
		t.Fatal("an enabled cache does not keep records")
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New(100_000)
	r := rec(1)
	c.Put(r, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get(r.Hash)
		}
	})
}

func TestCounts(t *testing.T) {
	c := New(100)
	var h token.Hash
	h[0] = 7
	c.Get(h)
	_, gen, _ := c.Get(h)
	c.Put(storage.Token{Hash: h}, gen)
	c.Get(h)
	if hits, misses := c.Counts(); hits != 1 || misses != 2 {
		t.Fatalf("hits %d, misses %d; want 1, 2", hits, misses)
	}
	if size := unsafe.Sizeof(shard{}); size%64 != 0 {
		t.Fatalf("a shard is %d bytes: not whole cache lines", size)
	}
}

// Hashes storage does not have, remembered by the million, push out only
// one another: every live record stays, and the missing ones kept are
// bounded.
func TestMissingHashesCannotEvictLiveRecords(t *testing.T) {
	c := New(shards * 64)
	for i := range shards * 32 {
		r := rec(i)
		_, gen, _ := c.Get(r.Hash)
		c.Put(r, gen)
	}
	live := c.Len()
	for i := range 1_000_000 {
		h := token.HashOf(fmt.Sprint("missing-", i))
		_, gen, ok := c.Get(h)
		if !ok {
			c.PutMissing(h, gen)
		}
	}
	if c.Len() != live {
		t.Fatalf("after a million missing hashes: %d live records, want %d", c.Len(), live)
	}
	for i := range shards * 32 {
		if got, _, ok := c.Get(rec(i).Hash); !ok || got.AppID != int64(i) {
			t.Fatalf("live record %d gone after a flood of missing hashes", i)
		}
	}
	missing := 0
	for i := range c.shards {
		missing += len(c.shards[i].missing)
	}
	if missing > shards*c.missingPerShard {
		t.Fatalf("%d missing hashes kept, want at most %d", missing, shards*c.missingPerShard)
	}
	h := token.HashOf("missing-999999")
	if got, _, ok := c.Get(h); !ok || got.Kind != 0 || got.Hash != h {
		t.Fatalf("a remembered missing hash: %+v %v, want a Kind-0 record of its hash", got, ok)
	}
	c.Invalidate([]token.Hash{h})
	if _, _, ok := c.Get(h); ok {
		t.Fatal("a missing hash still remembered after Invalidate")
	}
}

// The cache keeps a compact record: what comes out is what storage gave,
// every field (times in UTC seconds, as stored) but the sealed copy.
func TestRecordsComeBackWhole(t *testing.T) {
	c := New(1000)
	code, secret := token.HashOf("code"), token.HashOf("secret")
	at := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	in := storage.Token{Hash: token.HashOf("whole"), Kind: token.User, AppID: 7, UserID: 8, CommunityID: 9, Scope: 1<<16 | 2,
		IssuedAt: at(1_700_000_000), ExpiresAt: at(1_700_043_200), IP: "192.0.2.7", Flow: storage.FlowCode, CodeHash: &code,
		SecretHash: &secret, RevokedAt: at(1_700_000_100), RevokeReason: storage.RevokedByUser, LastUsedAt: at(1_700_000_060), JKT: "thumb", APIID: 11}
	// Every field is set, so that a field the record forgets fails here
	// (the sealed copy and the parent are storage's alone).
	for i, f := range reflect.VisibleFields(reflect.TypeOf(in)) {
		if f.Name != "Sealed" && f.Name != "Parent" && reflect.ValueOf(in).Field(i).IsZero() {
			t.Fatalf("the test leaves storage.Token.%s unset: set it, and keep it in the cache's record", f.Name)
		}
	}
	_, gen, _ := c.Get(in.Hash)
	c.Put(in, gen)
	out, _, ok := c.Get(in.Hash)
	if !ok || !reflect.DeepEqual(out, in) {
		t.Fatalf("cached record came back as\n%+v\nwant\n%+v", out, in)
	}
	never := storage.Token{Hash: token.HashOf("never"), Kind: token.Service, Flow: storage.FlowServiceToken, IssuedAt: at(1_700_000_000)}
	_, gen, _ = c.Get(never.Hash)
	c.Put(never, gen)
	if out, _, _ := c.Get(never.Hash); !reflect.DeepEqual(out, never) || !out.ExpiresAt.IsZero() {
		t.Fatalf("a token without expiry came back as %+v", out)
	}
}
