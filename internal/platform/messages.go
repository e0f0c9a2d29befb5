package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Messages between users and communities, apps' notifications and events,
// and the inbox that shows them.

// ErrNoSuchUser answers a message or event for a user who does not exist.
var ErrNoSuchUser = &Error{Kind: NotFound, Field: "user", Message: "no such user"}

// ErrNoSuchCommunity answers a message to a community that does not exist.
var ErrNoSuchCommunity = &Error{Kind: NotFound, Field: "peer_id", Message: "no such community"}

// Messages is the one owner of messages between users, communities and
// apps, and of what a message to or from a community tells its bots.
type Messages struct {
	*core
	store interface {
		storage.Messages
		storage.Communities
		storage.Users
		storage.Bots
		storage.Apps
	}
	communities *Communities
	bots        *Bots
	consents    *Consents
}

// SendMessage stores a message from the token's user or community to peer
// (a user, or -id of a community), deduplicated by randomID among the
// sending app's messages, and returns its id. A user's message to a
// community is its bots' message_new; a community's to a user, their
// message_reply (vk-wire.md §7).
func (p *Messages) SendMessage(ctx context.Context, from storage.Token, peer int64, text string, randomID int64, now time.Time) (int64, error) {
	if !validText(text) {
		return 0, invalid("message", "must be text: valid UTF-8 without NUL")
	}
	if peer < 0 {
		if from.Kind == token.Community {
			return 0, ErrNoSuchUser // communities write to users only
		}
		if _, err := p.store.GetCommunity(ctx, -peer); errors.Is(err, storage.ErrNotFound) {
			return 0, ErrNoSuchCommunity
		} else if err != nil {
			return 0, err
		}
	} else if _, err := p.store.GetUser(ctx, peer); errors.Is(err, storage.ErrNotFound) {
		return 0, ErrNoSuchUser
	} else if err != nil {
		return 0, err
	} else if from.Kind == token.Community {
		ok, err := p.store.MessagesAllowed(ctx, from.CommunityID, peer)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, ErrMessagesDenied
		}
	}
	m := storage.Message{AppID: from.AppID, PeerID: peer, Text: text, RandomID: randomID, CreatedAt: now}
	if from.Kind == token.Community {
		m.FromCommunityID = from.CommunityID
	} else {
		m.FromUserID = from.UserID
	}
	// The message and its bots' event are one write: no message without
	// its event, and a duplicate gets none.
	var community int64
	event := func(m storage.Message) *storage.CommunityEvent {
		switch {
		case peer < 0:
			community = -peer
			msg := botMessage{ID: m.ID, Date: now.Unix(), PeerID: from.UserID, FromID: from.UserID, Text: text, RandomID: randomID,
				ConversationMessageID: m.ID, Attachments: []any{}, FwdMessages: []any{}}
			return p.bots.record(community, EventMessageNew, map[string]any{"message": msg, "client_info": clientInfo})
		case from.Kind == token.Community:
			community = from.CommunityID
			return p.bots.record(community, EventMessageReply, botMessage{ID: m.ID, Date: now.Unix(), PeerID: peer,
				FromID: -from.CommunityID, Text: text, RandomID: randomID, ConversationMessageID: m.ID, Out: 1, Attachments: []any{}, FwdMessages: []any{}})
		}
		return nil
	}
	if err := p.store.CreateMessage(ctx, &m, event); err != nil {
		return 0, err
	}
	if community != 0 && !m.Duplicate {
		p.bots.published(community)
	}
	return m.ID, nil
}

// botMessage is a message as bots' events carry it.
type botMessage struct {
	ID                    int64  `json:"id"`
	Date                  int64  `json:"date"`
	PeerID                int64  `json:"peer_id"`
	FromID                int64  `json:"from_id"`
	Text                  string `json:"text"`
	RandomID              int64  `json:"random_id"`
	ConversationMessageID int64  `json:"conversation_message_id"`
	Out                   int    `json:"out"`
	Attachments           []any  `json:"attachments"`
	FwdMessages           []any  `json:"fwd_messages"`
}

// clientInfo is what message_new says of the writer's client: text only.
var clientInfo = map[string]any{"button_actions": []string{"text"}, "keyboard": true, "inline_keyboard": true, "carousel": false, "lang_id": 0}

