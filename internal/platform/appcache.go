package platform

import (
	"context"
	"slices"
	"sync"
	"time"

	"latchkey/internal/storage"
)

// apps keeps app records read for client authentication and the OAuth
// endpoints for a moment: an app's server asks for tokens thousands of
// times a second, and its record changes once in a while. This node's
// changes drop the record at once; another node's (or the command line's)
// show within appTTL, inside the one second every revocation is promised
// in (a retired secret stops working everywhere by then). The age is real
// time, not the injected clock: it measures how long other processes'
// changes take to be seen.
type apps struct {
	mu sync.RWMutex
	m  map[int64]cachedApp
	// since is time.Since, or a test's clock.
	since func(time.Time) time.Duration
}

type cachedApp struct {
	app  storage.App
	read time.Time
}

const (
	appTTL = 500 * time.Millisecond
	// maxCachedApps bounds the cache; a full one starts over.
	maxCachedApps = 10_000
)

// lookupApp is GetApp through the cache. The record returned is the
// caller's own.
func (p *Apps) lookupApp(ctx context.Context, id int64) (storage.App, error) {
	p.cache.mu.RLock()
	c, ok := p.cache.m[id]
	p.cache.mu.RUnlock()
	since := p.cache.since
	if since == nil {
		since = time.Since
	}
	if ok && since(c.read) < appTTL {
		return own(c.app), nil
	}
	read := time.Now()
	a, err := p.store.GetApp(ctx, id)
	if err != nil {
		return a, err
	}
	p.cache.mu.Lock()
	if p.cache.m == nil || len(p.cache.m) >= maxCachedApps {
		p.cache.m = map[int64]cachedApp{}
	}
	if old, ok := p.cache.m[id]; !ok || old.read.Before(read) {
		p.cache.m[id] = cachedApp{app: a, read: read}
	}
	p.cache.mu.Unlock()
	return own(a), nil
}

// own copies what the cached record shares.
func own(a storage.App) storage.App {
	a.RedirectURIs = slices.Clone(a.RedirectURIs)
	if a.OldSecret != nil {
		o := *a.OldSecret
		a.OldSecret = &o
	}
	return a
}

// appChanged drops app id's record: this node changed it.
func (p *Apps) appChanged(id int64) {
	p.cache.mu.Lock()
	delete(p.cache.m, id)
	p.cache.mu.Unlock()
}
