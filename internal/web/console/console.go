// Package console is the developer console: an app's owner creates apps,
// sees and rotates their credentials, edits redirect URIs, switches the
// client credentials flow and deletes apps. Every state change is a
// CSRF-checked POST, and the ones that break deployed servers go through a
// confirmation page.
package console

import (
	"context"
	"embed"
	"net/http"
	"strconv"
	"strings"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/web"
)

// Platform is what the console asks of the domain layer.
type Platform interface {
	AppsOf(ctx context.Context, ownerID int64) ([]storage.App, error)
	App(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	CreateApp(ctx context.Context, actor platform.Actor, a platform.NewApp) (platform.AppView, error)
	UpdateAppSettings(ctx context.Context, actor platform.Actor, id int64, s platform.AppSettings) (platform.AppView, error)
	RotateSecret(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	RetireSecret(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	NewServiceToken(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	SetClientCredentials(ctx context.Context, actor platform.Actor, id int64, on bool) (platform.AppView, error)
	SetAuth(ctx context.Context, actor platform.Actor, id int64, auth platform.ClientAuth) (platform.AppView, error)
	SetBackchannelLogoutURI(ctx context.Context, actor platform.Actor, id int64, uri string) (platform.AppView, error)
	DeleteApp(ctx context.Context, actor platform.Actor, id int64) (platform.AppView, error)
	AuditOf(ctx context.Context, actor platform.Actor, appID int64, limit int) ([]storage.AuditEvent, error)
}

//go:embed templates/*.html
var templateFiles embed.FS

// pages are this package's pages, each with the type of its view.
type pages struct {
	apps    *web.Template[appsView]
	appNew  *web.Template[newAppView]
	app     *web.Template[appView]
	confirm *web.Template[confirmView]
	apiNew  *web.Template[newAPIView]
	api     *web.Template[apiView]
}

func newPages(k *web.Kit) pages {
	return pages{
		apps:    web.NewTemplate[appsView](k, templateFiles, "apps"),
		appNew:  web.NewTemplate[newAppView](k, templateFiles, "app_new"),
		app:     web.NewTemplate[appView](k, templateFiles, "app"),
		confirm: web.NewTemplate[confirmView](k, templateFiles, "confirm"),
		apiNew:  web.NewTemplate[newAPIView](k, templateFiles, "api_new"),
		api:     web.NewTemplate[apiView](k, templateFiles, "api"),
	}
}

// Handler serves the console.
type Handler struct {
	pages pages
	*web.Kit
	p    Platform
	apis APIs
	// blankURL is <public-url>/blank.html, always allowed for standalone apps.
	blankURL     string
	discoveryURL string
}

// New returns the console's handlers.
func New(k *web.Kit, p Platform, apis APIs, blankURL, discoveryURL string) *Handler {
	return &Handler{Kit: k, p: p, apis: apis, blankURL: blankURL, discoveryURL: discoveryURL, pages: newPages(k)}
}

// appsView is the list of the user's apps and APIs.
type appsView struct {
	Apps []storage.App
	APIs []platform.APIView
}

// Apps lists the user's apps.
func (h *Handler) Apps(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	apps, err := h.p.AppsOf(r.Context(), u.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	apis, err := h.apis.APIsOf(r.Context(), u.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	h.pages.apps.Render(w, r, http.StatusOK, web.Page{Title: "My apps", Wide: true, User: u}, appsView{Apps: apps, APIs: apis})
}

// newAppView is the creation form's.
type newAppView struct{ App platform.NewApp }

// NewAppForm shows the creation form.
func (h *Handler) NewAppForm(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	h.pages.appNew.Render(w, r, http.StatusOK, web.Page{Title: "Create app", Wide: true, User: u}, newAppView{platform.NewApp{Type: storage.Web}})
}

// CreateApp creates the app and opens its settings.
func (h *Handler) CreateApp(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	na := platform.NewApp{OwnerID: u.ID}
	again := func(status int, msg string) {
		h.pages.appNew.Render(w, r, status, web.Page{Title: "Create app", Wide: true, User: u, Error: msg}, newAppView{na})
	}
	if err := h.ParsePost(w, r); err != nil {
		again(http.StatusForbidden, err.Error())
		return
	}
	f := r.PostForm
	na.Title, na.Type, na.Description = f.Get("title"), storage.AppType(f.Get("type")), f.Get("description")
	na.RedirectURIs, na.IFrameURL = web.Lines(f.Get("redirect_uris")), strings.TrimSpace(f.Get("iframe_url"))
	m, err := scope.Parse(scope.User, f.Get("iframe_scope"))
	if err != nil {
		again(http.StatusUnprocessableEntity, web.Sentence(err))
		return
	}
	na.IFrameScope = m
	v, err := h.p.CreateApp(r.Context(), web.Actor(u, r), na)
	if platform.KindOf(err) == platform.Invalid {
		again(http.StatusUnprocessableEntity, web.Sentence(err))
		return
	}
	if !h.Answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/apps/"+strconv.FormatInt(v.ID, 10)+"?done=created", http.StatusSeeOther)
}

// notices are the messages shown after an action, by the ?done= value.
var notices = map[string]string{
	"created":            "App created. Its secure key and service token are below.",
	"saved":              "Settings saved.",
	"rotate-secret":      "New secure key generated. The previous key keeps working until you retire it, or for 7 days.",
	"retire-secret":      "The previous secure key no longer works.",
	"new-service-token":  "New service token generated. The previous token no longer works.",
	"client-credentials": "Client credentials flow switched.",
	"authentication":     "Client authentication saved.",
	"backchannel-logout": "Back-channel logout saved.",
}

// ownedApp reads {id} and loads the app for its owner, answering 404 or 403
// itself when it cannot.
func (h *Handler) ownedApp(w http.ResponseWriter, r *http.Request, u *storage.User) (platform.AppView, bool) {
	id, ok := web.PathID(r, "id")
	if !ok {
		h.ErrorPage(w, r, http.StatusNotFound, "No such app", "There is no app with this ID.", "")
		return platform.AppView{}, false
	}
	v, err := h.p.App(r.Context(), web.Actor(u, r), id)
	return v, h.Answered(w, r, err)
}

// appView is an app's settings page.
type appView struct {
	platform.AppView
	OldSecretUntil string
	BlankURL       string
	// DiscoveryURL is the server's OpenID Connect discovery document.
	DiscoveryURL string
	// Public: a standalone app, which authenticates with PKCE alone.
	Public bool
	Events []web.Event
}

// AppSettings shows an app's settings page.
func (h *Handler) AppSettings(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	v, ok := h.ownedApp(w, r, u)
	if !ok {
		return
	}
	h.renderApp(w, r, u, v, http.StatusOK, notices[r.URL.Query().Get("done")], "")
}

func (h *Handler) renderApp(w http.ResponseWriter, r *http.Request, u *storage.User, v platform.AppView, status int, notice, errMsg string) {
	audit, err := h.p.AuditOf(r.Context(), web.Actor(u, r), v.ID, 20)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	view := appView{AppView: v, BlankURL: h.blankURL, DiscoveryURL: h.discoveryURL, Public: v.Type == storage.Standalone, Events: h.Events(r.Context(), audit)}
	if v.OldSecret != nil {
		view.OldSecretUntil = v.OldSecret.ExpiresAt.Format("2 Jan 2006 15:04 MST")
	}
	h.pages.app.Render(w, r, status, web.Page{Title: v.Title, Wide: true, User: u, Notice: notice, Error: errMsg}, view)
}

// UpdateApp saves the settings form.
func (h *Handler) UpdateApp(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	v, ok := h.ownedApp(w, r, u)
	if !ok {
		return
	}
	f := r.PostForm
	s := platform.AppSettings{Title: f.Get("title"), Description: f.Get("description"), RedirectURIs: web.Lines(f.Get("redirect_uris")), IFrameURL: strings.TrimSpace(f.Get("iframe_url"))}
	if !f.Has("iframe_url") {
		s.IFrameURL = v.IFrameURL
	}
	s.IFrameScope = v.IFrameScope
	if f.Has("iframe_scope") {
		m, err := scope.Parse(scope.User, f.Get("iframe_scope"))
		if err != nil {
			h.renderApp(w, r, u, v, http.StatusUnprocessableEntity, "", web.Sentence(err))
			return
		}
		s.IFrameScope = m
	}
	if _, err := h.p.UpdateAppSettings(r.Context(), web.Actor(u, r), v.ID, s); platform.KindOf(err) == platform.Invalid {
		h.renderApp(w, r, u, v, http.StatusUnprocessableEntity, "", web.Sentence(err))
		return
	} else if !h.Answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/apps/"+strconv.FormatInt(v.ID, 10)+"?done=saved", http.StatusSeeOther)
}

// confirmations describe the actions that ask first.
var confirmations = map[string]struct{ heading, message, button string }{
	"rotate-secret":     {"Generate a new secure key?", "The new key becomes current. The previous one keeps working until you retire it, or for 7 days, so your servers can switch without downtime.", "Generate new key"},
	"retire-secret":     {"Retire the previous secure key?", "Servers still using the previous key will fail to authenticate at once.", "Retire previous key"},
	"new-service-token": {"Generate a new service token?", "The current service token stops working at once, everywhere.", "Generate new token"},
	"delete":            {"Delete this app?", "The app is deleted and every token of it stops working at once. This cannot be undone.", "Delete app"},
}

// confirmView is the confirmation page's.
type confirmView struct {
	Heading, Message, Confirm string
	Action, Back              string
	Danger                    bool
}

// ConfirmForm asks before an action that breaks what is deployed.
func (h *Handler) ConfirmForm(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	c, known := confirmations[r.PathValue("action")]
	if !known {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such action.", "")
		return
	}
	v, ok := h.ownedApp(w, r, u)
	if !ok {
		return
	}
	base := "/apps/" + strconv.FormatInt(v.ID, 10)
	h.pages.confirm.Render(w, r, http.StatusOK, web.Page{Title: c.heading, User: u}, confirmView{Heading: c.heading, Message: c.message, Confirm: c.button,
		Action: base + "/" + r.PathValue("action"), Back: base, Danger: r.PathValue("action") != "rotate-secret"})
}

// AppAction performs a confirmed action, or switches client credentials.
func (h *Handler) AppAction(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	id, ok := web.PathID(r, "id")
	if !ok {
		h.ErrorPage(w, r, http.StatusNotFound, "No such app", "There is no app with this ID.", "")
		return
	}
	action, a, ctx := r.PathValue("action"), web.Actor(u, r), r.Context()
	if _, needsConfirm := confirmations[action]; needsConfirm && r.PostForm.Get("confirm") != "yes" {
		h.ErrorPage(w, r, http.StatusBadRequest, "Not done", "This action needs confirmation.", "/apps/"+r.PathValue("id"))
		return
	}
	var err error
	switch action {
	case "rotate-secret":
		_, err = h.p.RotateSecret(ctx, a, id)
	case "retire-secret":
		_, err = h.p.RetireSecret(ctx, a, id)
	case "new-service-token":
		_, err = h.p.NewServiceToken(ctx, a, id)
	case "client-credentials":
		switch r.PostForm.Get("state") {
		case "on", "off":
			_, err = h.p.SetClientCredentials(ctx, a, id, r.PostForm.Get("state") == "on")
		default:
			h.ErrorPage(w, r, http.StatusBadRequest, "Not done", "Choose on or off.", "")
			return
		}
	case "authentication":
		auth := platform.ClientAuth{Method: r.PostForm.Get("method")}
		if auth.Method == platform.AuthPrivateKey {
			auth.JWKS, auth.JWKSURI = strings.TrimSpace(r.PostForm.Get("jwks")), strings.TrimSpace(r.PostForm.Get("jwks_uri"))
		}
		_, err = h.p.SetAuth(ctx, a, id, auth)
	case "backchannel-logout":
		_, err = h.p.SetBackchannelLogoutURI(ctx, a, id, strings.TrimSpace(r.PostForm.Get("backchannel_logout_uri")))
	case "delete":
		if _, err = h.p.DeleteApp(ctx, a, id); err == nil {
			http.Redirect(w, r, "/apps", http.StatusSeeOther)
			return
		}
	default:
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such action.", "")
		return
	}
	if !h.Answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/apps/"+strconv.FormatInt(id, 10)+"?done="+action, http.StatusSeeOther)
}
