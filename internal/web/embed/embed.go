// Package embed is apps inside the platform and on other sites
// (vk-wire.md §6): iframe apps at /app<ID>, opened with their signed launch
// parameters after a first-launch consent, and the authorization widget,
// which renders only on an app's registered origins.
package embed

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/web"
	"latchkey/internal/web/account"
)

// Platform is what these pages ask of the domain layer.
type Platform interface {
	LookupApp(ctx context.Context, id int64) (storage.App, error)
	LaunchURL(ctx context.Context, viewer storage.User, a storage.App, ttl time.Duration, ip string) (string, error)
	WidgetData(a storage.App, u storage.User, photo string) (map[string]string, error)
}

// Consents decides and records consent (platform.Consents).
type Consents interface {
	Check(ctx context.Context, userID, appID int64, want scope.Mask, ask bool) (platform.Decision, error)
	Authorized(ctx context.Context, userID, appID int64) (bool, error)
	Grant(ctx context.Context, userID, appID int64, m scope.Mask, d *platform.Decision, refresh bool) error
}

//go:embed templates/*.html
var templateFiles embed.FS

// pages are this package's pages, each with the type of its view.
type pages struct {
	iframeApp    *web.Template[frameView]
	widgetButton *web.Template[widgetRequest]
	widgetResult *web.Template[resultView]
}

func newPages(k *web.Kit) pages {
	return pages{
		iframeApp:    web.NewTemplate[frameView](k, templateFiles, "iframe_app"),
		widgetButton: web.NewTemplate[widgetRequest](k, templateFiles, "widget_button"),
		widgetResult: web.NewTemplate[resultView](k, templateFiles, "widget_result"),
	}
}

// Handler serves iframe apps and the widget.
type Handler struct {
	pages pages
	*web.Kit
	p        Platform
	consents Consents
	// tokenTTL is the lifetime of an iframe launch token (the implicit
	// flow's).
	tokenTTL  time.Duration
	publicURL *url.URL
}

// New returns the embedding pages.
func New(k *web.Kit, p Platform, consents Consents, tokenTTL time.Duration, publicURL *url.URL) *Handler {
	return &Handler{Kit: k, p: p, consents: consents, tokenTTL: tokenTTL, publicURL: publicURL, pages: newPages(k)}
}

// frameView is an iframe app's page.
type frameView struct {
	App      storage.App
	FrameURL string
}

// IFrameApp serves GET /app<ID>: the consent dialog on first launch, then
// the app in an iframe with its launch parameters.
func (h *Handler) IFrameApp(w http.ResponseWriter, r *http.Request) {
	a, ok := h.iframeApp(w, r)
	if !ok {
		return
	}
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	d, err := h.consents.Check(r.Context(), u.ID, a.ID, a.IFrameScope, false)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if !d.Covered {
		h.Consent.Render(w, r, http.StatusOK, web.Page{Title: "Allow access", User: u}, web.ConsentView{App: a, Scopes: a.IFrameScope.Scopes(scope.User), Action: "/app" + strconv.FormatInt(a.ID, 10)})
		return
	}
	src, err := h.p.LaunchURL(r.Context(), *u, a, h.tokenTTL, httpx.ClientIP(r))
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	frame, _ := url.Parse(a.IFrameURL)
	csp := web.PageCSP
	csp.Frame = frame.Scheme + "://" + frame.Host
	web.SetCSP(w, csp)
	h.pages.iframeApp.Render(w, r, http.StatusOK, web.Page{Title: a.Title, Wide: true, Full: true, User: u}, frameView{App: a, FrameURL: src})
}

// IFrameDecide serves POST /app<ID>: the launch dialog's Allow or Deny.
func (h *Handler) IFrameDecide(w http.ResponseWriter, r *http.Request) {
	a, ok := h.iframeApp(w, r)
	if !ok {
		return
	}
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !h.Answered(w, r, h.consents.Grant(r.Context(), u.ID, a.ID, a.IFrameScope, nil, true)) {
		return
	}
	http.Redirect(w, r, "/app"+strconv.FormatInt(a.ID, 10), http.StatusSeeOther)
}

// iframeApp reads /app<ID> and loads the iframe app, answering 404 itself.
func (h *Handler) iframeApp(w http.ResponseWriter, r *http.Request) (storage.App, bool) {
	name := r.PathValue("name")
	id, err := strconv.ParseInt(strings.TrimPrefix(name, "app"), 10, 64)
	if !strings.HasPrefix(name, "app") || err != nil || id <= 0 {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such page.", "")
		return storage.App{}, false
	}
	a, err := h.p.LookupApp(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (a.Type != storage.IFrame || a.IFrameURL == "")) {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no embedded app with this ID.", "")
		return a, false
	}
	if err != nil {
		h.Fail(w, r, err)
		return a, false
	}
	return a, true
}

// errUnregistered refuses a site that is not one of the app's origins.
type errUnregistered struct{ origin string }

func (e errUnregistered) Error() string {
	return fmt.Sprintf("this site (%s) is not registered for the app", e.origin)
}

// widgetRequest is a checked widget request: the app, the embedding
// origin, and where the result goes.
type widgetRequest struct {
	App     storage.App
	Origin  string
	Mode    string // callback or redirect
	AuthURL string
}

