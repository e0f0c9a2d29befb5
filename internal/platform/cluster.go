package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// The API's per-token and per-app limits hold across nodes without a
// storage round trip per call: every node writes a heartbeat each
// HeartbeatEvery, counts the nodes seen within NodeTimeout, and enforces
// its share of each limit (the limit divided by that count). Behind a
// load balancer that spreads calls evenly, the shares add up to the limit.
//
// A node that dies stops beating: until NodeTimeout has passed the others
// still count it, and the cluster allows less than the limit (never
// more); then their shares grow back. A node that stops cleanly leaves at
// once. A node that joins counts itself at once, and the others within a
// heartbeat: for that moment the cluster may allow up to one share more.
//
// A node silent for NodeForgotten is deleted from storage (its heartbeats
// would otherwise pile up, one row per node that ever ran).
const (
	HeartbeatEvery = time.Second
	NodeTimeout    = 3 * time.Second
	NodeForgotten  = time.Minute
)

// cluster is what this node knows of the others.
type cluster struct {
	id    string       // this node's, random
	nodes atomic.Int64 // 0 until the first heartbeat: alone
}

func newNodeID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Heartbeat records this node as serving and learns how many nodes serve.
// On failure the last count stays.
func (p *Platform) Heartbeat(ctx context.Context) error {
	now := p.Now()
	n, err := p.store.Heartbeat(ctx, p.cluster.id, now, now.Add(-NodeTimeout), now.Add(-NodeForgotten))
	if err != nil {
		return err
	}
	p.cluster.nodes.Store(int64(n))
	return nil
}

// LeaveCluster removes this node from the count at once (it stops).
func (p *Platform) LeaveCluster(ctx context.Context) error {
	p.cluster.nodes.Store(0)
	return p.store.ForgetNode(ctx, p.cluster.id)
}

// Nodes is how many nodes share the API's limits: at least 1.
func (p *Platform) Nodes() int { return max(1, int(p.cluster.nodes.Load())) }
