package platform

import (
	"context"
	"strings"
	"unicode/utf8"

	"latchkey/internal/storage"
)

// CreateCommunity creates a community whose first admin is ownerID.
func (p *Platform) CreateCommunity(ctx context.Context, actor Actor, ownerID int64, name string) (storage.Community, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 100 || strings.ContainsAny(name, "\r\n\x00") {
		return storage.Community{}, invalid("name", "must be 1 to 100 characters on one line")
	}
	if _, err := p.Store.GetUser(ctx, ownerID); err != nil {
		return storage.Community{}, orNotFound(err, "owner: no user with id %d", ownerID)
	}
	c := storage.Community{Name: name, CreatedAt: p.now()}
	if err := p.Store.CreateCommunity(ctx, &c, ownerID); err != nil {
		return c, orNotFound(err, "owner: no user with id %d", ownerID)
	}
	p.audit(ctx, actor, storage.AuditEvent{CommunityID: c.ID, Action: "community.create", Detail: name})
	return c, nil
}

// AddCommunityAdmin makes userID an admin of the community. When actor is not
// the CLI, the actor must be an admin already.
func (p *Platform) AddCommunityAdmin(ctx context.Context, actor Actor, communityID, userID int64) error {
	if _, err := p.Store.GetCommunity(ctx, communityID); err != nil {
		return orNotFound(err, "group: no community with id %d", communityID)
	}
	if _, err := p.Store.GetUser(ctx, userID); err != nil {
		return orNotFound(err, "user: no user with id %d", userID)
	}
	if actor != CLI {
		ok, err := p.Store.IsCommunityAdmin(ctx, communityID, actor.UserID)
		if err != nil {
			return err
		}
		if !ok {
			return &Error{Kind: Forbidden, Message: "only an admin of the community can add admins"}
		}
	}
	if err := p.Store.AddCommunityAdmin(ctx, communityID, userID, p.now()); err != nil {
		return orNotFound(err, "no community %d or user %d", communityID, userID)
	}
	p.audit(ctx, actor, storage.AuditEvent{CommunityID: communityID, Action: "community.admin_add", Detail: "user " + itoa(userID)})
	return nil
}