func (h *Handler) parseWidget(r *http.Request, q url.Values) (widgetRequest, error) {
	var wr widgetRequest
	id, err := strconv.ParseInt(q.Get("app_id"), 10, 64)
	if err != nil || id <= 0 {
		return wr, errors.New("app_id is missing or invalid")
	}
	if wr.App, err = h.p.LookupApp(r.Context(), id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return wr, errors.New("there is no app with this app_id")
		}
		return wr, err
	}
	wr.Origin, wr.Mode, wr.AuthURL = q.Get("origin"), q.Get("mode"), q.Get("auth_url")
	if !platform.OriginAllowed(wr.App, wr.Origin) {
		return wr, errUnregistered{wr.Origin}
	}
	switch wr.Mode {
	case "callback":
	case "redirect":
		u, err := url.Parse(wr.AuthURL)
		if wr.AuthURL == "" || err != nil || !platform.OriginAllowed(wr.App, u.Scheme+"://"+u.Host) {
			return wr, errors.New("authUrl must be on a site registered for the app")
		}
	default:
		return wr, errors.New("mode must be callback or redirect")
	}
	return wr, nil
}

// WidgetButton serves the widget's iframe. It renders only inside the
// app's registered origin: checked here against the origin the script
// reported, and enforced by the browser through CSP frame-ancestors, which
// names that origin alone.
func (h *Handler) WidgetButton(w http.ResponseWriter, r *http.Request) {
	wr, err := h.parseWidget(r, r.URL.Query())
	if err != nil {
		// frame-ancestors stays 'none': nothing renders on that site.
		status := http.StatusBadRequest
		if errors.As(err, new(errUnregistered)) {
			status = http.StatusForbidden
		}
		h.pages.widgetButton.Render(w, r, status, web.Page{Title: "Log in", Bare: true, Error: web.Sentence(err)}, widgetRequest{})
		return
	}
	csp := web.PageCSP
	csp.Img, csp.FrameAncestors = "", wr.Origin
	web.SetCSP(w, csp)
	h.pages.widgetButton.Render(w, r, http.StatusOK, web.Page{Title: "Log in", Bare: true}, wr)
}

// widgetParams are carried from the widget window's dialog to its answer.
var widgetParams = []string{"app_id", "origin", "mode", "auth_url"}

// WidgetAuth serves GET /widget/auth, the Latchkey window (or, in redirect
// mode, the whole tab): log in if needed, consent the first time, then the
// result.
func (h *Handler) WidgetAuth(w http.ResponseWriter, r *http.Request) {
	h.widgetAuth(w, r, r.URL.Query(), false)
}

// WidgetDecide serves POST /widget/auth, the dialog's Allow or Deny.
func (h *Handler) WidgetDecide(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		h.ErrorPage(w, r, http.StatusForbidden, "Request refused", err.Error(), "")
		return
	}
	h.widgetAuth(w, r, r.PostForm, true)
}

// resultView is the widget window's result page.
type resultView struct {
	App        storage.App
	ResultJSON string
}

func (h *Handler) widgetAuth(w http.ResponseWriter, r *http.Request, q url.Values, decided bool) {
	wr, err := h.parseWidget(r, q)
	if err != nil {
		h.Errors.Render(w, r, http.StatusBadRequest, web.Page{Title: "Request refused", Display: "popup"}, web.ErrorView{Heading: "This site's request is invalid", Message: web.Sentence(err)})
		return
	}
	u := h.CurrentUser(r)
	if u == nil {
		back := url.Values{}
		for _, k := range widgetParams {
			back.Set(k, q.Get(k))
		}
		http.Redirect(w, r, account.LoginURL("/widget/auth?"+back.Encode(), "popup"), http.StatusSeeOther)
		return
	}
	if decided {
		if q.Get("decision") != "allow" {
			if wr.Mode == "redirect" {
				http.Redirect(w, r, withQuery(wr.AuthURL, url.Values{"error": {"access_denied"}, "error_description": {"User denied your request"}}), http.StatusSeeOther)
				return
			}
			h.Errors.Render(w, r, http.StatusOK, web.Page{Title: "Not allowed", Display: "popup"}, web.ErrorView{Heading: "Not allowed", Message: "You did not allow " + wr.App.Title + " to log you in. You can close this window."})
			return
		}
		if !h.Answered(w, r, h.consents.Grant(r.Context(), u.ID, wr.App.ID, 0, nil, true)) {
			return
		}
	} else if ok, err := h.consents.Authorized(r.Context(), u.ID, wr.App.ID); err != nil {
		h.Fail(w, r, err)
		return
	} else if !ok {
		v := web.ConsentView{App: wr.App, Action: "/widget/auth"}
		for _, k := range widgetParams {
			v.Hidden = append(v.Hidden, web.Hidden{Name: k, Value: q.Get(k)})
		}
		h.Consent.Render(w, r, http.StatusOK, web.Page{Title: "Allow access", Display: "popup", User: u}, v)
		return
	}
	data, err := h.p.WidgetData(wr.App, *u, platform.AvatarURL(h.publicURL, u.ID, 100))
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if wr.Mode == "redirect" {
		q := url.Values{}
		for k, v := range data {
			q.Set(k, v)
		}
		status := http.StatusFound
		if r.Method == http.MethodPost {
			status = http.StatusSeeOther // never re-post the dialog to the site (RFC 9700 §4.12)
		}
		http.Redirect(w, r, withQuery(wr.AuthURL, q), status)
		return
	}
	b, _ := json.Marshal(data)
	h.pages.widgetResult.Render(w, r, http.StatusOK, web.Page{Title: "Logged in", Display: "popup", User: u}, resultView{App: wr.App, ResultJSON: string(b)})
}

func withQuery(u string, q url.Values) string {
	if strings.Contains(u, "?") {
		return u + "&" + q.Encode()
	}
	return u + "?" + q.Encode()
}
