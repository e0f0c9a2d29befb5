package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// Apps inside the platform (/app<ID>), the authorization widget for other
// sites, a user's authorized apps, inbox and profile, and avatars.

// IFrameApp serves GET /app<ID>: the consent dialog on first launch, then
// the app in an iframe with its launch parameters.
func (h *Handler) IFrameApp(w http.ResponseWriter, r *http.Request) {
	a, ok := h.iframeApp(w, r)
	if !ok {
		return
	}
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	d, err := h.P.Consents.Check(r.Context(), u.ID, a.ID, a.IFrameScope, false)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if !d.Covered {
		h.render(w, r, http.StatusOK, "consent", page{Title: "Allow access", User: u, App: a, Scopes: a.IFrameScope.Scopes(scope.User),
			Action: "/app" + strconv.FormatInt(a.ID, 10)})
		return
	}
	src, err := h.P.LaunchURL(r.Context(), *u, a, h.OAuth.Cfg.ImplicitTokenTTL, httpx.ClientIP(r))
	if err != nil {
		h.internal(w, r, err)
		return
	}
	frame, _ := url.Parse(a.IFrameURL)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src "+
		frame.Scheme+"://"+frame.Host+"; frame-ancestors 'none'; base-uri 'none'")
	h.render(w, r, http.StatusOK, "iframe_app", page{Title: a.Title, Wide: true, Full: true, User: u, App: a, FrameURL: src})
}