// SendNotifications notifies each of users who has authorized the app
// (others are skipped), once each, and returns those it notified.
func (p *Messages) SendNotifications(ctx context.Context, appID int64, users []int64, text string, now time.Time) ([]int64, error) {
	if !validText(text) {
		return nil, invalid("message", "must be text: valid UTF-8 without NUL")
	}
	sent := []int64{}
	seen := map[int64]bool{}
	for _, id := range users {
		if seen[id] || id <= 0 {
			continue
		}
		seen[id] = true
		ok, err := p.consents.Authorized(ctx, id, appID)
		if err != nil {
			return sent, err
		}
		if !ok {
			continue
		}
		n := storage.Notification{AppID: appID, UserID: id, Message: text, CreatedAt: now}
		if err := p.store.CreateNotification(ctx, &n); err != nil {
			return sent, err
		}
		sent = append(sent, id)
	}
	return sent, nil
}

// AddAppEvent records a user's activity in the app (secure.addAppEvent).
func (p *Messages) AddAppEvent(ctx context.Context, e storage.AppEvent) error {
	err := p.store.CreateAppEvent(ctx, &e)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoSuchUser
	}
	return err
}

// InboxItem is a notification or message as the inbox shows it.
type InboxItem struct {
	From   string
	Text   string
	Unread bool
	At     time.Time
	// Sent: the user's own message (to a community).
	Sent bool
}

// Inbox returns the user's notifications from apps and messages from users
// and communities, newest first, each sender named once.
func (p *Messages) Inbox(ctx context.Context, userID int64) ([]InboxItem, error) {
	notes, err := p.store.ListNotifications(ctx, userID)
	if err != nil {
		return nil, err
	}
	msgs, err := p.store.ListMessages(ctx, userID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	name := func(key string, load func() (string, error)) string {
		if n, ok := names[key]; ok {
			return n
		}
		n, err := load()
		if err != nil {
			n = key
		}
		names[key] = n
		return n
	}
	var items []InboxItem
	for _, n := range notes {
		from := name(fmt.Sprint("app ", n.AppID), func() (string, error) {
			a, err := p.store.GetApp(ctx, n.AppID)
			return a.Title, err
		})
		items = append(items, InboxItem{From: from, Text: n.Message, Unread: n.ReadAt.IsZero(), At: n.CreatedAt})
	}
	for _, m := range msgs {
		var from string
		if m.FromCommunityID != 0 {
			from = name(fmt.Sprint("community ", m.FromCommunityID), func() (string, error) {
				c, err := p.store.GetCommunity(ctx, m.FromCommunityID)
				return c.Name, err
			})
		} else {
			from = name(fmt.Sprint("user ", m.FromUserID), func() (string, error) {
				u, err := p.store.GetUser(ctx, m.FromUserID)
				return strings.TrimSpace(u.FirstName + " " + u.LastName), err
			})
		}
		items = append(items, InboxItem{From: from, Text: m.Text, Unread: m.ReadAt.IsZero(), At: m.CreatedAt})
	}
	// The user's side of their conversations with communities.
	sent, err := p.store.ListSentToCommunities(ctx, userID, 200)
	if err != nil {
		return nil, err
	}
	for _, m := range sent {
		to := name(fmt.Sprint("community ", -m.PeerID), func() (string, error) {
			c, err := p.store.GetCommunity(ctx, -m.PeerID)
			return c.Name, err
		})
		items = append(items, InboxItem{From: "→ " + to, Text: m.Text, At: m.CreatedAt, Sent: true})
	}
	slices.SortStableFunc(items, func(a, b InboxItem) int { return b.At.Compare(a.At) })
	return items, nil
}

// ConversationItem is a message of a community's conversations, as its
// page lists them.
type ConversationItem struct {
	User     storage.User
	Incoming bool // from the user; else the community's answer
	Text     string
	At       time.Time
}

// CommunityConversations are the community's latest messages with users,
// for its admins: what users wrote and what it answered.
func (p *Messages) CommunityConversations(ctx context.Context, actor Actor, communityID int64, limit int) ([]ConversationItem, error) {
	if _, err := p.communities.Community(ctx, actor, communityID); err != nil {
		return nil, err
	}
	ms, err := p.store.ListCommunityMessages(ctx, communityID, limit)
	if err != nil {
		return nil, err
	}
	users := map[int64]storage.User{}
	var out []ConversationItem
	for _, m := range ms {
		id, incoming := m.PeerID, m.FromUserID != 0
		if incoming {
			id = m.FromUserID
		}
		u, ok := users[id]
		if !ok {
			if u, err = p.store.GetUser(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, err
			}
			users[id] = u
		}
		out = append(out, ConversationItem{User: u, Incoming: incoming, Text: m.Text, At: m.CreatedAt})
	}
	return out, nil
}

// MarkInboxRead marks everything in the user's inbox read.
func (p *Messages) MarkInboxRead(ctx context.Context, userID int64) error {
	now := p.Now()
	return errors.Join(p.store.MarkNotificationsRead(ctx, userID, now), p.store.MarkMessagesRead(ctx, userID, now))
}
