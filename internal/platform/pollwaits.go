package platform

import (
	"errors"
	"slices"
	"sync"
)

// The bounds on waiting long polls. A wait holds a connection (a file
// descriptor) and about 15 KB; these bound what one community's keys, and
// all of them, can make a node hold.
const (
	// MaxPollWaitsPerCommunity is how many polls of one community wait at
	// once on a node; one more ends the oldest.
	MaxPollWaitsPerCommunity = 10
	// MaxPollWaits is how many polls wait at once on a node; one more is
	// refused with ErrPollBusy.
	MaxPollWaits = 4096
)

// ErrPollBusy refuses a poll when the node holds MaxPollWaits already: the
// client retries later.
var ErrPollBusy = errors.New("this node holds as many waiting long polls as it may")

// pollWaits are the polls waiting on this node. A second wait on the same
// key ends the first, as VK's server does: a bot that lost its connection
// and polls again is answered on the new one, and the old wait does not
// linger. Beyond a community's bound the oldest of its waits ends.
type pollWaits struct {
	mu          sync.Mutex
	n           int
	max, per    int
	byCommunity map[int64][]*pollWait // oldest first
}

// pollWait is one waiting poll; ended is closed when another ends it.
type pollWait struct {
	key   string
	ended chan struct{}
}

func newPollWaits(max, per int) *pollWaits {
	return &pollWaits{max: max, per: per, byCommunity: map[int64][]*pollWait{}}
}

// enter registers a wait on the community with key, ending the wait
// already on key and, when the community is at its bound, its oldest.
func (w *pollWaits) enter(communityID int64, key string) (*pollWait, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	waits := w.byCommunity[communityID]
	if i := slices.IndexFunc(waits, func(p *pollWait) bool { return p.key == key }); i >= 0 {
		waits = w.end(waits, i)
	}
	if len(waits) >= w.per {
		waits = w.end(waits, 0)
	}
	if w.n >= w.max {
		w.set(communityID, waits)
		return nil, ErrPollBusy
	}
	p := &pollWait{key: key, ended: make(chan struct{})}
	w.byCommunity[communityID] = append(waits, p)
	w.n++
	return p, nil
}

// end ends waits[i] and returns waits without it; w.mu is held.
func (w *pollWaits) end(waits []*pollWait, i int) []*pollWait {
	close(waits[i].ended)
	w.n--
	return slices.Delete(waits, i, i+1)
}

// leave removes p once its poll has answered, unless another ended it.
func (w *pollWaits) leave(communityID int64, p *pollWait) {
	w.mu.Lock()
	defer w.mu.Unlock()
	waits := w.byCommunity[communityID]
	if i := slices.Index(waits, p); i >= 0 {
		waits = slices.Delete(waits, i, i+1)
		w.n--
	}
	w.set(communityID, waits)
}

// set keeps the community's waits, and forgets a community with none.
func (w *pollWaits) set(communityID int64, waits []*pollWait) {
	if len(waits) == 0 {
		delete(w.byCommunity, communityID)
	} else {
		w.byCommunity[communityID] = waits
	}
}

// waiting is how many polls wait on the node.
func (w *pollWaits) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}
