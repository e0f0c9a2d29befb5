package platform

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"latchkey/internal/storage"
)

// Bots is the one owner of a community's events and of their delivery to
// Bots Long Poll (vk-wire.md §7): events are numbered per community, kept
// in storage, and a waiting poll wakes when one is published, without
// polling storage while idle.
type Bots struct {
	*core
	store eventStore
	mu    sync.Mutex
	// changed holds, per community, a channel closed at its next event.
	changed map[int64]chan struct{}
	// waits bounds the polls waiting on this node.
	waits *pollWaits
	// onEvent tells the other nodes (Options.OnEvent).
	onEvent func(communityID int64)

	communities *Communities
	callbacks   *Callbacks
}

// eventStore is what bots and the Callback API keep: a community's events
// and settings, and its callback servers with their deliveries.
type eventStore interface {
	storage.Bots
	storage.Callbacks
}

// The event types bots get.
const (
	EventMessageNew   = "message_new"
	EventMessageReply = "message_reply"
	EventMessageAllow = "message_allow"
	EventMessageDeny  = "message_deny"
	EventGroupJoin    = "group_join"
	EventGroupLeave   = "group_leave"
)

// EventTypes are every type, in VK's order.
var EventTypes = []string{EventMessageNew, EventMessageReply, EventMessageAllow, EventMessageDeny, EventGroupJoin, EventGroupLeave}

// LongPollKeyTTL is how long a key from groups.getLongPollServer works;
// then the poll answers failed 2 and the bot asks for a new one.
const LongPollKeyTTL = 6 * time.Hour

// EventRetention is how long community events are kept (vk-wire.md §7: at
// least a day); Cleanup deletes older ones.
const EventRetention = 25 * time.Hour

// MaxLongPollWait is the longest a poll waits (wait=, seconds).
const MaxLongPollWait = 90 * time.Second

// record is the stored form of an event (object is one of ours: it always
// encodes).
func (b *Bots) record(communityID int64, typ string, object any) *storage.CommunityEvent {
	raw, _ := json.Marshal(object)
	return &storage.CommunityEvent{CommunityID: communityID, Type: typ, Object: string(raw), CreatedAt: b.now()}
}

// published wakes the polls waiting on the community, here and on the
// other nodes.
func (b *Bots) published(communityID int64) {
	b.Notify(communityID)
	b.callbacks.Wake()
	if b.onEvent != nil {
		b.onEvent(communityID)
	}
}

// Notify wakes the community's waiting polls: an event was published here
// or, through the bus, on another node.
func (b *Bots) Notify(communityID int64) {
	b.mu.Lock()
	if ch, ok := b.changed[communityID]; ok {
		close(ch)
		delete(b.changed, communityID)
	}
	b.mu.Unlock()
}

// next is a channel closed at the community's next event.
func (b *Bots) next(communityID int64) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = map[int64]chan struct{}{}
	}
	ch, ok := b.changed[communityID]
	if !ok {
		ch = make(chan struct{})
		b.changed[communityID] = ch
	}
	return ch
}

// Update is an event as a poll delivers it.
type Update struct {
	GroupID int64           `json:"group_id"`
	Type    string          `json:"type"`
	EventID string          `json:"event_id"`
	V       string          `json:"v"`
	Object  json.RawMessage `json:"object"`
}

// ErrPollTS is a ts out of range: the poll answers failed 1 with the
// current one.
var ErrPollTS = errors.New("ts out of range")

// ErrPollLost is a ts whose events are no longer kept (older than
// EventRetention): the poll answers failed 3, and the bot asks for a new
// key and ts.
var ErrPollLost = errors.New("the events since ts are no longer kept")

