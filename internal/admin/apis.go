package admin

import (
	"context"
	"net/http"
	"time"

	"latchkey/internal/admin/view"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// APIs is what the APIs' operations ask (platform.APIs).
type APIs interface {
	CreateAPI(ctx context.Context, actor platform.Actor, a platform.NewAPI) (platform.APIView, error)
	API(ctx context.Context, actor platform.Actor, id int64) (platform.APIView, error)
	APIsOf(ctx context.Context, ownerID int64) ([]platform.APIView, error)
	UpdateAPI(ctx context.Context, actor platform.Actor, id int64, s platform.APISettings) (platform.APIView, error)
	RotateSecret(ctx context.Context, actor platform.Actor, id int64) (platform.APIView, error)
	DeleteAPI(ctx context.Context, actor platform.Actor, id int64) (platform.APIView, error)
}

// apiInput is an API's settings as the admin API takes them; on PATCH,
// the fields given only.
type apiInput struct {
	OwnerID         int64            `json:"owner_id"`
	Identifier      string           `json:"identifier"`
	Name            *string          `json:"name"`
	Scopes          *[]view.APIScope `json:"scopes"`
	TokenFormat     *string          `json:"token_format"`
	TokenTTLSeconds *int64           `json:"token_ttl_seconds"`
	Rate            *int64           `json:"rate"`
	Upstream        *string          `json:"upstream"`
	Slug            *string          `json:"slug"`
	Routes          *[]view.APIRoute `json:"routes"`
}

// onto writes the fields given into s.
func (in *apiInput) onto(s *platform.APISettings) {
	if in.Name != nil {
		s.Name = *in.Name
	}
	if in.Scopes != nil {
		s.Scopes = nil
		for _, sc := range *in.Scopes {
			s.Scopes = append(s.Scopes, platform.ScopeSpec{Name: sc.Name, EN: sc.Description["en"], RU: sc.Description["ru"]})
		}
	}
	if in.TokenFormat != nil {
		s.TokenFormat = *in.TokenFormat
	}
	if in.TokenTTLSeconds != nil {
		s.TokenTTL = time.Duration(*in.TokenTTLSeconds) * time.Second
	}
	if in.Rate != nil {
		s.Rate = *in.Rate
	}
	if in.Upstream != nil {
		s.Upstream = *in.Upstream
	}
	if in.Slug != nil {
		s.Slug = *in.Slug
	}
	if in.Routes != nil {
		s.Routes = nil
		for _, r := range *in.Routes {
			s.Routes = append(s.Routes, storage.APIRoute(r))
		}
	}
}

func (a *API) createAPI(c *call) (int, any, error) {
	var in apiInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if _, err := a.Users.User(c.ctx, in.OwnerID); err != nil {
		return 0, nil, err
	}
	na := platform.NewAPI{OwnerID: in.OwnerID, Identifier: in.Identifier}
	in.onto(&na.APISettings)
	v, err := a.APIs.CreateAPI(c.ctx, c.actor, na)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, view.OfAPI(v), nil
}

func (a *API) listAPIs(c *call) (int, any, error) {
	owner, err := c.query("owner_id", 0)
	if err != nil {
		return 0, nil, err
	}
	all, err := a.APIs.APIsOf(c.ctx, owner)
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		APIs []view.API `json:"apis"`
	}{APIs: []view.API{}}
	for _, v := range all {
		out.APIs = append(out.APIs, view.OfAPI(v))
	}
	return http.StatusOK, out, nil
}

func (a *API) getAPI(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	v, err := a.APIs.API(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.OfAPI(v), nil
}

// updateAPI changes the settings given, and leaves the others as they are.
func (a *API) updateAPI(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	var in apiInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.OwnerID != 0 || in.Identifier != "" {
		return 0, nil, &badRequest{"owner_id and identifier cannot change"}
	}
	cur, err := a.APIs.API(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	s := platform.APISettings{Name: cur.Name, TokenFormat: cur.TokenFormat, TokenTTL: cur.TokenTTL, Rate: cur.Rate, Upstream: cur.Upstream, Slug: cur.Slug, Routes: cur.Routes}
	for _, sc := range cur.Scopes {
		if !sc.Removed {
			s.Scopes = append(s.Scopes, platform.ScopeSpec{Name: sc.Name, EN: sc.EN, RU: sc.RU})
		}
	}
	in.onto(&s)
	v, err := a.APIs.UpdateAPI(c.ctx, c.actor, id, s)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.OfAPI(v), nil
}

func (a *API) rotateAPISecret(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	v, err := a.APIs.RotateSecret(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.OfAPI(v), nil
}

func (a *API) deleteAPI(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	v, err := a.APIs.DeleteAPI(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	out := view.OfAPI(v)
	out.Deleted = true
	return http.StatusOK, out, nil
}
