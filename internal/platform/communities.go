package platform

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Communities is the one owner of communities: their admins, who may grant
// for them, their tokens and their audit.
type Communities struct {
	*core
	store interface {
		storage.Communities
		storage.Users
	}
	users *Users
	apps  *Apps
}

// CreateCommunity creates a community whose first admin is ownerID.
func (p *Communities) CreateCommunity(ctx context.Context, actor Actor, ownerID int64, name string) (storage.Community, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 100 || !validText(name) || strings.ContainsAny(name, "\r\n") {
		return storage.Community{}, invalid("name", "must be 1 to 100 characters of text on one line")
	}
	if _, err := p.store.GetUser(ctx, ownerID); err != nil {
		return storage.Community{}, orNotFound(err, "owner: no user with id %d", ownerID)
	}
	c := storage.Community{Name: name, CreatedAt: p.now()}
	if err := p.store.CreateCommunity(ctx, &c, ownerID); err != nil {
		return c, orNotFound(err, "owner: no user with id %d", ownerID)
	}
	p.audit(ctx, actor, storage.AuditEvent{CommunityID: c.ID, Action: storage.AuditCommunityCreate, Detail: name})
	return c, nil
}

// AddCommunityAdmin makes userID an admin of the community. When actor is not
// the CLI, the actor must be an admin already.
func (p *Communities) AddCommunityAdmin(ctx context.Context, actor Actor, communityID, userID int64) error {
	if _, err := p.store.GetCommunity(ctx, communityID); err != nil {
		return orNotFound(err, "group: no community with id %d", communityID)
	}
	if _, err := p.store.GetUser(ctx, userID); err != nil {
		return orNotFound(err, "user: no user with id %d", userID)
	}
	if !actor.Operator {
		ok, err := p.store.IsCommunityAdmin(ctx, communityID, actor.UserID)
		if err != nil {
			return err
		}
		if !ok {
			return &Error{Kind: Forbidden, Message: "only an admin of the community can add admins"}
		}
	}
	if err := p.store.AddCommunityAdmin(ctx, communityID, userID, p.now()); err != nil {
		return orNotFound(err, "no community %d or user %d", communityID, userID)
	}
	p.audit(ctx, actor, storage.AuditEvent{CommunityID: communityID, Action: storage.AuditAdminAdd, Detail: "user " + itoa(userID)})
	return nil
}

// AddCommunityAdminByLogin is AddCommunityAdmin for the user with that
// login, as the community page names them.
func (p *Communities) AddCommunityAdminByLogin(ctx context.Context, actor Actor, communityID int64, login string) error {
	u, err := p.users.UserByLogin(ctx, strings.TrimSpace(login))
	if err != nil {
		return err
	}
	return p.AddCommunityAdmin(ctx, actor, communityID, u.ID)
}

// LookupCommunity returns a community's public record (name and id), for
// the API and the consent dialog.
func (p *Communities) LookupCommunity(ctx context.Context, id int64) (storage.Community, error) {
	c, err := p.store.GetCommunity(ctx, id)
	return c, orNotFound(err, "community %d does not exist", id)
}

// MayGrantFor checks that the user may grant an app access to every one of
// the communities: only their admins may. The error names the first one
// that does not exist (NotFound) or that the user does not admin
// (Forbidden).
func (p *Communities) MayGrantFor(ctx context.Context, userID int64, communityIDs []int64) error {
	for _, id := range communityIDs {
		if _, err := p.LookupCommunity(ctx, id); err != nil {
			return err
		}
		ok, err := p.store.IsCommunityAdmin(ctx, id, userID)
		if err != nil {
			return err
		}
		if !ok {
			return &Error{Kind: Forbidden, Message: fmt.Sprintf("you are not an admin of community %d: only its admins can grant access to it", id)}
		}
	}
	return nil
}

// ErrLastAdmin refuses removing a community's only admin.
var ErrLastAdmin = &Error{Kind: Conflict, Message: "the last admin of a community cannot be removed: add another admin first"}

// CommunitiesOf lists the communities the user admins.
func (p *Communities) CommunitiesOf(ctx context.Context, userID int64) ([]storage.Community, error) {
	return p.store.ListAdminCommunities(ctx, userID)
}

