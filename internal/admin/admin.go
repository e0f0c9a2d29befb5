// Package admin is the admin API, /admin/v1/ on the admin listener
// (--admin-addr): users, apps, communities, tokens and the audit log, for
// automation that should not need the command line on the database host.
// Requests carry "Authorization: Bearer <admin token>" (latchkey
// admin-token create); answers are JSON, errors RFC 9457 problem details;
// openapi.json (OpenAPI 3.1) describes every operation, and a test checks
// the real answers against it.
//
// A file per resource; the JSON shapes are in view, which the command line
// prints too.
package admin

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI is the API's description.
func OpenAPI() []byte { return openAPI }

// Deps are the platform's services the admin API uses, one per resource;
// each resource's file declares what it asks of its own.
type Deps struct {
	Admin       Admin
	Users       Users
	Apps        Apps
	Communities Communities
	Tokens      Tokens
	APIs        APIs
	Factors     Factors
	Upstreams   Upstreams
}

// Admin checks admin tokens and reads the audit log (platform.Admin).
type Admin interface {
	CheckAdminToken(ctx context.Context, raw string) (storage.AdminToken, error)
	Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error)
}

// API serves /admin/v1/.
type API struct {
	Deps
	log *slog.Logger
	mux *http.ServeMux
}

// New builds the admin API.
func New(d Deps, log *slog.Logger) *API {
	a := &API{Deps: d, log: log, mux: http.NewServeMux()}
	routes := map[string]func(*call) (int, any, error){
		"POST /admin/v1/users":                               a.createUser,
		"GET /admin/v1/users":                                a.listUsers,
		"GET /admin/v1/users/{id}":                           a.getUser,
		"POST /admin/v1/users/{id}/disable":                  a.disableUser,
		"POST /admin/v1/users/{id}/password":                 a.setPassword,
		"GET /admin/v1/users/{id}/factors":                   a.listFactors,
		"DELETE /admin/v1/users/{id}/factors":                a.resetFactors,
		"POST /admin/v1/apps":                                a.createApp,
		"GET /admin/v1/apps":                                 a.listApps,
		"GET /admin/v1/apps/{id}":                            a.getApp,
		"PATCH /admin/v1/apps/{id}":                          a.updateApp,
		"POST /admin/v1/apps/{id}/{action}":                  a.appAction,
		"DELETE /admin/v1/apps/{id}":                         a.deleteApp,
		"POST /admin/v1/apis":                                a.createAPI,
		"GET /admin/v1/apis":                                 a.listAPIs,
		"GET /admin/v1/apis/{id}":                            a.getAPI,
		"PATCH /admin/v1/apis/{id}":                          a.updateAPI,
		"POST /admin/v1/apis/{id}/rotate-secret":             a.rotateAPISecret,
		"DELETE /admin/v1/apis/{id}":                         a.deleteAPI,
		"POST /admin/v1/communities":                         a.createCommunity,
		"GET /admin/v1/communities/{id}":                     a.getCommunity,
		"POST /admin/v1/communities/{id}/admins":             a.addAdmin,
		"DELETE /admin/v1/communities/{id}/admins/{user_id}": a.removeAdmin,
		"GET /admin/v1/tokens":                               a.listTokens,
		"DELETE /admin/v1/tokens/{hash}":                     a.revokeToken,
		"GET /admin/v1/audit":                                a.audit,
		"POST /admin/v1/upstreams":                           a.createUpstream,
		"GET /admin/v1/upstreams":                            a.listUpstreams,
		"DELETE /admin/v1/upstreams/{name}":                  a.deleteUpstream,
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
		if _, err := a.Admin.CheckAdminToken(r.Context(), strings.TrimSpace(raw)); err != nil {
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
