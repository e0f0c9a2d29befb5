// Package methods holds the API methods of vk-wire.md §5. Each is a small
// value declaring the token kinds, scope, rate class and parameters it
// takes; the api dispatcher checks all of that before Handle runs.
package methods

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/api"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Platform is what the methods ask of the domain layer.
type Platform interface {
	UsersByID(ctx context.Context, ids []int64) ([]storage.User, error)
	CommunitiesOf(ctx context.Context, userID int64) ([]storage.Community, error)
	LookupCommunity(ctx context.Context, id int64) (storage.Community, error)
	CheckToken(ctx context.Context, raw string) (storage.Token, error)
	SendMessage(ctx context.Context, from storage.Token, peer int64, text string, randomID int64, now time.Time) (int64, error)
	SendNotifications(ctx context.Context, appID int64, users []int64, text string, now time.Time) ([]int64, error)
	AddAppEvent(ctx context.Context, e storage.AppEvent) error
}

// Deps are what the methods use.
type Deps struct {
	P         Platform
	Bots      Bots
	Callbacks Callbacks
	PublicURL *url.URL
}

// All returns every method.
func All(d Deps) []*api.Method {
	all := []*api.Method{
		{Name: "users.get", Kinds: api.Accept(token.User, token.Community, token.Service),
			Params: []api.Param{{Name: "user_ids", Type: api.String, Max: 20000}, {Name: "fields", Type: api.String, Max: 2000}},
			Handle: d.usersGet},
		{Name: "account.getAppPermissions", Kinds: api.Accept(token.User),
			Handle: func(c *api.Call) (any, error) { return int64(c.Token.Scope), nil }},
		{Name: "groups.get", Kinds: api.Accept(token.User), UserScope: scope.Groups,
			Params: []api.Param{{Name: "filter", Type: api.String, Max: 100}, {Name: "extended", Type: api.Int, Max: 1}},
			Handle: d.groupsGet},
		{Name: "groups.getById", Kinds: api.Accept(token.User, token.Community, token.Service),
			Params: []api.Param{{Name: "group_ids", Type: api.String, Max: 5000}, {Name: "group_id", Type: api.String, Max: 100}},
			Handle: d.groupsGetByID},
		{Name: "groups.getTokenPermissions", Kinds: api.Accept(token.Community), Handle: groupsGetTokenPermissions},
		{Name: "messages.send", Kinds: api.Accept(token.User, token.Community), UserScope: scope.Messages, CommunityScope: scope.CommunityMessages,
			Params: []api.Param{{Name: "peer_id", Type: api.Int, Min: -1 << 62}, {Name: "peer_ids", Type: api.String, Max: 2000}, {Name: "user_id", Type: api.Int}, {Name: "message", Type: api.String, Required: true, Max: 4096},
				{Name: "random_id", Type: api.Int, Required: true, Min: -1 << 62}},
			Handle: d.messagesSend},
		{Name: "secure.checkToken", Kinds: api.Accept(token.Service), Rate: api.RateSecure,
			Params: []api.Param{{Name: "token", Type: api.String, Required: true, Max: 200}, {Name: "ip", Type: api.String, Max: 100}},
			Handle: d.secureCheckToken},
		{Name: "secure.sendNotification", Kinds: api.Accept(token.Service), Rate: api.RateSecure,
			Params: []api.Param{{Name: "user_ids", Type: api.IntList, Max: 100}, {Name: "user_id", Type: api.Int, Min: 1}, {Name: "message", Type: api.String, Required: true, Max: 254}},
			Handle: d.secureSendNotification},
		{Name: "secure.addAppEvent", Kinds: api.Accept(token.Service), Rate: api.RateSecure,
			Params: []api.Param{{Name: "user_id", Type: api.Int, Required: true, Min: 1}, {Name: "activity_id", Type: api.Int, Required: true, Min: 1}, {Name: "value", Type: api.Int}},
			Handle: d.secureAddAppEvent},
		{Name: "utils.getServerTime", Open: true,
			Handle: func(c *api.Call) (any, error) { return c.Now.Unix(), nil }},
	}
	return append(all, d.botMethods()...)
}

// user is a users.get item.
type user struct {
	ID              int64  `json:"id"`
	FirstName       string `json:"first_name"`
	LastName        string `json:"last_name"`
	IsClosed        bool   `json:"is_closed"`
	CanAccessClosed bool   `json:"can_access_closed"`
	ScreenName      string `json:"screen_name,omitempty"`
	Domain          string `json:"domain,omitempty"`
	Photo50         string `json:"photo_50,omitempty"`
	Photo100        string `json:"photo_100,omitempty"`
	Photo200        string `json:"photo_200,omitempty"`
}

