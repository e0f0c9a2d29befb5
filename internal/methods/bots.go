package methods

import (
	"context"
	"slices"
	"strconv"

	"latchkey/internal/api"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Bots are what the Bots Long Poll methods ask of the platform
// (platform.Bots).
type Callbacks interface {
	Add(ctx context.Context, creator, communityID int64, rawURL, title, secret string) (storage.CallbackServer, error)
	Servers(ctx context.Context, communityID int64) ([]platform.CallbackServerView, error)
	Delete(ctx context.Context, communityID, id int64) error
	SetSettings(ctx context.Context, communityID, id int64, apiVersion string, events map[string]bool) error
	ConfirmationCode(communityID int64) string
}

// Bots are what the Bots Long Poll methods ask of the platform.
type Bots interface {
	SetMember(ctx context.Context, userID, communityID int64, member bool) error
	SetMessagesAllowed(ctx context.Context, userID, communityID int64, allowed bool, key string) error
	MessagesAllowed(ctx context.Context, communityID, userID int64) (bool, error)
	LongPollServer(ctx context.Context, communityID int64) (key string, ts int64, err error)
	Settings(ctx context.Context, communityID int64) (storage.LongPollSettings, error)
	UpdateSettings(ctx context.Context, communityID int64, enabled *bool, apiVersion string, flags map[string]bool) error
}

// botMethods are the Bots Long Poll methods (vk-wire.md §7), for a
// community token of the community they name; the settings need its
// manage scope.
func (d Deps) botMethods() []*api.Method {
	flags := []api.Param{{Name: "group_id", Type: api.Int, Required: true, Min: 1}, {Name: "enabled", Type: api.Int, Max: 1},
		{Name: "api_version", Type: api.String, Max: 10}}
	for _, t := range platform.EventTypes {
		flags = append(flags, api.Param{Name: t, Type: api.Int, Max: 1})
	}
	group := []api.Param{{Name: "group_id", Type: api.Int, Required: true, Min: 1}}
	return []*api.Method{
		{Name: "groups.setLongPollSettings", Kinds: api.Accept(token.Community), CommunityScope: scope.CommunityManage, Params: flags, Handle: d.setLongPollSettings},
		{Name: "groups.getLongPollSettings", Kinds: api.Accept(token.Community), CommunityScope: scope.CommunityManage, Params: group, Handle: d.getLongPollSettings},
		{Name: "groups.getLongPollServer", Kinds: api.Accept(token.Community), Params: group, Handle: d.getLongPollServer},
		{Name: "groups.join", Kinds: api.Accept(token.User), UserScope: scope.Groups, Params: group,
			Handle: func(c *api.Call) (any, error) {
				return d.userToGroup(c, func(g int64) error { return d.Bots.SetMember(c.Ctx, c.Token.UserID, g, true) })
			}},
		{Name: "groups.leave", Kinds: api.Accept(token.User), UserScope: scope.Groups, Params: group,
			Handle: func(c *api.Call) (any, error) {
				return d.userToGroup(c, func(g int64) error { return d.Bots.SetMember(c.Ctx, c.Token.UserID, g, false) })
			}},
		{Name: "messages.allowMessagesFromGroup", Kinds: api.Accept(token.User), UserScope: scope.Messages,
			Params: append(group, api.Param{Name: "key", Type: api.String, Max: 256}),
			Handle: func(c *api.Call) (any, error) {
				return d.userToGroup(c, func(g int64) error { return d.Bots.SetMessagesAllowed(c.Ctx, c.Token.UserID, g, true, c.Str("key")) })
			}},
		{Name: "messages.denyMessagesFromGroup", Kinds: api.Accept(token.User), UserScope: scope.Messages, Params: group,
			Handle: func(c *api.Call) (any, error) {
				return d.userToGroup(c, func(g int64) error { return d.Bots.SetMessagesAllowed(c.Ctx, c.Token.UserID, g, false, "") })
			}},
		{Name: "groups.addCallbackServer", Kinds: api.Accept(token.Community), CommunityScope: scope.CommunityManage,
			Params: append(group, api.Param{Name: "url", Type: api.String, Required: true, Max: 2048}, api.Param{Name: "title", Type: api.String, Required: true, Max: 14},
				api.Param{Name: "secret_key", Type: api.String, Max: 50}), Handle: d.addCallbackServer},
		{Name: "groups.getCallbackServers", Kinds: api.Accept(token.Community), CommunityScope: scope.CommunityManage, Params: group, Handle: d.getCallbackServers},
		{Name: "groups.deleteCallbackServer", Kinds: api.Accept(token.Community), CommunityScope: scope.CommunityManage,
			Params: append(group, api.Param{Name: "server_id", Type: api.Int, Required: true, Min: 1}), Handle: d.deleteCallbackServer},
		{Name: "groups.getCallbackConfirmationCode", Kinds: api.Accept(token.Community), CommunityScope: scope.CommunityManage, Params: group,
			Handle: func(c *api.Call) (any, error) {
				id, err := ownGroup(c)
				if err != nil {
					return nil, err
				}
				return map[string]string{"code": d.Callbacks.ConfirmationCode(id)}, nil
			}},
		{Name: "groups.setCallbackSettings", Kinds: api.Accept(token.Community), CommunityScope: scope.CommunityManage,
			Params: append(flags[:1:1], append([]api.Param{{Name: "server_id", Type: api.Int, Required: true, Min: 1}}, flags[2:]...)...), Handle: d.setCallbackSettings},
		{Name: "messages.isMessagesFromGroupAllowed", Kinds: api.Accept(token.Community),
			Params: append(group, api.Param{Name: "user_id", Type: api.Int, Required: true, Min: 1}), Handle: d.isMessagesAllowed},
	}
}

func (d Deps) addCallbackServer(c *api.Call) (any, error) {
	id, err := ownGroup(c)
	if err != nil {
		return nil, err
	}
	s, err := d.Callbacks.Add(c.Ctx, c.Token.UserID, id, c.Str("url"), c.Str("title"), c.Str("secret_key"))
	if platform.KindOf(err) == platform.Invalid || platform.KindOf(err) == platform.Conflict {
		return nil, &api.Error{Code: 100, Msg: "One of the parameters specified was missing or invalid: " + err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return map[string]int64{"server_id": s.ID}, nil
}

func (d Deps) getCallbackServers(c *api.Call) (any, error) {
	id, err := ownGroup(c)
	if err != nil {
		return nil, err
	}
	ss, err := d.Callbacks.Servers(c.Ctx, id)
	if err != nil {
		return nil, err
	}
	items := []map[string]any{}
	for _, s := range ss {
		items = append(items, map[string]any{"id": s.ID, "title": s.Title, "creator_id": s.CreatorID, "url": s.URL, "secret_key": s.Secret, "status": s.Status})
	}
	return map[string]any{"count": len(items), "items": items}, nil
}

func (d Deps) deleteCallbackServer(c *api.Call) (any, error) {
	return onServer(c, func(group, server int64) error { return d.Callbacks.Delete(c.Ctx, group, server) })
}

func (d Deps) setCallbackSettings(c *api.Call) (any, error) {
	return onServer(c, func(group, server int64) error {
		return d.Callbacks.SetSettings(c.Ctx, group, server, c.Str("api_version"), eventFlags(c))
	})
}

// onServer runs do on the callback server server_id of the call's own
// community: 1, or error 100 when the community has no such server.
func onServer(c *api.Call, do func(group, server int64) error) (any, error) {
	id, err := ownGroup(c)
	if err != nil {
		return nil, err
	}
	server, _ := c.Int("server_id")
	if err := do(id, server); platform.KindOf(err) == platform.NotFound {
		return nil, api.ErrParam("server_id")
	} else if err != nil {
		return nil, err
	}
	return int64(1), nil
}

// eventFlags are the event types a call turns on (1) or off (0).
func eventFlags(c *api.Call) map[string]bool {
	events := map[string]bool{}
	for _, t := range platform.EventTypes {
		if v, ok := c.Int(t); ok {
			events[t] = v == 1
		}
	}
	return events
}

// userToGroup runs a user's action on the community group_id names.
func (d Deps) userToGroup(c *api.Call, do func(int64) error) (any, error) {
	g, _ := c.Int("group_id")
	err := do(g)
	if platform.KindOf(err) == platform.NotFound {
		return nil, api.ErrInvalidGroupID
	}
	if err != nil {
		return nil, err
	}
	return int64(1), nil
}

func (d Deps) isMessagesAllowed(c *api.Call) (any, error) {
	id, err := ownGroup(c)
	if err != nil {
		return nil, err
	}
	user, _ := c.Int("user_id")
	ok, err := d.Bots.MessagesAllowed(c.Ctx, id, user)
	if err != nil {
		return nil, err
	}
	allowed := 0
	if ok {
		allowed = 1
	}
	return map[string]int{"is_allowed": allowed}, nil
}

// ownGroup is the group_id of a call, which must be the token's community.
func ownGroup(c *api.Call) (int64, error) {
	id, _ := c.Int("group_id")
	if id != c.Token.CommunityID {
		return 0, api.ErrAccessDenied
	}
	return id, nil
}

func (d Deps) setLongPollSettings(c *api.Call) (any, error) {
	id, err := ownGroup(c)
	if err != nil {
		return nil, err
	}
	var enabled *bool
	if v, ok := c.Int("enabled"); ok {
		on := v == 1
		enabled = &on
	}
	if err := d.Bots.UpdateSettings(c.Ctx, id, enabled, c.Str("api_version"), eventFlags(c)); err != nil {
		return nil, err
	}
	return int64(1), nil
}

func (d Deps) getLongPollSettings(c *api.Call) (any, error) {
	id, err := ownGroup(c)
	if err != nil {
		return nil, err
	}
	s, err := d.Bots.Settings(c.Ctx, id)
	if err != nil {
		return nil, err
	}
	events := map[string]int{}
	for _, t := range platform.EventTypes {
		events[t] = 0
		if slices.Contains(s.Events, t) {
			events[t] = 1
		}
	}
	return map[string]any{"is_enabled": s.Enabled, "api_version": s.APIVersion, "events": events}, nil
}

func (d Deps) getLongPollServer(c *api.Call) (any, error) {
	id, err := ownGroup(c)
	if err != nil {
		return nil, err
	}
	key, ts, err := d.Bots.LongPollServer(c.Ctx, id)
	if platform.KindOf(err) == platform.Invalid {
		return nil, &api.Error{Code: 100, Msg: "One of the parameters specified was missing or invalid: " + err.Error()}
	}
	if err != nil {
		return nil, err
	}
	server := d.PublicURL.JoinPath("/longpoll", strconv.FormatInt(id, 10)).String()
	return map[string]string{"key": key, "server": server, "ts": strconv.FormatInt(ts, 10)}, nil
}