// Poll returns the community's events from ts on of the types its
// settings deliver, waiting up to wait for the first one, and the ts to
// ask with next. A ts beyond the next event's is ErrPollTS, with the ts
// to use. A poll with the same key ends this one's wait, as a timeout
// would; so does the community's MaxPollWaitsPerCommunity-th next poll.
// ErrPollBusy: the node holds MaxPollWaits polls.
func (b *Bots) Poll(ctx context.Context, communityID int64, key string, ts int64, wait time.Duration) ([]Update, int64, error) {
	last, err := b.store.LastEventSeq(ctx, communityID)
	if err != nil {
		return nil, 0, err
	}
	if ts < 1 || ts > last+1 {
		return nil, last + 1, ErrPollTS
	}
	waiting, err := b.waits.enter(communityID, key)
	if err != nil {
		return nil, ts, err
	}
	defer b.waits.leave(communityID, waiting)
	timer := time.NewTimer(min(wait, MaxLongPollWait))
	defer timer.Stop()
	for {
		changed := b.next(communityID) // before reading: no event slips between
		es, err := b.store.CommunityEvents(ctx, communityID, ts, 100)
		if err != nil {
			return nil, 0, err
		}
		if ts <= last && (len(es) == 0 || es[0].Seq > ts) {
			return nil, last + 1, ErrPollLost // events ts… were deleted
		}
		if len(es) > 0 {
			ls, err := b.store.LongPollSettings(ctx, communityID)
			if err != nil {
				return nil, 0, err
			}
			updates := []Update{}
			for _, e := range es {
				if slices.Contains(ls.Events, e.Type) {
					updates = append(updates, Update{GroupID: communityID, Type: e.Type, V: ls.APIVersion, Object: json.RawMessage(e.Object),
						EventID: strconv.FormatInt(communityID, 36) + "_" + strconv.FormatInt(e.Seq, 36)})
				}
			}
			return updates, es[len(es)-1].Seq + 1, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return []Update{}, ts, nil
		case <-waiting.ended:
			return []Update{}, ts, nil
		case <-ctx.Done():
			return nil, ts, ctx.Err()
		}
	}
}

// ErrLongPollOff is groups.getLongPollServer's answer while Long Poll is
// off, in VK's exact words (vk-wire.md §7): bots match them to switch it
// on with groups.setLongPollSettings.
var ErrLongPollOff = &Error{Kind: Invalid, Message: "longpoll for this group is not enabled."}

// PollsWaiting is how many long polls wait on this node.
func (b *Bots) PollsWaiting() int { return b.waits.waiting() }

// LongPollServer is groups.getLongPollServer's answer for the community:
// a key (expiring after LongPollKeyTTL) and the ts of its next event.
func (b *Bots) LongPollServer(ctx context.Context, communityID int64) (key string, ts int64, err error) {
	ls, err := b.store.LongPollSettings(ctx, communityID)
	if err != nil {
		return "", 0, err
	}
	if !ls.Enabled {
		return "", 0, ErrLongPollOff
	}
	last, err := b.store.LastEventSeq(ctx, communityID)
	if err != nil {
		return "", 0, err
	}
	msg := strconv.FormatInt(communityID, 10) + "." + strconv.FormatInt(b.Now().Unix(), 10)
	return strconv.FormatInt(b.Now().Unix(), 10) + "." + b.Keys.Tag("longpoll", msg), last + 1, nil
}

// KeyValid reports whether key is a live long poll key of the community.
func (b *Bots) KeyValid(communityID int64, key string) bool {
	issued, tag, ok := strings.Cut(key, ".")
	at, err := strconv.ParseInt(issued, 10, 64)
	if !ok || err != nil {
		return false
	}
	if !b.Keys.VerifyTag("longpoll", strconv.FormatInt(communityID, 10)+"."+issued, tag) {
		return false
	}
	age := b.Now().Sub(time.Unix(at, 0))
	return age >= -time.Minute && age < LongPollKeyTTL
}

// ErrMessagesDenied refuses a community's message to a user who denied it
// (messages.denyMessagesFromGroup).
var ErrMessagesDenied = &Error{Kind: Forbidden, Message: "the user does not allow messages from this community"}

