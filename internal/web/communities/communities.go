// Package communities is community management as people use it: the
// communities you admin, creating one, its admins, and the "API usage" tab
// with its tokens (create, list, revoke) and recent events.
package communities

import (
	"context"
	"embed"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
	"latchkey/internal/web"
)

// Platform is what these pages ask of the domain layer.
type Platform interface {
	CommunitiesOf(ctx context.Context, userID int64) ([]storage.Community, error)
	CreateCommunity(ctx context.Context, actor platform.Actor, ownerID int64, name string) (storage.Community, error)
	Community(ctx context.Context, actor platform.Actor, id int64) (storage.Community, error)
	CommunityAdmins(ctx context.Context, actor platform.Actor, id int64) ([]storage.User, error)
	AddCommunityAdminByLogin(ctx context.Context, actor platform.Actor, communityID int64, login string) error
	RemoveCommunityAdmin(ctx context.Context, actor platform.Actor, communityID, userID int64) error
	CommunityTokens(ctx context.Context, actor platform.Actor, communityID int64) ([]storage.Token, error)
	CreateCommunityToken(ctx context.Context, actor platform.Actor, communityID, appID int64, mask scope.Mask) (string, error)
	RevokeCommunityToken(ctx context.Context, actor platform.Actor, communityID int64, h token.Hash) error
	CommunityAudit(ctx context.Context, actor platform.Actor, communityID int64, limit int) ([]storage.AuditEvent, error)
	AppsOf(ctx context.Context, ownerID int64) ([]storage.App, error)
	LookupApp(ctx context.Context, id int64) (storage.App, error)
	BotsOverview(ctx context.Context, actor platform.Actor, communityID int64) (platform.BotsOverview, error)
	CommunityConversations(ctx context.Context, actor platform.Actor, communityID int64, limit int) ([]platform.ConversationItem, error)
}

//go:embed templates/*.html
var templateFiles embed.FS

// pages are this package's pages, each with the type of its view.
type pages struct {
	communities    *web.Template[listView]
	community      *web.Template[communityView]
	communityWrite *web.Template[writeView]
}

func newPages(k *web.Kit) pages {
	return pages{
		communities:    web.NewTemplate[listView](k, templateFiles, "communities"),
		community:      web.NewTemplate[communityView](k, templateFiles, "community"),
		communityWrite: web.NewTemplate[writeView](k, templateFiles, "community_write"),
	}
}

// Handler serves the community pages.
type Handler struct {
	pages pages
	*web.Kit
	p Platform
	w Writer
	// writes bounds the messages one person sends from community pages.
	writes *web.Throttle
}

// New returns the community pages.
func New(k *web.Kit, p Platform, w Writer) *Handler {
	return &Handler{Kit: k, p: p, w: w, writes: k.Throttle("write", writeWindow), pages: newPages(k)}
}

// listView is the list of the user's communities.
type listView struct{ Communities []storage.Community }

// Communities lists the user's communities, with a creation form.
func (h *Handler) Communities(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	h.renderList(w, r, u, http.StatusOK, "")
}

