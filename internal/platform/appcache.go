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
func (p *Platform) lookupApp(ctx context.Context, id int64) (storage.App, error) {
	p.apps.mu.RLock()
	c, ok := p.apps.m[id]
	p.apps.mu.RUnlock()
	since := p.apps.since
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
	p.apps.mu.Lock()
	if p.apps.m == nil || len(p.apps.m) >= maxCachedApps {
		p.apps.m = map[int64]cachedApp{}
	}
	if old, ok := p.apps.m[id]; !ok || old.read.Before(read) {
		p.apps.m[id] = cachedApp{app: a, read: read}
	}
	p.apps.mu.Unlock()
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
func (p *Platform) appChanged(id int64) {
	p.apps.mu.Lock()
	delete(p.apps.m, id)
	p.apps.mu.Unlock()
}