// IFrameDecide serves POST /app<ID>: the launch dialog's Allow or Deny.
func (h *Handler) IFrameDecide(w http.ResponseWriter, r *http.Request) {
	a, ok := h.iframeApp(w, r)
	if !ok {
		return
	}
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	if err := h.parsePost(w, r); err != nil {
		h.errorPage(w, r, http.StatusForbidden, "Request refused", err.Error(), "")
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err := h.P.Consents.Grant(r.Context(), u.ID, a.ID, a.IFrameScope, nil, true); err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/app"+strconv.FormatInt(a.ID, 10), http.StatusSeeOther)
}

// iframeApp reads /app<ID> and loads the iframe app, answering 404 itself.
func (h *Handler) iframeApp(w http.ResponseWriter, r *http.Request) (storage.App, bool) {
	name := r.PathValue("name")
	id, err := strconv.ParseInt(strings.TrimPrefix(name, "app"), 10, 64)
	if !strings.HasPrefix(name, "app") || err != nil || id <= 0 {
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such page.", "")
		return storage.App{}, false
	}
	a, err := h.P.LookupApp(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (a.Type != storage.IFrame || a.IFrameURL == "")) {
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no embedded app with this ID.", "")
		return a, false
	}
	if err != nil {
		h.internal(w, r, err)
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
	if wr.App, err = h.P.LookupApp(r.Context(), id); err != nil {
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
		h.render(w, r, status, "widget_button", page{Title: "Log in", Bare: true, Error: capitalize(err.Error()) + "."})
		return
	}
	hd := w.Header()
	hd.Del("X-Frame-Options")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; frame-ancestors "+wr.Origin+"; base-uri 'none'")
	h.render(w, r, http.StatusOK, "widget_button", page{Title: "Log in", Bare: true, App: wr.App, Origin: wr.Origin, Mode: wr.Mode, AuthURL: wr.AuthURL})
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
	if err := h.parsePost(w, r); err != nil {
		h.errorPage(w, r, http.StatusForbidden, "Request refused", err.Error(), "")
		return
	}
	h.widgetAuth(w, r, r.PostForm, true)
}

func (h *Handler) widgetAuth(w http.ResponseWriter, r *http.Request, q url.Values, decided bool) {
	wr, err := h.parseWidget(r, q)
	if err != nil {
		h.render(w, r, http.StatusBadRequest, "error", page{Title: "Request refused", Display: "popup", Heading: "This site's request is invalid", Message: capitalize(err.Error()) + "."})
		return
	}
	u := h.currentUser(r)
	if u == nil {
		back := url.Values{}
		for _, k := range widgetParams {
			back.Set(k, q.Get(k))
		}
		http.Redirect(w, r, "/login?"+url.Values{"next": {"/widget/auth?" + back.Encode()}, "display": {"popup"}}.Encode(), http.StatusSeeOther)
		return
	}
	if decided {
		if q.Get("decision") != "allow" {
			if wr.Mode == "redirect" {
				http.Redirect(w, r, withQuery(wr.AuthURL, url.Values{"error": {"access_denied"}, "error_description": {"User denied your request"}}), http.StatusFound)
				return
			}
			h.render(w, r, http.StatusOK, "error", page{Title: "Not allowed", Display: "popup", Heading: "Not allowed", Message: "You did not allow " + wr.App.Title + " to log you in. You can close this window."})
			return
		}
		if err := h.P.Consents.Grant(r.Context(), u.ID, wr.App.ID, 0, nil, true); err != nil {
			h.internal(w, r, err)
			return
		}
	} else if ok, err := h.P.Consents.Authorized(r.Context(), u.ID, wr.App.ID); err == nil && !ok {
		p := page{Title: "Allow access", Display: "popup", User: u, App: wr.App, Action: "/widget/auth"}
		for _, k := range widgetParams {
			p.Hidden = append(p.Hidden, hidden{k, q.Get(k)})
		}
		h.render(w, r, http.StatusOK, "consent", p)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	data, err := h.P.WidgetData(wr.App, *u, platform.AvatarURL(h.OAuth.Cfg.PublicURL, u.ID, 100))
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if wr.Mode == "redirect" {
		q := url.Values{}
		for k, v := range data {
			q.Set(k, v)
		}
		http.Redirect(w, r, withQuery(wr.AuthURL, q), http.StatusFound)
		return
	}
	b, _ := json.Marshal(data)
	h.render(w, r, http.StatusOK, "widget_result", page{Title: "Logged in", Display: "popup", User: u, App: wr.App, ResultJSON: string(b)})
}

func withQuery(u string, q url.Values) string {
	if strings.Contains(u, "?") {
		return u + "&" + q.Encode()
	}
	return u + "?" + q.Encode()
}

// Widget serves /js/widget.js, the script sites include.
func Widget(w http.ResponseWriter, r *http.Request) {
	b, _ := staticFiles.ReadFile("static/widget.js")
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

type authorizedRow struct {
	App         storage.App
	Permissions string
	Since       string
}

var settingsNotices = map[string]string{
	"removed": "Access removed. The app's tokens no longer work; it will ask again next time.",
	"saved":   "Profile saved.",
}

// AuthorizedApps lists the apps the user has authorized.
func (h *Handler) AuthorizedApps(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	apps, err := h.P.AuthorizedApps(r.Context(), u.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := page{Title: "Authorized apps", Wide: true, User: u, Notice: settingsNotices[r.URL.Query().Get("done")]}
	for _, a := range apps {
		perms := strings.Join(a.Consent.Scope.Names(scope.User), ", ")
		if perms == "" {
			perms = "basic information"
		}
		p.Authorized = append(p.Authorized, authorizedRow{App: a.App, Permissions: perms, Since: a.Consent.CreatedAt.Format(time.DateTime)})
	}
	h.render(w, r, http.StatusOK, "settings_apps", p)
}

// RemoveAccess is "Remove access": every token of the user for that app
// stops working, and the consent is forgotten.
func (h *Handler) RemoveAccess(w http.ResponseWriter, r *http.Request) {
	u := h.signedInPost(w, r)
	if u == nil {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such app.", "")
		return
	}
	if err := h.P.RemoveAppAccess(r.Context(), actor(u, r), u.ID, id); err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/apps?done=removed", http.StatusSeeOther)
}

type inboxItem struct {
	From, When, Text string
	Unread           bool
}

// Inbox shows the user's notifications from apps and messages from users
// and communities, newest first, and marks them read.
func (h *Handler) Inbox(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	items, err := h.P.Inbox(ctx, u.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	rows := make([]inboxItem, len(items))
	for i, it := range items {
		rows[i] = inboxItem{From: it.From, When: it.At.Format(time.DateTime), Text: it.Text, Unread: it.Unread}
	}
	h.render(w, r, http.StatusOK, "inbox", page{Title: "Inbox", Wide: true, User: u, Inbox: rows})
	// Seen now: marked read for the next visit.
	if err := h.P.MarkInboxRead(ctx, u.ID); err != nil {
		h.Log.WarnContext(ctx, "marking the inbox read", "err", err)
	}
}

// Profile shows and edits the user's name.
func (h *Handler) Profile(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	h.render(w, r, http.StatusOK, "profile", page{Title: "Profile", User: u, Notice: settingsNotices[r.URL.Query().Get("done")]})
}

// SaveProfile changes the user's name.
func (h *Handler) SaveProfile(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	if err := h.parsePost(w, r); err != nil {
		h.render(w, r, http.StatusForbidden, "profile", page{Title: "Profile", User: u, Error: err.Error()})
		return
	}
	err := h.P.Rename(r.Context(), u.ID, r.PostForm.Get("first_name"), r.PostForm.Get("last_name"))
	if platform.KindOf(err) == platform.Invalid {
		h.render(w, r, http.StatusUnprocessableEntity, "profile", page{Title: "Profile", User: u, Error: capitalize(err.Error()) + "."})
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/profile?done=saved", http.StatusSeeOther)
}

// Avatar serves /avatar/{id}.svg: a generated picture with the user's
// initials on a color derived from the id, used as "photo" everywhere.
func (h *Handler) Avatar(w http.ResponseWriter, r *http.Request) {
	idText, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 {
		http.NotFound(w, r)
		return
	}
	u, err := h.P.User(r.Context(), id)
	if platform.KindOf(err) == platform.NotFound {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	size := 100
	if s, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil {
		size = min(max(s, 16), 400)
	}
	initials := ""
	for _, n := range []string{u.FirstName, u.LastName} {
		if c, _ := utf8.DecodeRuneInString(n); c != utf8.RuneError && c != 0 {
			initials += string(unicode.ToUpper(c))
		}
	}
	if initials == "" {
		initials = strings.ToUpper(u.Login[:1])
	}
	hue := (id * 137) % 360
	hd := w.Header()
	hd.Set("Content-Type", "image/svg+xml")
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	hd.Set("X-Content-Type-Options", "nosniff")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 100 100"><rect width="100" height="100" fill="hsl(%d,55%%,48%%)"/><text x="50" y="50" dy=".35em" text-anchor="middle" font-family="sans-serif" font-size="40" fill="#fff">%s</text></svg>`,
		size, size, hue, html.EscapeString(initials))
}