// Community returns the community if actor admins it.
func (p *Communities) Community(ctx context.Context, actor Actor, id int64) (storage.Community, error) {
	c, err := p.store.GetCommunity(ctx, id)
	if err != nil {
		return c, orNotFound(err, "no community with id %d", id)
	}
	if !actor.Operator {
		ok, err := p.store.IsCommunityAdmin(ctx, id, actor.UserID)
		if err != nil {
			return c, err
		}
		if !ok {
			return c, &Error{Kind: Forbidden, Message: "only the community's admins can manage it"}
		}
	}
	return c, nil
}

// CommunityAdmins lists the admins, for an admin.
func (p *Communities) CommunityAdmins(ctx context.Context, actor Actor, id int64) ([]storage.User, error) {
	if _, err := p.Community(ctx, actor, id); err != nil {
		return nil, err
	}
	return p.store.ListCommunityAdmins(ctx, id)
}

// RemoveCommunityAdmin takes admin rights away. The last admin stays. The
// tokens the removed admin granted keep working: they speak for the
// community, and any current admin can revoke them.
func (p *Communities) RemoveCommunityAdmin(ctx context.Context, actor Actor, communityID, userID int64) error {
	if _, err := p.Community(ctx, actor, communityID); err != nil {
		return err
	}
	err := p.store.RemoveCommunityAdmin(ctx, communityID, userID)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return ErrLastAdmin
	case errors.Is(err, storage.ErrNotFound):
		return notFound("user %d is not an admin of community %d", userID, communityID)
	case err != nil:
		return err
	}
	p.audit(ctx, actor, storage.AuditEvent{CommunityID: communityID, Action: storage.AuditAdminRemove, Detail: "user " + itoa(userID)})
	return nil
}

// CommunityTokens lists the community's live tokens, newest first.
func (p *Communities) CommunityTokens(ctx context.Context, actor Actor, communityID int64) ([]storage.Token, error) {
	if _, err := p.Community(ctx, actor, communityID); err != nil {
		return nil, err
	}
	return p.tokens.ListTokens(ctx, storage.TokenFilter{CommunityID: communityID, Kind: token.Community, LiveOnly: true})
}

// CreateCommunityToken is "Create token" on the community's API usage page:
// a community token with the given scopes, never expiring, for no app or for
// one of the admin's own apps. The token is returned once; only its hash is
// kept.
func (p *Communities) CreateCommunityToken(ctx context.Context, actor Actor, communityID, appID int64, mask scope.Mask) (string, error) {
	if _, err := p.Community(ctx, actor, communityID); err != nil {
		return "", err
	}
	if mask == 0 || mask&^scope.Known(scope.Community) != 0 {
		return "", invalid("permissions", "choose at least one community permission")
	}
	if appID != 0 {
		if _, err := p.apps.ownedApp(ctx, actor, appID); err != nil {
			return "", err
		}
	}
	raw, _, err := p.issueToken(ctx, storage.Token{Kind: token.Community, AppID: appID, UserID: actor.UserID,
		CommunityID: communityID, Scope: mask, IP: actor.IP, Flow: storage.FlowConsole}, 0)
	if err != nil {
		return "", err
	}
	p.audit(ctx, actor, storage.AuditEvent{CommunityID: communityID, AppID: appID, Action: storage.AuditCommunityTokenNew, Detail: mask.Text(scope.Community)})
	return raw, nil
}

// RevokeCommunityToken revokes one of the community's tokens; any current
// admin may, whoever granted it.
func (p *Communities) RevokeCommunityToken(ctx context.Context, actor Actor, communityID int64, h token.Hash) error {
	if _, err := p.Community(ctx, actor, communityID); err != nil {
		return err
	}
	revoked, err := p.tokens.RevokeTokens(ctx, storage.TokenFilter{Hash: &h, CommunityID: communityID, Kind: token.Community}, storage.RevokedByAdmin, p.now())
	if err != nil {
		return err
	}
	if len(revoked) == 0 {
		return notFound("no such live token in community %d", communityID)
	}
	p.revoked(revoked)
	p.audit(ctx, actor, storage.AuditEvent{CommunityID: communityID, Action: storage.AuditCommunityTokenGone})
	return nil
}

// CommunityAudit returns the community's recent events, for an admin.
func (p *Communities) CommunityAudit(ctx context.Context, actor Actor, communityID int64, limit int) ([]storage.AuditEvent, error) {
	if _, err := p.Community(ctx, actor, communityID); err != nil {
		return nil, err
	}
	return p.auditLog.ListAudit(ctx, storage.AuditFilter{CommunityID: communityID, Limit: limit})
}
