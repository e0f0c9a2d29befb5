// Package tokencache keeps checked token records in memory so the API does
// not touch storage on every call. It is bounded, sharded to keep lock
// contention low, and every revocation path invalidates it at once.
//
// A lookup that misses reads storage and then stores what it read. A
// revocation racing with that read must win, so each shard has a generation
// that Invalidate bumps: Put with a generation taken before the read is
// dropped if the shard moved on.
package tokencache

import (
	"sync"
	"sync/atomic"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

const shards = 64

// Cache maps token hashes to their records.
type Cache struct {
	perShard, missingPerShard int
	// off: the node may have missed invalidations (its notice channel is
	// down), so the cache answers nothing and keeps nothing.
	off    atomic.Bool
	shards [shards]shard
}

// Disable empties the cache and keeps it empty until Enable.
func (c *Cache) Disable() {
	if c == nil {
		return
	}
	c.off.Store(true)
	c.Clear()
}

// Enabled reports whether the cache is on.
func (c *Cache) Enabled() bool { return c != nil && !c.off.Load() }

// Enable turns a disabled cache back on, empty.
func (c *Cache) Enable() {
	if c == nil {
		return
	}
	c.Clear()
	c.off.Store(false)
}

type shard struct {
	mu  sync.RWMutex
	gen uint64
	m   map[token.Hash]record
	// missing remembers hashes storage does not have (well-formed, signed
	// tokens that expired and were deleted, or were never stored), apart
	// from m and smaller: however many of them are tried, they push out
	// only one another, never a live token.
	missing map[token.Hash]struct{}
	// hits and misses count Get's answers, per shard so that the cores do
	// not share one counter's cache line.
	hits, misses atomic.Uint64
	_            [64]byte // keep shards on separate cache lines (two of them)
}

// New returns a cache of about size entries, or nil (a cache that holds
// nothing) when size is 0.
func New(size int) *Cache {
	if size <= 0 {
		return nil
	}
	c := &Cache{perShard: max(1, size/shards)}
	c.missingPerShard = max(1, c.perShard/8)
	for i := range c.shards {
		c.shards[i].m = make(map[token.Hash]record)
		c.shards[i].missing = make(map[token.Hash]struct{})
	}
	return c
}

func (c *Cache) shard(h token.Hash) *shard { return &c.shards[h.Spread()%shards] }

// Get returns the cached record of h: a record with Kind 0 (and only the
// hash) for a hash remembered as missing from storage. Its second result
// is the shard generation to give to Put or PutMissing after a miss.
func (c *Cache) Get(h token.Hash) (storage.Token, uint64, bool) {
	if c == nil || c.off.Load() {
		return storage.Token{}, 0, false
	}
	s := c.shard(h)
	s.mu.RLock()
	r, ok := s.m[h]
	if !ok {
		_, ok = s.missing[h]
	}
	gen := s.gen
	s.mu.RUnlock()
	var t storage.Token
	if ok {
		t = r.token(h)
	}
	if ok {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
	return t, gen, ok
}

// Counts are how many lookups found their token, and how many did not,
// since the cache was made (a disabled cache counts nothing).
func (c *Cache) Counts() (hits, misses uint64) {
	if c == nil {
		return 0, 0
	}
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}

// Put stores t unless the shard was invalidated since gen was read. A full
// shard drops an arbitrary entry (Go's map order is random enough).
func (c *Cache) Put(t storage.Token, gen uint64) {
	if c == nil || c.off.Load() {
		return
	}
	s := c.shard(t.Hash)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if _, ok := s.m[t.Hash]; !ok && len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[t.Hash] = compact(t)
}

// record is a cached token, smaller than storage.Token (times as the
// stored seconds, storage.UnixSeconds; no hash: it is the key; nothing
// sealed): a cache of
// 100,000 takes about half the memory.
type record struct {
	kind                               token.Kind
	appID, userID, communityID, apiID  int64
	scope                              scope.Mask
	issued, expires, revoked, lastUsed int64 // Unix seconds, 0 for none
	ip                                 string
	flow                               storage.Flow
	reason                             storage.RevokeReason
	jkt                                string
	codeHash, secretHash               *token.Hash
}

func compact(t storage.Token) record {
	return record{kind: t.Kind, appID: t.AppID, userID: t.UserID, communityID: t.CommunityID, apiID: t.APIID, scope: t.Scope,
		issued: storage.UnixSeconds(t.IssuedAt), expires: storage.UnixSeconds(t.ExpiresAt),
		revoked: storage.UnixSeconds(t.RevokedAt), lastUsed: storage.UnixSeconds(t.LastUsedAt),
		ip: t.IP, flow: t.Flow, reason: t.RevokeReason, jkt: t.JKT, codeHash: t.CodeHash, secretHash: t.SecretHash}
}

// token is the record as storage gave it (Sealed aside: only storage's
// ReusableToken reads that); the zero record is a remembered miss, a
// token of Kind 0.
func (r record) token(h token.Hash) storage.Token {
	return storage.Token{Hash: h, Kind: r.kind, AppID: r.appID, UserID: r.userID, CommunityID: r.communityID, APIID: r.apiID, Scope: r.scope,
		IssuedAt: storage.FromUnixSeconds(r.issued), ExpiresAt: storage.FromUnixSeconds(r.expires),
		RevokedAt: storage.FromUnixSeconds(r.revoked), LastUsedAt: storage.FromUnixSeconds(r.lastUsed),
		IP: r.ip, Flow: r.flow, RevokeReason: r.reason, JKT: r.jkt, CodeHash: r.codeHash, SecretHash: r.secretHash}
}

// PutMissing remembers that storage has no token of hash h, unless the
// shard was invalidated since gen was read. A full set of missing hashes
// drops an arbitrary one of them.
func (c *Cache) PutMissing(h token.Hash, gen uint64) {
	if c == nil || c.off.Load() {
		return
	}
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if len(s.missing) >= c.missingPerShard {
		for k := range s.missing {
			delete(s.missing, k)
			break
		}
	}
	s.missing[h] = struct{}{}
}

// Invalidate drops the given hashes.
func (c *Cache) Invalidate(hashes []token.Hash) {
	if c == nil {
		return
	}
	for _, h := range hashes {
		s := c.shard(h)
		s.mu.Lock()
		delete(s.m, h)
		delete(s.missing, h)
		s.gen++
		s.mu.Unlock()
	}
}

// Clear drops everything: for a node that may have missed invalidations.
func (c *Cache) Clear() {
	if c == nil {
		return
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		clear(s.missing)
		s.gen++
		s.mu.Unlock()
	}
}

// Len is the number of cached records.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