// SetMember makes the user join (member) or leave the community; a
// change is its bots' group_join or group_leave.
func (b *Bots) SetMember(ctx context.Context, userID, communityID int64, member bool) error {
	if _, err := b.communities.LookupCommunity(ctx, communityID); err != nil {
		return err
	}
	e := b.record(communityID, EventGroupLeave, map[string]any{"user_id": userID, "self": 1})
	if member {
		e = b.record(communityID, EventGroupJoin, map[string]any{"user_id": userID, "join_type": "join"})
	}
	changed, err := b.store.SetMembership(ctx, communityID, userID, member, b.now(), e)
	if changed {
		b.published(communityID)
	}
	return err
}

// SetMessagesAllowed records whether the user lets the community write to
// them: message_allow (with key, the app's string from the request) or
// message_deny for its bots.
func (b *Bots) SetMessagesAllowed(ctx context.Context, userID, communityID int64, allowed bool, key string) error {
	if _, err := b.communities.LookupCommunity(ctx, communityID); err != nil {
		return err
	}
	e := b.record(communityID, EventMessageDeny, map[string]any{"user_id": userID})
	if allowed {
		e = b.record(communityID, EventMessageAllow, map[string]any{"user_id": userID, "key": key})
	}
	// Allowing again is still an event (VK sends message_allow each time a
	// user allows); denying twice is not.
	due := func(changed bool) *storage.CommunityEvent {
		if allowed || changed {
			return e
		}
		return nil
	}
	published, err := b.store.SetMessagesAllowed(ctx, communityID, userID, allowed, b.now(), due)
	if published {
		b.published(communityID)
	}
	return err
}

// MessagesAllowed reports whether the community may write to the user.
func (b *Bots) MessagesAllowed(ctx context.Context, communityID, userID int64) (bool, error) {
	return b.store.MessagesAllowed(ctx, communityID, userID)
}

// Settings are the community's Long Poll settings.
func (b *Bots) Settings(ctx context.Context, communityID int64) (storage.LongPollSettings, error) {
	return b.store.LongPollSettings(ctx, communityID)
}

// UpdateSettings changes the community's Long Poll settings: enabled and
// apiVersion when given, and each event of flags on or off.
func (b *Bots) UpdateSettings(ctx context.Context, communityID int64, enabled *bool, apiVersion string, flags map[string]bool) error {
	_, err := b.store.UpdateLongPollSettings(ctx, communityID, func(s *storage.LongPollSettings) error {
		if enabled != nil {
			s.Enabled = *enabled
		}
		if apiVersion != "" {
			s.APIVersion = apiVersion
		}
		var err error
		s.Events, err = withEvents(s.Events, flags)
		return err
	})
	return err
}

// withEvents is the event list with each of flags turned on (added once)
// or off; flags must be of EventTypes.
func withEvents(events []string, flags map[string]bool) ([]string, error) {
	for t, on := range flags {
		if !slices.Contains(EventTypes, t) {
			return nil, invalid(t, "is not an event type bots get")
		}
		if on && !slices.Contains(events, t) {
			events = append(events, t)
		} else if !on {
			events = slices.DeleteFunc(events, func(e string) bool { return e == t })
		}
	}
	return events, nil
}

// BotsOverview is what a community's page shows of its bots.
type BotsOverview struct {
	LongPoll   storage.LongPollSettings
	Servers    []storage.CallbackServer
	Deliveries []storage.Delivery
}

// BotsOverview is the community's bot settings and recent deliveries, for
// its admins.
func (p *Bots) BotsOverview(ctx context.Context, actor Actor, communityID int64) (BotsOverview, error) {
	var o BotsOverview
	if _, err := p.communities.Community(ctx, actor, communityID); err != nil {
		return o, err
	}
	var err error
	if o.LongPoll, err = p.store.LongPollSettings(ctx, communityID); err != nil {
		return o, err
	}
	if o.Servers, err = p.store.CallbackServers(ctx, communityID); err != nil {
		return o, err
	}
	o.Deliveries, err = p.store.Deliveries(ctx, communityID, 20)
	return o, err
}
