// Package admin is the admin API, /admin/v1/ on the admin listener
// (--admin-addr): users, apps, communities, tokens and the audit log, for
// automation that should not need the command line on the database host.
// Requests carry "Authorization: Bearer <admin token>" (latchkey
// admin-token create); answers are JSON, errors RFC 9457 problem details;
// openapi.json (OpenAPI 3.1) describes every operation, and a test checks
// the real answers against it.
//
// It also holds the JSON shape of an app that the command line prints too.
package admin

import (
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI is the API's description.
func OpenAPI() []byte { return openAPI }

// Platform is what the admin API asks of the domain layer.
type Platform interface {
	CheckAdminToken(ctx context.Context, raw string) (storage.AdminToken, error)
	CreateUser(ctx context.Context, u platform.NewUser) (storage.User, error)
	User(ctx context.Context, id int64) (storage.User, error)
	ListUsers(ctx context.Context, after int64, limit int) ([]storage.User, error)
	DisableUser(ctx context.Context, actor platform.Actor, id int64) (storage.User, error)
	SetPassword(ctx context.Context, actor platform.Actor, id int64, pass string) error
	CreateApp(ctx context.Context, actor platform.Actor, a platform.NewApp) (platform.AppView, error)
	App(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	ListApps(ctx context.Context, actor platform.Actor, f storage.AppFilter) ([]platform.AppView, error)
	UpdateAppSettings(ctx context.Context, actor platform.Actor, id int64, s platform.AppSettings) (platform.AppView, error)
	RotateSecret(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	RetireSecret(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	NewServiceToken(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	SetClientCredentials(ctx context.Context, actor platform.Actor, id int64, on bool) (platform.AppView, error)
	DeleteApp(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	CreateCommunity(ctx context.Context, actor platform.Actor, ownerID int64, name string) (storage.Community, error)
	Community(ctx context.Context, actor platform.Actor, id int64) (storage.Community, error)
	CommunityAdmins(ctx context.Context, actor platform.Actor, id int64) ([]storage.User, error)
	AddCommunityAdmin(ctx context.Context, actor platform.Actor, communityID, userID int64) error
	RemoveCommunityAdmin(ctx context.Context, actor platform.Actor, communityID, userID int64) error
	ListTokens(ctx context.Context, f storage.TokenFilter) ([]storage.Token, error)
	RevokeTokenByHash(ctx context.Context, actor platform.Actor, h token.Hash) (bool, error)
	Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error)
}

// API serves /admin/v1/.
type API struct {
	p   Platform
	log *slog.Logger
	mux *http.ServeMux
}

// New builds the admin API.
func New(p Platform, log *slog.Logger) *API {
	a := &API{p: p, log: log, mux: http.NewServeMux()}
	routes := map[string]func(*call) (int, any, error){
		"POST /admin/v1/users":                               a.createUser,
		"GET /admin/v1/users":                                a.listUsers,
		"GET /admin/v1/users/{id}":                           a.getUser,
		"POST /admin/v1/users/{id}/disable":                  a.disableUser,
		"POST /admin/v1/users/{id}/password":                 a.setPassword,
		"POST /admin/v1/apps":                                a.createApp,
		"GET /admin/v1/apps":                                 a.listApps,
		"GET /admin/v1/apps/{id}":                            a.getApp,
		"PATCH /admin/v1/apps/{id}":                          a.updateApp,
		"POST /admin/v1/apps/{id}/{action}":                  a.appAction,
		"DELETE /admin/v1/apps/{id}":                         a.deleteApp,
		"POST /admin/v1/communities":                         a.createCommunity,
		"GET /admin/v1/communities/{id}":                     a.getCommunity,
		"POST /admin/v1/communities/{id}/admins":             a.addAdmin,
		"DELETE /admin/v1/communities/{id}/admins/{user_id}": a.removeAdmin,
		"GET /admin/v1/tokens":                               a.listTokens,
		"DELETE /admin/v1/tokens/{hash}":                     a.revokeToken,
		"GET /admin/v1/audit":                                a.audit,
	}
	for pattern, h := range routes {
		a.mux.Handle(pattern, a.handle(h))
	}
	a.mux.HandleFunc("GET /admin/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	a.mux.HandleFunc("/admin/v1/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "Not Found", "no such operation: "+r.Method+" "+r.URL.Path)
	})
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// call is one authenticated request.
type call struct {
	r     *http.Request
	ctx   context.Context
	actor platform.Actor
}

// maxBody bounds a request body: the largest is an app's settings.
const maxBody = 64 << 10

// handle is the pipeline every operation shares: the admin token, then the
// operation, then the answer or the problem.
func (a *API) handle(op func(*call) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin"`)
			problem(w, http.StatusUnauthorized, "Unauthorized", "an admin token is required: Authorization: Bearer <token from latchkey admin-token create>")
			return
		}
		if _, err := a.p.CheckAdminToken(r.Context(), strings.TrimSpace(raw)); err != nil {
			if errors.Is(err, platform.ErrAdminToken) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin", error="invalid_token"`)
				problem(w, http.StatusUnauthorized, "Unauthorized", "the admin token is not valid")
				return
			}
			a.fail(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		status, body, err := op(&call{r: r, ctx: r.Context(), actor: platform.AdminAPI(httpx.ClientIP(r))})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		httpx.WriteJSON(w, status, body)
	})
}

// badRequest is a request the API could not read.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// fail turns err into problem details: the platform's kinds of error
// with their messages, anything else an internal error (logged).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		problem(w, http.StatusBadRequest, "Bad Request", br.msg)
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "Service Unavailable", "storage cannot be reached right now")
		return
	}
	status := map[platform.Kind]int{platform.NotFound: 404, platform.Forbidden: 403, platform.Invalid: 422, platform.Conflict: 409, platform.Unavailable: 503}[platform.KindOf(err)]
	if status != 0 {
		problem(w, status, http.StatusText(status), err.Error())
		return
	}
	a.log.ErrorContext(r.Context(), "admin: operation failed", "path", r.URL.Path, "request_id", httpx.RequestID(w), "err", err)
	problem(w, http.StatusInternalServerError, "Internal Server Error", "internal error; try again")
}

