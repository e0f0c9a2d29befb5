package admin

import (
	"context"
	"net/http"

	"latchkey/internal/admin/view"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// Users is what the users' operations ask (platform.Users).
type Users interface {
	CreateUser(ctx context.Context, u platform.NewUser) (storage.User, error)
	User(ctx context.Context, id int64) (storage.User, error)
	ListUsers(ctx context.Context, after int64, limit int) ([]storage.User, error)
	DisableUser(ctx context.Context, actor platform.Actor, id int64) (storage.User, error)
	SetPassword(ctx context.Context, actor platform.Actor, id int64, pass string) error
}

func (a *API) createUser(c *call) (int, any, error) {
	var in struct {
		Login     string `json:"login"`
		Password  string `json:"password"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Email     string `json:"email"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	u, err := a.Users.CreateUser(c.ctx, platform.NewUser{Login: in.Login, Password: in.Password, FirstName: in.FirstName, LastName: in.LastName, Email: in.Email})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, view.OfUser(u), nil
}

func (a *API) listUsers(c *call) (int, any, error) {
	after, err := c.query("after", 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := c.query("limit", 100)
	if err != nil {
		return 0, nil, err
	}
	users, err := a.Users.ListUsers(c.ctx, after, int(min(limit, 1000)))
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Users []view.User `json:"users"`
		// Next is the after= of the next page; absent on the last.
		Next int64 `json:"next,omitempty"`
	}{Users: []view.User{}}
	for _, u := range users {
		out.Users = append(out.Users, view.OfUser(u))
	}
	if len(users) > 0 && len(users) == int(min(max(limit, 1), 1000)) {
		out.Next = users[len(users)-1].ID
	}
	return http.StatusOK, out, nil
}

// pathUser is the user the path's {id} names (a 404 when there is none).
func (a *API) pathUser(c *call) (storage.User, error) {
	id, err := c.id("id")
	if err != nil {
		return storage.User{}, err
	}
	return a.Users.User(c.ctx, id)
}

func (a *API) getUser(c *call) (int, any, error) {
	u, err := a.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.OfUser(u), nil
}

func (a *API) disableUser(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	u, err := a.Users.DisableUser(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.OfUser(u), nil
}

func (a *API) setPassword(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if err := a.Users.SetPassword(c.ctx, c.actor, id, in.Password); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// Factors is what the second-factor operations ask (platform.Factors).
type Factors interface {
	Status(ctx context.Context, userID int64) (platform.FactorStatus, error)
	Reset(ctx context.Context, actor platform.Actor, userID int64) ([]storage.Factor, error)
}

func (a *API) listFactors(c *call) (int, any, error) {
	u, err := a.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	st, err := a.Factors.Status(c.ctx, u.ID)
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Factors      []view.Factor `json:"factors"`
		RecoveryLeft int           `json:"recovery_codes_left"`
		RequireMFA   bool          `json:"require_mfa"`
	}{Factors: []view.Factor{}, RecoveryLeft: st.RecoveryLeft, RequireMFA: u.RequireMFA}
	if st.App != nil {
		out.Factors = append(out.Factors, view.OfFactor(*st.App))
	}
	for _, f := range st.Passkeys {
		out.Factors = append(out.Factors, view.OfFactor(f))
	}
	return http.StatusOK, out, nil
}

func (a *API) resetFactors(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	removed, err := a.Factors.Reset(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]int{"removed": len(removed)}, nil
}
