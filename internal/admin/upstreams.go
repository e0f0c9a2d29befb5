package admin

import (
	"context"
	"net/http"

	"latchkey/internal/platform"
)

// Upstreams is what the upstreams' operations ask (platform.Upstreams).
type Upstreams interface {
	AddOIDC(ctx context.Context, actor platform.Actor, name string, c platform.UpstreamConfig, clientSecret string) (platform.UpstreamView, error)
	AddLDAP(ctx context.Context, actor platform.Actor, name string, c platform.UpstreamConfig, bindPassword string) (platform.UpstreamView, error)
	All(ctx context.Context) ([]platform.UpstreamView, error)
	Delete(ctx context.Context, actor platform.Actor, name string) error
}

func (a *API) createUpstream(c *call) (int, any, error) {
	var in struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
		platform.UpstreamConfig
		ClientSecret string `json:"client_secret"`
		BindPassword string `json:"bind_password"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	var v platform.UpstreamView
	var err error
	switch in.Kind {
	case "oidc":
		v, err = a.Upstreams.AddOIDC(c.ctx, c.actor, in.Name, in.UpstreamConfig, in.ClientSecret)
	case "ldap":
		v, err = a.Upstreams.AddLDAP(c.ctx, c.actor, in.Name, in.UpstreamConfig, in.BindPassword)
	default:
		return 0, nil, &badRequest{`kind: want "oidc" or "ldap"`}
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, v, nil
}

func (a *API) listUpstreams(c *call) (int, any, error) {
	vs, err := a.Upstreams.All(c.ctx)
	if err != nil {
		return 0, nil, err
	}
	if vs == nil {
		vs = []platform.UpstreamView{}
	}
	return http.StatusOK, map[string]any{"upstreams": vs}, nil
}

func (a *API) deleteUpstream(c *call) (int, any, error) {
	if err := a.Upstreams.Delete(c.ctx, c.actor, c.r.PathValue("name")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
