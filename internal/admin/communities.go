package admin

import (
	"context"
	"net/http"

	"latchkey/internal/admin/view"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// Communities is what the communities' operations ask (platform.Communities).
type Communities interface {
	CreateCommunity(ctx context.Context, actor platform.Actor, ownerID int64, name string) (storage.Community, error)
	Community(ctx context.Context, actor platform.Actor, id int64) (storage.Community, error)
	CommunityAdmins(ctx context.Context, actor platform.Actor, id int64) ([]storage.User, error)
	AddCommunityAdmin(ctx context.Context, actor platform.Actor, communityID, userID int64) error
	RemoveCommunityAdmin(ctx context.Context, actor platform.Actor, communityID, userID int64) error
}

func (a *API) community(c *call, id int64, status int) (int, any, error) {
	cm, err := a.Communities.Community(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	admins, err := a.Communities.CommunityAdmins(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return status, view.OfCommunity(cm, admins), nil
}

func (a *API) createCommunity(c *call) (int, any, error) {
	var in struct {
		OwnerID int64  `json:"owner_id"`
		Name    string `json:"name"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if _, err := a.Users.User(c.ctx, in.OwnerID); err != nil {
		return 0, nil, err
	}
	cm, err := a.Communities.CreateCommunity(c.ctx, c.actor, in.OwnerID, in.Name)
	if err != nil {
		return 0, nil, err
	}
	return a.community(c, cm.ID, http.StatusCreated)
}

func (a *API) getCommunity(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	return a.community(c, id, http.StatusOK)
}

func (a *API) addAdmin(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		UserID int64 `json:"user_id"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if _, err := a.Users.User(c.ctx, in.UserID); err != nil {
		return 0, nil, err
	}
	if err := a.Communities.AddCommunityAdmin(c.ctx, c.actor, id, in.UserID); err != nil {
		return 0, nil, err
	}
	return a.community(c, id, http.StatusOK)
}

func (a *API) removeAdmin(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	user, err := c.id("user_id")
	if err != nil {
		return 0, nil, err
	}
	if err := a.Communities.RemoveCommunityAdmin(c.ctx, c.actor, id, user); err != nil {
		return 0, nil, err
	}
	return a.community(c, id, http.StatusOK)
}