func (h *Handler) renderList(w http.ResponseWriter, r *http.Request, u *storage.User, status int, errMsg string) {
	cs, err := h.p.CommunitiesOf(r.Context(), u.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	h.pages.communities.Render(w, r, status, web.Page{Title: "My communities", Wide: true, User: u, Error: errMsg}, listView{cs})
}

// CreateCommunity creates a community with the user as its first admin.
func (h *Handler) CreateCommunity(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	if err := h.ParsePost(w, r); err != nil {
		h.renderList(w, r, u, http.StatusForbidden, err.Error())
		return
	}
	c, err := h.p.CreateCommunity(r.Context(), web.Actor(u, r), u.ID, r.PostForm.Get("name"))
	if platform.KindOf(err) == platform.Invalid {
		h.renderList(w, r, u, http.StatusUnprocessableEntity, web.Sentence(err))
		return
	}
	if !h.Answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/communities/"+strconv.FormatInt(c.ID, 10), http.StatusSeeOther)
}

var notices = map[string]string{
	"admin-added":   "Admin added.",
	"admin-removed": "Admin removed. The tokens they granted keep working until an admin revokes them.",
	"revoked":       "Token revoked. It no longer works.",
}

// tokenRow is a token as the API usage tab lists it.
type tokenRow struct {
	ID, App, Permissions, GrantedBy, Created, LastUsed string
}

// communityView is a community's page, on its admins or API usage tab.
type communityView struct {
	Community storage.Community
	Tab       string
	Admins    []storage.User
	Tokens    []tokenRow
	// NewToken is a token just created, shown once.
	NewToken  string
	AllScopes []scope.Scope
	Apps      []storage.App
	Events    []web.Event
	// Bots: the Long Poll settings, callback servers and their recent
	// deliveries (the API usage tab).
	Bots       platform.BotsOverview
	Deliveries []deliveryRow
	// Messages are the community's conversations with users.
	Messages []messageRow
}

// messageRow is a message of the community's conversations.
type messageRow struct {
	When, User, Text string
	Incoming         bool
}

// deliveryRow is a Callback API delivery as the page lists it.
type deliveryRow struct {
	When, Server, Event, Status, Error string
	Attempts                           int
}

// Community shows a community's admins tab or API usage tab.
func (h *Handler) Community(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	tab := "admins"
	if strings.HasSuffix(r.URL.Path, "/api") {
		tab = "api"
	}
	h.render(w, r, u, tab, http.StatusOK, notices[r.URL.Query().Get("done")], "", "")
}

func communityID(r *http.Request) int64 {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, u *storage.User, tab string, status int, notice, errMsg, newToken string) {
	ctx, a, id := r.Context(), web.Actor(u, r), communityID(r)
	c, err := h.p.Community(ctx, a, id)
	if !h.Answered(w, r, err) {
		return
	}
	v := communityView{Community: c, Tab: tab, NewToken: newToken}
	if tab == "admins" {
		if v.Admins, err = h.p.CommunityAdmins(ctx, a, id); err != nil {
			h.Fail(w, r, err)
			return
		}
	} else {
		if v.Tokens, err = h.tokenRows(ctx, a, id); err != nil {
			h.Fail(w, r, err)
			return
		}
		v.AllScopes = scope.All(scope.Community)
		if v.Bots, err = h.p.BotsOverview(ctx, a, id); err != nil {
			h.Fail(w, r, err)
			return
		}
		servers := map[int64]string{}
		for _, s := range v.Bots.Servers {
			servers[s.ID] = s.Title
		}
		msgs, err := h.p.CommunityConversations(ctx, a, id, 50)
		if err != nil {
			h.Fail(w, r, err)
			return
		}
		for _, m := range msgs {
			v.Messages = append(v.Messages, messageRow{When: m.At.Format(time.DateTime), Text: m.Text, Incoming: m.Incoming,
				User: strings.TrimSpace(m.User.FirstName + " " + m.User.LastName + " (" + m.User.Login + ")")})
		}
		for _, d := range v.Bots.Deliveries {
			v.Deliveries = append(v.Deliveries, deliveryRow{When: d.UpdatedAt.Format(time.DateTime), Server: servers[d.ServerID],
				Event: d.Type, Status: d.Status, Error: d.LastError, Attempts: d.Attempts})
		}
		if v.Apps, err = h.p.AppsOf(ctx, u.ID); err != nil {
			h.Fail(w, r, err)
			return
		}
	}
	events, err := h.p.CommunityAudit(ctx, a, id, 20)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	v.Events = h.Events(ctx, events)
	h.pages.community.Render(w, r, status, web.Page{Title: c.Name, Wide: true, User: u, Notice: notice, Error: errMsg}, v)
}

func (h *Handler) tokenRows(ctx context.Context, a platform.Actor, id int64) ([]tokenRow, error) {
	tokens, err := h.p.CommunityTokens(ctx, a, id)
	if err != nil {
		return nil, err
	}
	who := h.Names(ctx)
	apps := map[int64]string{}
	var rows []tokenRow
	for _, t := range tokens {
		row := tokenRow{ID: hex.EncodeToString(t.Hash[:]), Permissions: strings.Join(t.Scope.Names(scope.Community), ", "),
			GrantedBy: who.Login(t.UserID), Created: t.IssuedAt.Format(time.DateTime), LastUsed: "never"}
		if !t.LastUsedAt.IsZero() {
			row.LastUsed = t.LastUsedAt.Format(time.DateTime)
		}
		switch {
		case t.AppID == 0:
			row.App = "created here"
		case apps[t.AppID] != "":
			row.App = apps[t.AppID]
		default:
			row.App = "app " + strconv.FormatInt(t.AppID, 10)
			if app, err := h.p.LookupApp(ctx, t.AppID); err == nil {
				row.App = app.Title
			}
			apps[t.AppID] = row.App
		}
		if t.Flow == storage.FlowConsole && t.AppID != 0 {
			row.App += " (created here)"
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Post handles the community's forms: add and remove admins, create and
// revoke tokens.
func (h *Handler) Post(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	ctx, a, id := r.Context(), web.Actor(u, r), communityID(r)
	base := "/communities/" + strconv.FormatInt(id, 10)
	switch {
	case strings.HasSuffix(r.URL.Path, "/admins"):
		err := h.p.AddCommunityAdminByLogin(ctx, a, id, r.PostForm.Get("login"))
		if errors.Is(err, platform.ErrNoSuchLogin) {
			h.render(w, r, u, "admins", http.StatusUnprocessableEntity, "", web.Sentence(err), "")
			return
		}
		if !h.Answered(w, r, err) {
			return
		}
		http.Redirect(w, r, base+"?done=admin-added", http.StatusSeeOther)
	case strings.HasSuffix(r.URL.Path, "/remove"):
		uid, _ := strconv.ParseInt(r.PathValue("user"), 10, 64)
		err := h.p.RemoveCommunityAdmin(ctx, a, id, uid)
		if errors.Is(err, platform.ErrLastAdmin) {
			h.render(w, r, u, "admins", http.StatusConflict, "", web.Sentence(err), "")
			return
		}
		if !h.Answered(w, r, err) {
			return
		}
		if uid == u.ID {
			http.Redirect(w, r, "/communities", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, base+"?done=admin-removed", http.StatusSeeOther)
	case strings.HasSuffix(r.URL.Path, "/tokens"):
		var mask scope.Mask
		for _, name := range r.PostForm["scope"] {
			m, err := scope.Parse(scope.Community, name)
			if err != nil {
				h.render(w, r, u, "api", http.StatusUnprocessableEntity, "", web.Sentence(err), "")
				return
			}
			mask |= m
		}
		appID, _ := strconv.ParseInt(r.PostForm.Get("app_id"), 10, 64)
		raw, err := h.p.CreateCommunityToken(ctx, a, id, appID, mask)
		if platform.KindOf(err) == platform.Invalid {
			h.render(w, r, u, "api", http.StatusUnprocessableEntity, "", web.Sentence(err), "")
			return
		}
		if !h.Answered(w, r, err) {
			return
		}
		// Shown once, on this answer; never stored in the clear.
		h.render(w, r, u, "api", http.StatusOK, "", "", raw)
	case strings.HasSuffix(r.URL.Path, "/revoke"):
		b, err := hex.DecodeString(r.PathValue("token"))
		if err != nil || len(b) != len(token.Hash{}) {
			h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such token.", "")
			return
		}
		if !h.Answered(w, r, h.p.RevokeCommunityToken(ctx, a, id, token.Hash(b))) {
			return
		}
		http.Redirect(w, r, base+"/api?done=revoked", http.StatusSeeOther)
	default:
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such page.", "")
	}
}
