// Package demo is the callback page of `serve --demo`'s web app: it shows
// what an app's server does with the code the browser brings back — the
// exchange at /access_token and a first API call — by doing both through
// the server's own endpoints, in process, and printing each request and
// answer.
package demo

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"

	"latchkey/internal/platform"
	"latchkey/internal/web"
)

// Path is where the demo web app's redirect URI points.
const Path = "/demo/callback"

// Apps is what the page asks of the platform: the demo app, with its secret.
type Apps interface {
	App(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
}

//go:embed templates/*.html
var templateFiles embed.FS

// pages are this package's pages, each with the type of its view.
type pages struct {
	demo *web.Template[view]
}

func newPages(k *web.Kit) pages {
	return pages{
		demo: web.NewTemplate[view](k, templateFiles, "demo"),
	}
}

// Handler serves the demo callback page.
type Handler struct {
	pages pages
	*web.Kit
	apps Apps
	// AppID and OwnerID name the demo web app; Server is the whole server,
	// which the page's requests go through as any client's would.
	AppID, OwnerID int64
	Server         http.Handler
	PublicURL      *url.URL
}

// New returns the page for the demo app id owned by owner.
func New(k *web.Kit, apps Apps, appID, ownerID int64, server http.Handler, public *url.URL) *Handler {
	return &Handler{Kit: k, apps: apps, AppID: appID, OwnerID: ownerID, Server: server, PublicURL: public, pages: newPages(k)}
}

// step is one request the page made and the answer it got.
type step struct {
	Title, Request, Answer string
}

type view struct {
	Code, Error string
	Steps       []step
}

// Callback serves GET /demo/callback?code=…: the exchange and an API call.
func (h *Handler) Callback(w http.ResponseWriter, r *http.Request) {
	v := view{Code: r.URL.Query().Get("code"), Error: r.URL.Query().Get("error_description")}
	if v.Code == "" {
		if v.Error == "" {
			v.Error = "No code: open the demo's authorize URL and allow access."
		}
		h.pages.demo.Render(w, r, http.StatusOK, web.Page{Title: "Demo callback", Wide: true}, v)
		return
	}
	app, err := h.apps.App(r.Context(), platform.Actor{UserID: h.OwnerID}, h.AppID)
	if !h.Answered(w, r, err) {
		return
	}
	redirect := h.PublicURL.JoinPath(Path).String()
	form := url.Values{"client_id": {strconv.FormatInt(app.ID, 10)}, "client_secret": {app.ClientSecret}, "redirect_uri": {redirect}, "code": {v.Code}}
	status, body := h.call("POST", "/access_token", form)
	v.Steps = append(v.Steps, step{Title: "Exchange the code for a token (on the app's server: it holds the secret)",
		Request: "curl " + h.PublicURL.JoinPath("/access_token").String() + " -d " + shellQuote(form.Encode()),
		Answer:  strconv.Itoa(status) + " " + body})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal([]byte(body), &tok) == nil && tok.AccessToken != "" {
		q := url.Values{"access_token": {tok.AccessToken}, "v": {"5.199"}}
		status, body = h.call("GET", "/method/users.get?"+q.Encode(), nil)
		v.Steps = append(v.Steps, step{Title: "Call the API with the token",
			Request: "curl " + shellQuote(h.PublicURL.JoinPath("/method/users.get").String()+"?"+q.Encode()),
			Answer:  strconv.Itoa(status) + " " + body})
	}
	h.pages.demo.Render(w, r, http.StatusOK, web.Page{Title: "Demo callback", Wide: true}, v)
}

// call runs one request through the server in process and returns its
// answer, indented.
func (h *Handler) call(method, target string, form url.Values) (int, string) {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	h.Server.ServeHTTP(rec, req)
	var pretty bytes.Buffer
	if json.Indent(&pretty, rec.Body.Bytes(), "", "  ") != nil {
		return rec.Code, rec.Body.String()
	}
	return rec.Code, pretty.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
