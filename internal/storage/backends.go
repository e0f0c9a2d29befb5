package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Target names a storage to open: the backend and where its data is.
type Target struct {
	// Backend is a registered backend's name ("sqlite", "postgres").
	Backend string
	// Path is a file backend's (SQLite's) database file.
	Path string
	// URL is a server backend's (PostgreSQL's) connection URL.
	URL string
	// FullSync asks a file backend to sync every commit to disk.
	FullSync bool
}

// An Opener opens a backend's storage at t, applying pending migrations.
type Opener func(ctx context.Context, t Target) (Storage, error)

var backends = struct {
	sync.RWMutex
	m map[string]Opener
}{m: map[string]Opener{}}

// Register makes a backend available to Open under name; each backend's
// package registers itself when imported, so a third backend is one
// package and one import.
func Register(name string, open Opener) {
	backends.Lock()
	defer backends.Unlock()
	if _, dup := backends.m[name]; dup {
		panic("storage: backend " + name + " registered twice")
	}
	backends.m[name] = open
}

// Open opens the storage t names, with the backend registered under
// t.Backend.
func Open(ctx context.Context, t Target) (Storage, error) {
	backends.RLock()
	open, ok := backends.m[t.Backend]
	names := make([]string, 0, len(backends.m))
	for n := range backends.m {
		names = append(names, n)
	}
	backends.RUnlock()
	if !ok {
		slices.Sort(names)
		return nil, fmt.Errorf("storage: no backend %q (registered: %s)", t.Backend, strings.Join(names, ", "))
	}
	return open(ctx, t)
}