// problem writes RFC 9457 problem details.
func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	httpx.WriteJSON(w, status, map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail})
}

// decode reads the JSON body into v, refusing unknown fields.
func (c *call) decode(v any) error {
	dec := json.NewDecoder(c.r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &badRequest{"the body is not the JSON this operation takes: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &badRequest{"the body holds more than one JSON value"}
	}
	return nil
}

// id reads a positive id from the path.
func (c *call) id(name string) (int64, error) {
	id, err := strconv.ParseInt(c.r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, &badRequest{name + " must be a positive whole number, got " + strconv.Quote(c.r.PathValue(name))}
	}
	return id, nil
}

// query reads a non-negative whole number from the query, def when absent.
func (c *call) query(name string, def int64) (int64, error) {
	s := c.r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, &badRequest{name + " must be a whole number, got " + strconv.Quote(s)}
	}
	return n, nil
}

// ---- users

// UserJSON is a user as the admin API shows one (never the password hash).
type UserJSON struct {
	ID         int64  `json:"id"`
	Login      string `json:"login"`
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	Email      string `json:"email"`
	CreatedAt  int64  `json:"created_at"`
	Disabled   bool   `json:"disabled"`
	DisabledAt int64  `json:"disabled_at,omitempty"`
}

func userJSON(u storage.User) UserJSON {
	out := UserJSON{ID: u.ID, Login: u.Login, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
		CreatedAt: u.CreatedAt.Unix(), Disabled: !u.DisabledAt.IsZero()}
	if out.Disabled {
		out.DisabledAt = u.DisabledAt.Unix()
	}
	return out
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
	u, err := a.p.CreateUser(c.ctx, platform.NewUser{Login: in.Login, Password: in.Password, FirstName: in.FirstName, LastName: in.LastName, Email: in.Email})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, userJSON(u), nil
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
	users, err := a.p.ListUsers(c.ctx, after, int(min(limit, 1000)))
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Users []UserJSON `json:"users"`
		// Next is the after= of the next page; absent on the last.
		Next int64 `json:"next,omitempty"`
	}{Users: []UserJSON{}}
	for _, u := range users {
		out.Users = append(out.Users, userJSON(u))
	}
	if len(users) > 0 && len(users) == int(min(max(limit, 1), 1000)) {
		out.Next = users[len(users)-1].ID
	}
	return http.StatusOK, out, nil
}

