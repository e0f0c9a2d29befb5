package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// The developer console: an app's owner creates apps, sees and rotates
// their credentials, edits redirect URIs, switches the client credentials
// flow and deletes apps. Every state change is a CSRF-checked POST, and the
// ones that break deployed servers go through a confirmation page.

// requireUser returns the signed-in user, or sends the browser to log in
// and returns nil.
func (h *Handler) requireUser(w http.ResponseWriter, r *http.Request) *storage.User {
	u := h.currentUser(r)
	if u == nil {
		http.Redirect(w, r, "/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
	}
	return u
}

// signedInPost returns the signed-in user of a posted form whose CSRF token
// checks out; otherwise it has answered (login page or refusal) and
// returns nil.
func (h *Handler) signedInPost(w http.ResponseWriter, r *http.Request) *storage.User {
	u := h.requireUser(w, r)
	if u == nil {
		return nil
	}
	if err := h.parsePost(w, r); err != nil {
		h.errorPage(w, r, http.StatusForbidden, "Not done", err.Error(), "")
		return nil
	}
	return u
}

func actor(u *storage.User, r *http.Request) platform.Actor {
	return platform.Actor{UserID: u.ID, IP: httpx.ClientIP(r)}
}

// Apps lists the user's apps.
func (h *Handler) Apps(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	apps, err := h.P.Apps(r.Context(), u.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "apps", page{Title: "My apps", Wide: true, User: u, Apps: apps})
}

// NewAppForm shows the creation form.
func (h *Handler) NewAppForm(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	h.render(w, r, http.StatusOK, "app_new", page{Title: "Create app", Wide: true, User: u, NewApp: platform.NewApp{Type: storage.Web}})
}

func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// CreateApp creates the app and opens its settings.
func (h *Handler) CreateApp(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	na := platform.NewApp{OwnerID: u.ID}
	if err := h.parsePost(w, r); err != nil {
		h.render(w, r, http.StatusForbidden, "app_new", page{Title: "Create app", Wide: true, User: u, Error: err.Error(), NewApp: na})
		return
	}
	f := r.PostForm
	na.Title, na.Type, na.Description = f.Get("title"), storage.AppType(f.Get("type")), f.Get("description")
	na.RedirectURIs, na.IFrameURL = lines(f.Get("redirect_uris")), strings.TrimSpace(f.Get("iframe_url"))
	m, err := scope.Parse(scope.User, f.Get("iframe_scope"))
	if err != nil {
		h.render(w, r, http.StatusUnprocessableEntity, "app_new", page{Title: "Create app", Wide: true, User: u, Error: capitalize(err.Error()) + ".", NewApp: na})
		return
	}
	na.IFrameScope = m
	v, err := h.P.CreateApp(r.Context(), actor(u, r), na)
	if platform.KindOf(err) == platform.Invalid {
		h.render(w, r, http.StatusUnprocessableEntity, "app_new", page{Title: "Create app", Wide: true, User: u, Error: capitalize(err.Error()) + ".", NewApp: na})
		return
	}
	if err != nil {
		h.internal(w, r, err)
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
}

type event struct{ When, What, Who, IP string }

// auditLabels name each audit action for people.
var auditLabels = map[storage.AuditAction]string{
	storage.AuditAppCreate: "App created", storage.AuditAppSettings: "Settings changed", storage.AuditSecretRotate: "Secure key regenerated",
	storage.AuditSecretRetire: "Previous secure key retired", storage.AuditServiceTokenNew: "Service token regenerated",
	storage.AuditClientCredsOn: "Client credentials flow turned on", storage.AuditClientCredsOff: "Client credentials flow turned off",
	storage.AuditTokenRevoke: "Token revoked by the app", storage.AuditCodeReplay: "Authorization code reused: its tokens revoked",
	storage.AuditAccessRemoved: "A user removed the app's access", storage.AuditAppDelete: "App deleted",
	storage.AuditCommunityCreate: "Community created", storage.AuditAdminAdd: "Admin added", storage.AuditAdminRemove: "Admin removed",
	storage.AuditCommunityTokenNew: "Token created here", storage.AuditCommunityTokenGone: "Token revoked",
}

// ownedApp reads {id} and loads the app for its owner, answering 404 or 403
// itself when it cannot.
func (h *Handler) ownedApp(w http.ResponseWriter, r *http.Request, u *storage.User) (platform.AppView, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.errorPage(w, r, http.StatusNotFound, "No such app", "There is no app with this ID.", "")
		return platform.AppView{}, false
	}
	v, err := h.P.App(r.Context(), actor(u, r), id)
	return v, h.answered(w, r, err)
}

// answered reports whether err is nil; otherwise it has answered it: a
// domain error with its own message and the status of its kind, anything
// else as an internal error.
func (h *Handler) answered(w http.ResponseWriter, r *http.Request, err error) bool {
	if err == nil {
		return true
	}
	switch platform.KindOf(err) {
	case 0:
		h.internal(w, r, err)
	case platform.NotFound:
		h.errorPage(w, r, http.StatusNotFound, "Not found", capitalize(err.Error())+".", "")
	case platform.Forbidden:
		h.errorPage(w, r, http.StatusForbidden, "Not allowed", capitalize(err.Error())+".", "")
	default:
		h.errorPage(w, r, http.StatusUnprocessableEntity, "Not done", capitalize(err.Error())+".", "")
	}
	return false
}

// logins names users in tables, loading each once per page.
type logins struct {
	h     *Handler
	ctx   context.Context
	names map[int64]string
}

func (h *Handler) logins(ctx context.Context) *logins {
	return &logins{h: h, ctx: ctx, names: map[int64]string{}}
}

func (l *logins) name(id int64) string {
	if id == 0 {
		return "command line"
	}
	if n, ok := l.names[id]; ok {
		return n
	}
	n := "user " + strconv.FormatInt(id, 10)
	if u, err := l.h.P.User(l.ctx, id); err == nil {
		n = u.Login
	}
	l.names[id] = n
	return n
}

// detailedEvents show their detail after their name.
var detailedEvents = map[storage.AuditAction]bool{storage.AuditCommunityTokenNew: true}

// eventRows renders audit events for a "recent events" table.
func (h *Handler) eventRows(ctx context.Context, evs []storage.AuditEvent) []event {
	who := h.logins(ctx)
	rows := make([]event, 0, len(evs))
	for _, e := range evs {
		what := auditLabels[e.Action]
		if what == "" {
			what = string(e.Action)
		}
		if detailedEvents[e.Action] && e.Detail != "" {
			what += ": " + e.Detail
		}
		rows = append(rows, event{When: e.At.Format(time.DateTime + " MST"), What: what, Who: who.name(e.ActorUserID), IP: e.IP})
	}
	return rows
}

// AppSettings shows an app's settings page.
func (h *Handler) AppSettings(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
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
	audit, err := h.P.AuditOf(r.Context(), actor(u, r), v.ID, 20)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := page{Title: v.Title, Wide: true, User: u, View: v, Notice: notice, Error: errMsg, BlankURL: h.OAuth.BlankURL()}
	if v.OldSecret != nil {
		p.OldSecretUntil = v.OldSecret.ExpiresAt.Format("2 Jan 2006 15:04 MST")
	}
	p.Events = h.eventRows(r.Context(), audit)
	h.render(w, r, status, "app", p)
}

// UpdateApp saves the settings form.
func (h *Handler) UpdateApp(w http.ResponseWriter, r *http.Request) {
	u := h.signedInPost(w, r)
	if u == nil {
		return
	}
	v, ok := h.ownedApp(w, r, u)
	if !ok {
		return
	}
	f := r.PostForm
	s := platform.AppSettings{Title: f.Get("title"), Description: f.Get("description"), RedirectURIs: lines(f.Get("redirect_uris")), IFrameURL: strings.TrimSpace(f.Get("iframe_url"))}
	if !f.Has("iframe_url") {
		s.IFrameURL = v.IFrameURL
	}
	s.IFrameScope = v.IFrameScope
	if f.Has("iframe_scope") {
		m, err := scope.Parse(scope.User, f.Get("iframe_scope"))
		if err != nil {
			h.renderApp(w, r, u, v, http.StatusUnprocessableEntity, "", capitalize(err.Error())+".")
			return
		}
		s.IFrameScope = m
	}
	if _, err := h.P.UpdateAppSettings(r.Context(), actor(u, r), v.ID, s); platform.KindOf(err) == platform.Invalid {
		h.renderApp(w, r, u, v, http.StatusUnprocessableEntity, "", capitalize(err.Error())+".")
		return
	} else if !h.answered(w, r, err) {
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

// ConfirmForm asks before an action that breaks what is deployed.
func (h *Handler) ConfirmForm(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	c, known := confirmations[r.PathValue("action")]
	if !known {
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such action.", "")
		return
	}
	v, ok := h.ownedApp(w, r, u)
	if !ok {
		return
	}
	base := "/apps/" + strconv.FormatInt(v.ID, 10)
	h.render(w, r, http.StatusOK, "confirm", page{Title: c.heading, User: u, Heading: c.heading, Message: c.message, Confirm: c.button,
		Action: base + "/" + r.PathValue("action"), Back: base, Danger: r.PathValue("action") != "rotate-secret"})
}

// AppAction performs a confirmed action, or switches client credentials.
func (h *Handler) AppAction(w http.ResponseWriter, r *http.Request) {
	u := h.signedInPost(w, r)
	if u == nil {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		h.errorPage(w, r, http.StatusNotFound, "No such app", "There is no app with this ID.", "")
		return
	}
	action, a, ctx := r.PathValue("action"), actor(u, r), r.Context()
	if _, needsConfirm := confirmations[action]; needsConfirm && r.PostForm.Get("confirm") != "yes" {
		h.errorPage(w, r, http.StatusBadRequest, "Not done", "This action needs confirmation.", "/apps/"+r.PathValue("id"))
		return
	}
	switch action {
	case "rotate-secret":
		_, err = h.P.RotateSecret(ctx, a, id)
	case "retire-secret":
		_, err = h.P.RetireSecret(ctx, a, id)
	case "new-service-token":
		_, err = h.P.NewServiceToken(ctx, a, id)
	case "client-credentials":
		switch r.PostForm.Get("state") {
		case "on", "off":
			_, err = h.P.SetClientCredentials(ctx, a, id, r.PostForm.Get("state") == "on")
		default:
			h.errorPage(w, r, http.StatusBadRequest, "Not done", "Choose on or off.", "")
			return
		}
	case "delete":
		if _, err = h.P.DeleteApp(ctx, a, id); err == nil {
			http.Redirect(w, r, "/apps", http.StatusSeeOther)
			return
		}
	default:
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such action.", "")
		return
	}
	if !h.answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/apps/"+strconv.FormatInt(id, 10)+"?done="+action, http.StatusSeeOther)
}