const maxUserIDs = 1000

func (d Deps) usersGet(c *api.Call) (any, error) {
	var ids []int64
	if raw := c.Str("user_ids"); raw != "" {
		for part := range strings.SplitSeq(raw, ",") {
			part = strings.TrimSpace(part)
			part = strings.TrimPrefix(part, "id")
			id, err := strconv.ParseInt(part, 10, 64)
			if err != nil || id <= 0 {
				return nil, api.ErrInvalidUserID
			}
			ids = append(ids, id)
		}
		if len(ids) > maxUserIDs {
			return nil, api.ErrParam("user_ids")
		}
	} else if c.Token.Kind == token.User {
		ids = []int64{c.Token.UserID}
	} else {
		return nil, api.ErrParam("user_ids")
	}
	users, err := d.P.UsersByID(c.Ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, api.ErrInvalidUserID
	}
	fields := map[string]bool{}
	for f := range strings.SplitSeq(c.Str("fields"), ",") {
		fields[strings.TrimSpace(f)] = true
	}
	out := make([]user, len(users))
	for i, u := range users {
		out[i] = user{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, CanAccessClosed: true}
		if fields["screen_name"] {
			out[i].ScreenName = u.Login
		}
		if fields["domain"] {
			out[i].Domain = u.Login
		}
		for size, dst := range map[int]*string{50: &out[i].Photo50, 100: &out[i].Photo100, 200: &out[i].Photo200} {
			if fields["photo_"+strconv.Itoa(size)] {
				*dst = platform.AvatarURL(d.PublicURL, u.ID, size)
			}
		}
	}
	return out, nil
}

type group struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	ScreenName string `json:"screen_name"`
	IsClosed   int    `json:"is_closed"`
	Type       string `json:"type"`
	IsAdmin    *int   `json:"is_admin,omitempty"`
	AdminLevel *int   `json:"admin_level,omitempty"`
}

func toGroup(c storage.Community) group {
	return group{ID: c.ID, Name: c.Name, ScreenName: "club" + strconv.FormatInt(c.ID, 10), Type: "group"}
}

func (d Deps) groupsGet(c *api.Call) (any, error) {
	communities, err := d.P.CommunitiesOf(c.Ctx, c.Token.UserID)
	if err != nil {
		return nil, err
	}
	if ext, _ := c.Int("extended"); ext == 1 {
		items := make([]group, len(communities))
		one, three := 1, 3
		for i, g := range communities {
			items[i] = toGroup(g)
			items[i].IsAdmin, items[i].AdminLevel = &one, &three
		}
		return map[string]any{"count": len(items), "items": items}, nil
	}
	ids := make([]int64, len(communities))
	for i, g := range communities {
		ids[i] = g.ID
	}
	return map[string]any{"count": len(ids), "items": ids}, nil
}

func (d Deps) groupsGetByID(c *api.Call) (any, error) {
	raw := c.Str("group_ids")
	if raw == "" {
		raw = c.Str("group_id")
	}
	var ids []int64
	if raw == "" {
		if c.Token.Kind != token.Community {
			return nil, api.ErrInvalidGroupID
		}
		ids = []int64{c.Token.CommunityID}
	}
	for part := range strings.SplitSeq(raw, ",") {
		if raw == "" {
			break
		}
		part = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(part), "club"), "public")
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil || id <= 0 {
			return nil, api.ErrInvalidGroupID
		}
		ids = append(ids, id)
	}
	if len(ids) > 500 {
		return nil, api.ErrInvalidGroupID
	}
	var out []group
	for _, id := range ids {
		g, err := d.P.LookupCommunity(c.Ctx, id)
		if platform.KindOf(err) == platform.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, toGroup(g))
	}
	if len(out) == 0 {
		return nil, api.ErrInvalidGroupID
	}
	// Since 5.194 VK wraps the list: {"groups":[…],"profiles":[]}.
	if versionAtLeast(c.Version, 5, 194) {
		return map[string]any{"groups": out, "profiles": []any{}}, nil
	}
	return out, nil
}

func versionAtLeast(v string, major, minor int) bool {
	maj, min, _ := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil {
		return true
	}
	return a > major || a == major && b >= minor
}

func groupsGetTokenPermissions(c *api.Call) (any, error) {
	type perm struct {
		Name    string `json:"name"`
		Setting int64  `json:"setting"`
	}
	perms := []perm{}
	for _, s := range c.Token.Scope.Scopes(scope.Community) {
		perms = append(perms, perm{s.Name, int64(s.Bit)})
	}
	return map[string]any{"mask": int64(c.Token.Scope), "permissions": perms}, nil
}