func (a *API) getUser(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	u, err := a.p.User(c.ctx, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, userJSON(u), nil
}

func (a *API) disableUser(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	u, err := a.p.DisableUser(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, userJSON(u), nil
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
	if err := a.p.SetPassword(c.ctx, c.actor, id, in.Password); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// ---- apps

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
	if err := na.Validate(); err != nil {
		return 0, nil, err
	}
	if _, err := a.p.User(c.ctx, na.OwnerID); err != nil {
		return 0, nil, err
	}
	v, err := a.p.CreateApp(c.ctx, c.actor, na)
	if err != nil {
		return 0, nil, err
	}
	if in.ClientCredentials != nil && *in.ClientCredentials {
		if v, err = a.p.SetClientCredentials(c.ctx, c.actor, v.ID, true); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusCreated, App(v), nil
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
	switch t := storage.AppType(c.r.URL.Query().Get("type")); t {
	case "", storage.Standalone, storage.Web, storage.IFrame:
		f.Type = t
	default:
		return 0, nil, &badRequest{"type must be standalone, web or iframe, got " + strconv.Quote(string(t))}
	}
	apps, err := a.p.ListApps(c.ctx, c.actor, f)
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Apps []AppJSON `json:"apps"`
		// Next is the after= of the next page; absent on the last.
		Next int64 `json:"next,omitempty"`
	}{Apps: []AppJSON{}}
	for _, v := range apps {
		out.Apps = append(out.Apps, App(v))
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
	v, err := a.p.App(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, App(v), nil
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
	v, err := a.p.App(c.ctx, c.actor, id)
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
	if v, err = a.p.UpdateAppSettings(c.ctx, c.actor, id, s); err != nil {
		return 0, nil, err
	}
	if in.ClientCredentials != nil && *in.ClientCredentials != v.ClientCredentials {
		if v, err = a.p.SetClientCredentials(c.ctx, c.actor, id, *in.ClientCredentials); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, App(v), nil
}

// appAction is POST /admin/v1/apps/{id}/{action}: rotate-secret,
// retire-secret or new-service-token, as the console's buttons.
func (a *API) appAction(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	do := map[string]func(context.Context, platform.Actor, int64) (platform.AppView, error){
		"rotate-secret": a.p.RotateSecret, "retire-secret": a.p.RetireSecret, "new-service-token": a.p.NewServiceToken,
	}[c.r.PathValue("action")]
	if do == nil {
		return 0, nil, &platform.Error{Kind: platform.NotFound, Message: "no such action: use rotate-secret, retire-secret or new-service-token"}
	}
	v, err := do(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, App(v), nil
}

func (a *API) deleteApp(c *call) (int, any, error) {
	id, err := c.id("id")
	if err != nil {
		return 0, nil, err
	}
	v, err := a.p.DeleteApp(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	out := App(v)
	out.Deleted = true
	return http.StatusOK, out, nil
}

// ---- communities

// CommunityJSON is a community with its admins.
type CommunityJSON struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	CreatedAt int64      `json:"created_at"`
	Admins    []UserJSON `json:"admins"`
}

func (a *API) community(c *call, id int64, status int) (int, any, error) {
	cm, err := a.p.Community(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	admins, err := a.p.CommunityAdmins(c.ctx, c.actor, id)
	if err != nil {
		return 0, nil, err
	}
	out := CommunityJSON{ID: cm.ID, Name: cm.Name, CreatedAt: cm.CreatedAt.Unix(), Admins: []UserJSON{}}
	for _, u := range admins {
		out.Admins = append(out.Admins, userJSON(u))
	}
	return status, out, nil
}

func (a *API) createCommunity(c *call) (int, any, error) {
	var in struct {
		OwnerID int64  `json:"owner_id"`
		Name    string `json:"name"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if _, err := a.p.User(c.ctx, in.OwnerID); err != nil {
		return 0, nil, err
	}
	cm, err := a.p.CreateCommunity(c.ctx, c.actor, in.OwnerID, in.Name)
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
	if _, err := a.p.User(c.ctx, in.UserID); err != nil {
		return 0, nil, err
	}
	if err := a.p.AddCommunityAdmin(c.ctx, c.actor, id, in.UserID); err != nil {
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
	if err := a.p.RemoveCommunityAdmin(c.ctx, c.actor, id, user); err != nil {
		return 0, nil, err
	}
	return a.community(c, id, http.StatusOK)
}

// ---- tokens

// TokenJSON is a token as an operator sees it: its hash (hex), never the
// token.
type TokenJSON struct {
	Hash         string `json:"hash"`
	Kind         string `json:"kind"`
	AppID        int64  `json:"app_id"`
	UserID       int64  `json:"user_id"`
	CommunityID  int64  `json:"community_id,omitempty"`
	Scope        string `json:"scope"`
	Flow         string `json:"flow"`
	IssuedAt     int64  `json:"issued_at"`
	ExpiresAt    int64  `json:"expires_at,omitempty"`
	RevokedAt    int64  `json:"revoked_at,omitempty"`
	RevokeReason string `json:"revoke_reason,omitempty"`
	DPoPBound    bool   `json:"dpop_bound"`
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func (a *API) listTokens(c *call) (int, any, error) {
	app, err := c.query("app_id", 0)
	if err != nil {
		return 0, nil, err
	}
	user, err := c.query("user_id", 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := c.query("limit", 100)
	if err != nil {
		return 0, nil, err
	}
	if app == 0 && user == 0 {
		return 0, nil, &badRequest{"app_id or user_id is required: whose tokens"}
	}
	tokens, err := a.p.ListTokens(c.ctx, storage.TokenFilter{AppID: app, UserID: user, LiveOnly: c.r.URL.Query().Get("live") == "true",
		Limit: int(min(max(limit, 1), 1000))})
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Tokens []TokenJSON `json:"tokens"`
	}{Tokens: []TokenJSON{}}
	for _, t := range tokens {
		audience := scope.User
		if t.Kind == token.Community {
			audience = scope.Community
		}
		out.Tokens = append(out.Tokens, TokenJSON{Hash: hex.EncodeToString(t.Hash[:]), Kind: t.Kind.String(), AppID: t.AppID, UserID: t.UserID,
			CommunityID: t.CommunityID, Scope: t.Scope.Text(audience), Flow: string(t.Flow), IssuedAt: t.IssuedAt.Unix(),
			ExpiresAt: unix(t.ExpiresAt), RevokedAt: unix(t.RevokedAt), RevokeReason: string(t.RevokeReason), DPoPBound: t.JKT != ""})
	}
	return http.StatusOK, out, nil
}

func (a *API) revokeToken(c *call) (int, any, error) {
	b, err := hex.DecodeString(c.r.PathValue("hash"))
	if err != nil || len(b) != len(token.Hash{}) {
		return 0, nil, &badRequest{"hash must be the 64 hex digits a token list shows"}
	}
	revoked, err := a.p.RevokeTokenByHash(c.ctx, c.actor, token.Hash(b))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]bool{"revoked": revoked}, nil
}

// ---- audit

// EventJSON is an audit event.
type EventJSON struct {
	ID          int64  `json:"id"`
	At          int64  `json:"at"`
	Action      string `json:"action"`
	ActorUserID int64  `json:"actor_user_id,omitempty"`
	AppID       int64  `json:"app_id,omitempty"`
	CommunityID int64  `json:"community_id,omitempty"`
	IP          string `json:"ip"`
	Detail      string `json:"detail"`
}

func (a *API) audit(c *call) (int, any, error) {
	app, err := c.query("app_id", 0)
	if err != nil {
		return 0, nil, err
	}
	community, err := c.query("community_id", 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := c.query("limit", 100)
	if err != nil {
		return 0, nil, err
	}
	events, err := a.p.Audit(c.ctx, storage.AuditFilter{AppID: app, CommunityID: community, Limit: int(min(max(limit, 1), 10000))})
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Events []EventJSON `json:"events"`
	}{Events: []EventJSON{}}
	for _, e := range events {
		out.Events = append(out.Events, EventJSON{ID: e.ID, At: e.At.Unix(), Action: string(e.Action), ActorUserID: e.ActorUserID,
			AppID: e.AppID, CommunityID: e.CommunityID, IP: e.IP, Detail: e.Detail})
	}
	return http.StatusOK, out, nil
}

// ---- the app's JSON, shared with the command line

// AppJSON is how an app is printed by the command line and the admin API:
// the fields of `app create` (client_id, client_secret, service_token) and
// its settings.
type AppJSON struct {
	ClientID                 int64    `json:"client_id"`
	ClientSecret             string   `json:"client_secret"`
	ServiceToken             string   `json:"service_token"`
	OwnerID                  int64    `json:"owner_id"`
	Title                    string   `json:"title"`
	Type                     string   `json:"type"`
	Description              string   `json:"description"`
	RedirectURIs             []string `json:"redirect_uris"`
	IFrameURL                string   `json:"iframe_url,omitempty"`
	IFrameScope              string   `json:"iframe_scope,omitempty"`
	ClientCredentials        bool     `json:"client_credentials"`
	OldClientSecret          string   `json:"old_client_secret,omitempty"`
	OldClientSecretExpiresAt int64    `json:"old_client_secret_expires_at,omitempty"`
	CreatedAt                int64    `json:"created_at"`
	Deleted                  bool     `json:"deleted,omitempty"`
}

// App is v as AppJSON.
func App(v platform.AppView) AppJSON {
	out := AppJSON{
		ClientID: v.ID, ClientSecret: v.ClientSecret, ServiceToken: v.ServiceToken, OwnerID: v.OwnerID,
		Title: v.Title, Type: string(v.Type), Description: v.Description, RedirectURIs: v.RedirectURIs,
		IFrameURL: v.IFrameURL, IFrameScope: v.IFrameScope.Text(scope.User), ClientCredentials: v.ClientCredentials, OldClientSecret: v.OldClientSecret,
		CreatedAt: v.CreatedAt.Unix(),
	}
	if out.RedirectURIs == nil {
		out.RedirectURIs = []string{}
	}
	if v.OldSecret != nil {
		out.OldClientSecretExpiresAt = v.OldSecret.ExpiresAt.Unix()
	}
	return out
}
