package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"latchkey/internal/admin/view"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// Apps is what the apps' operations ask (platform.Apps).
type Apps interface {
	CreateApp(ctx context.Context, actor platform.Actor, a platform.NewApp) (platform.AppView, error)
	App(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	ListApps(ctx context.Context, actor platform.Actor, f storage.AppFilter) ([]platform.AppView, error)
	UpdateAppSettings(ctx context.Context, actor platform.Actor, id int64, s platform.AppSettings) (platform.AppView, error)
	RotateSecret(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	RetireSecret(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	NewServiceToken(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	SetClientCredentials(ctx context.Context, actor platform.Actor, id int64, on bool) (platform.AppView, error)
	SetAuth(ctx context.Context, actor platform.Actor, id int64, auth platform.ClientAuth) (platform.AppView, error)
	SetPostLogoutRedirectURIs(ctx context.Context, actor platform.Actor, id int64, uris []string) (platform.AppView, error)
	SetBackchannelLogoutURI(ctx context.Context, actor platform.Actor, id int64, uri string) (platform.AppView, error)
	SetProfile(ctx context.Context, actor platform.Actor, id int64, profile string) (platform.AppView, error)
	DeleteApp(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
}

// appInput is an app's settings as the admin API takes them.
type appInput struct {
	OwnerID           int64     `json:"owner_id"`
	Title             *string   `json:"title"`
	Type              string    `json:"type"`
	Description       *string   `json:"description"`
	RedirectURIs      *[]string `json:"redirect_uris"`
	IFrameURL         *string   `json:"iframe_url"`
	IFrameScope       *string   `json:"iframe_scope"`
	ClientCredentials *bool     `json:"client_credentials"`
	// AuthMethod, JWKS and JWKSURI: how the app authenticates at the
	// token endpoints, and its keys for private_key_jwt.
	AuthMethod *string          `json:"token_endpoint_auth_method"`
	JWKS       *json.RawMessage `json:"jwks"`
	JWKSURI    *string          `json:"jwks_uri"`
	// PostLogoutRedirectURIs replaces where the app may send a person after
	// signing them out.
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
	// Profile holds the app to a security profile ("fapi2"; "" for none).
	Profile *string `json:"profile"`
	// BackchannelLogoutURI is where the app hears of a session's end ("":
	// nowhere).
	BackchannelLogoutURI *string `json:"backchannel_logout_uri"`
}

// auth is the input's authentication settings over cur's.
func (in appInput) auth(cur platform.ClientAuth) platform.ClientAuth {
	if in.AuthMethod != nil {
		cur.Method = *in.AuthMethod
		if cur.Method != platform.AuthPrivateKey {
			cur.JWKS, cur.JWKSURI = "", ""
		}
	}
	if in.JWKS != nil {
		cur.JWKS, cur.JWKSURI = string(*in.JWKS), ""
	}
	if in.JWKSURI != nil {
		cur.JWKSURI = *in.JWKSURI
		if *in.JWKSURI != "" {
			cur.JWKS = ""
		}
	}
	return cur
}

func (in appInput) changesAuth() bool {
	return in.AuthMethod != nil || in.JWKS != nil || in.JWKSURI != nil
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (a *API) createApp(c *call) (int, any, error) {
	var in appInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	na := platform.NewApp{OwnerID: in.OwnerID, Title: str(in.Title), Type: storage.AppType(in.Type), Description: str(in.Description),
		IFrameURL: str(in.IFrameURL)}
	if in.RedirectURIs != nil {
		na.RedirectURIs = *in.RedirectURIs
	}
	m, err := scope.Parse(scope.User, str(in.IFrameScope))
	if err != nil {
		return 0, nil, &badRequest{"iframe_scope: " + err.Error()}
	}
	na.IFrameScope = m
	na.Auth = in.auth(platform.ClientAuth{})
	if err := na.Validate(); err != nil {
		return 0, nil, err
	}
	if _, err := a.Users.User(c.ctx, na.OwnerID); err != nil {
		return 0, nil, err
	}
	v, err := a.Apps.CreateApp(c.ctx, c.actor, na)
	if err != nil {
		return 0, nil, err
	}
	if in.ClientCredentials != nil && *in.ClientCredentials {
		if v, err = a.Apps.SetClientCredentials(c.ctx, c.actor, v.ID, true); err != nil {
			return 0, nil, err
		}
	}
	if in.PostLogoutRedirectURIs != nil {
		if v, err = a.Apps.SetPostLogoutRedirectURIs(c.ctx, c.actor, v.ID, *in.PostLogoutRedirectURIs); err != nil {
			return 0, nil, err
		}
	}
	if in.BackchannelLogoutURI != nil {
		if v, err = a.Apps.SetBackchannelLogoutURI(c.ctx, c.actor, v.ID, *in.BackchannelLogoutURI); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusCreated, view.OfApp(v), nil
}

func (a *API) listApps(c *call) (int, any, error) {
	var f storage.AppFilter
	var limit int64
	for _, q := range []struct {
		name string
		def  int64
		to   *int64
	}{{"owner_id", 0, &f.OwnerID}, {"after", 0, &f.After}, {"limit", 100, &limit}} {
		n, err := c.query(q.name, q.def)
		if err != nil {
			return 0, nil, err
		}
		*q.to = n
	}
	f.Limit = int(min(max(limit, 1), 1000))
	registered := c.r.URL.Query().Get("registered")
	switch registered {
	case "", "false":
	case "true":
		f.Registered = true
	default:
		return 0, nil, &badRequest{"registered must be true or false, got " + strconv.Quote(registered)}
	}
	switch t := storage.AppType(c.r.URL.Query().Get("type")); t {
	case "", storage.Standalone, storage.Web, storage.IFrame:
		f.Type = t
	default:
		return 0, nil, &badRequest{"type must be standalone, web or iframe, got " + strconv.Quote(string(t))}
	}
	apps, err := a.Apps.ListApps(c.ctx, c.actor, f)
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Apps []view.App `json:"apps"`
		// Next is the after= of the next page; absent on the last.
		Next int64 `json:"next,omitempty"`
	}{Apps: []view.App{}}
	for _, v := range apps {
		out.Apps = append(out.Apps, view.OfApp(v))
	}
	if len(apps) == f.Limit {
		out.Next = apps[len(apps)-1].ID
	}
	return http.StatusOK, out, nil
}

func (a *API) getApp(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Apps.App(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.OfApp(v), nil
}

// updateApp changes the settings given, and leaves the others as they are.
func (a *API) updateApp(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	var in appInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.OwnerID != 0 || in.Type != "" {
		return 0, nil, &badRequest{"owner_id and type cannot change"}
	}
	v, err := a.Apps.App(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	s := platform.AppSettings{Title: v.Title, Description: v.Description, RedirectURIs: v.RedirectURIs, IFrameURL: v.IFrameURL, IFrameScope: v.IFrameScope}
	if in.Title != nil {
		s.Title = *in.Title
	}
	if in.Description != nil {
		s.Description = *in.Description
	}
	if in.RedirectURIs != nil {
		s.RedirectURIs = *in.RedirectURIs
	}
	if in.IFrameURL != nil {
		s.IFrameURL = *in.IFrameURL
	}
	if in.IFrameScope != nil {
		if s.IFrameScope, err = scope.Parse(scope.User, *in.IFrameScope); err != nil {
			return 0, nil, &badRequest{"iframe_scope: " + err.Error()}
		}
	}
	if v, err = a.Apps.UpdateAppSettings(c.ctx, c.actor, id, s); err != nil {
		return 0, nil, err
	}
	if in.PostLogoutRedirectURIs != nil {
		if v, err = a.Apps.SetPostLogoutRedirectURIs(c.ctx, c.actor, id, *in.PostLogoutRedirectURIs); err != nil {
			return 0, nil, err
		}
	}
	if in.BackchannelLogoutURI != nil {
		if v, err = a.Apps.SetBackchannelLogoutURI(c.ctx, c.actor, id, *in.BackchannelLogoutURI); err != nil {
			return 0, nil, err
		}
	}
	if in.changesAuth() {
		if v, err = a.Apps.SetAuth(c.ctx, c.actor, id, in.auth(platform.ClientAuth{Method: v.AuthMethod, JWKS: v.JWKS, JWKSURI: v.JWKSURI})); err != nil {
			return 0, nil, err
		}
	}
	if in.Profile != nil {
		if v, err = a.Apps.SetProfile(c.ctx, c.actor, id, *in.Profile); err != nil {
			return 0, nil, err
		}
	}
	if in.ClientCredentials != nil && *in.ClientCredentials != v.ClientCredentials {
		if v, err = a.Apps.SetClientCredentials(c.ctx, c.actor, id, *in.ClientCredentials); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, view.OfApp(v), nil
}

// appAction is POST /admin/v1/apps/{id}/{action}: rotate-secret,
// retire-secret or new-service-token, as the console's buttons.
func (a *API) appAction(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	do := map[string]func(context.Context, platform.Actor, int64) (platform.AppView, error){
		"rotate-secret": a.Apps.RotateSecret, "retire-secret": a.Apps.RetireSecret, "new-service-token": a.Apps.NewServiceToken,
	}[c.r.PathValue("action")]
	if do == nil {
		return 0, nil, &platform.Error{Kind: platform.NotFound, Message: "no such action: use rotate-secret, retire-secret or new-service-token"}
	}
	v, err := do(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.OfApp(v), nil
}

func (a *API) deleteApp(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Apps.DeleteApp(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	out := view.OfApp(v)
	out.Deleted = true
	return http.StatusOK, out, nil
}