func (d Deps) messagesSend(c *api.Call) (any, error) {
	if list := c.Str("peer_ids"); list != "" {
		return d.messagesSendMany(c, list)
	}
	peer, ok := c.Int("peer_id")
	if !ok {
		peer, ok = c.Int("user_id")
	}
	if !ok || peer == 0 || peer < 0 && c.Token.Kind != token.User {
		return nil, api.ErrParam("peer_id")
	}
	randomID, _ := c.Int("random_id")
	id, err := d.P.SendMessage(c.Ctx, c.Token, peer, c.Str("message"), randomID, c.Now)
	if errors.Is(err, platform.ErrNoSuchUser) {
		return nil, api.ErrInvalidUserID
	}
	if errors.Is(err, platform.ErrNoSuchCommunity) {
		return nil, api.ErrParam("peer_id")
	}
	if errors.Is(err, platform.ErrMessagesDenied) {
		return nil, errMessagesDenied
	}
	if err != nil {
		return nil, err
	}
	return id, nil
}

// messagesSendMany is messages.send with peer_ids (VK's answer is then a
// list, one item per peer; vk-io's context.send sends this way).
func (d Deps) messagesSendMany(c *api.Call, list string) (any, error) {
	// Every peer is read before anything is sent: a malformed list sends
	// nothing.
	var peers []int64
	for part := range strings.SplitSeq(list, ",") {
		peer, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		if err != nil || peer == 0 || peer < 0 && c.Token.Kind != token.User || len(peers) == 100 {
			return nil, api.ErrParam("peer_ids")
		}
		peers = append(peers, peer)
	}
	var out []map[string]int64
	for _, peer := range peers {
		randomID, _ := c.Int("random_id")
		id, err := d.P.SendMessage(c.Ctx, c.Token, peer, c.Str("message"), randomID, c.Now)
		switch {
		case errors.Is(err, platform.ErrNoSuchUser):
			return nil, api.ErrInvalidUserID
		case errors.Is(err, platform.ErrNoSuchCommunity):
			return nil, api.ErrParam("peer_ids")
		case errors.Is(err, platform.ErrMessagesDenied):
			return nil, errMessagesDenied
		case err != nil:
			return nil, err
		}
		out = append(out, map[string]int64{"peer_id": peer, "message_id": id, "conversation_message_id": id})
	}
	return out, nil
}

// errMessagesDenied is VK's error 901: the user denied the community's
// messages.
var errMessagesDenied = &api.Error{Code: 901, Msg: "Can't send messages for users without permission"}

var (
	errCheckInvalid = &api.Error{Code: 15, Msg: "Access denied: invalid token."}
	errCheckIP      = &api.Error{Code: 15, Msg: "Access denied: token was issued to another ip address."}
)

func (d Deps) secureCheckToken(c *api.Call) (any, error) {
	t, err := d.P.CheckToken(c.Ctx, c.Str("token"))
	switch {
	case platform.Refused(err):
		return nil, errCheckInvalid
	case err != nil:
		return nil, err
	}
	// An app checks the tokens issued to it, and only user tokens.
	if t.AppID != c.Token.AppID || t.Kind != token.User || t.APIID != 0 {
		return nil, errCheckInvalid
	}
	if ip := c.Str("ip"); ip != "" && ip != t.IP {
		return nil, errCheckIP
	}
	var exp int64
	if !t.ExpiresAt.IsZero() {
		exp = t.ExpiresAt.Unix()
	}
	return map[string]int64{"success": 1, "user_id": t.UserID, "date": t.IssuedAt.Unix(), "expire": exp}, nil
}

func (d Deps) secureSendNotification(c *api.Call) (any, error) {
	ids := c.IntList("user_ids")
	if id, ok := c.Int("user_id"); ok {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, api.ErrParam("user_ids")
	}
	// Only users who authorized the app receive its notifications.
	return d.P.SendNotifications(c.Ctx, c.Token.AppID, ids, c.Str("message"), c.Now)
}

func (d Deps) secureAddAppEvent(c *api.Call) (any, error) {
	uid, _ := c.Int("user_id")
	activity, _ := c.Int("activity_id")
	value, _ := c.Int("value")
	e := storage.AppEvent{AppID: c.Token.AppID, UserID: uid, ActivityID: activity, Value: value, CreatedAt: c.Now}
	if err := d.P.AddAppEvent(c.Ctx, e); errors.Is(err, platform.ErrNoSuchUser) {
		return nil, api.ErrInvalidUserID
	} else if err != nil {
		return nil, fmt.Errorf("secure.addAppEvent: %w", err)
	}
	return 1, nil
}
