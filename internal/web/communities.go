package web

import (
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
)

// Communities as people use them: the ones you admin, creating one, its
// admins, and the "API usage" tab with its tokens.

// Communities lists the user's communities, with a creation form.
func (h *Handler) Communities(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	h.renderCommunities(w, r, u, http.StatusOK, "")
}

func (h *Handler) renderCommunities(w http.ResponseWriter, r *http.Request, u *storage.User, status int, errMsg string) {
	cs, err := h.P.CommunitiesOf(r.Context(), u.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.render(w, r, status, "communities", page{Title: "My communities", Wide: true, User: u, Communities: cs, Error: errMsg})
}

// CreateCommunity creates a community with the user as its first admin.
func (h *Handler) CreateCommunity(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	if err := h.parsePost(w, r); err != nil {
		h.renderCommunities(w, r, u, http.StatusForbidden, err.Error())
		return
	}
	c, err := h.P.CreateCommunity(r.Context(), actor(u, r), u.ID, r.PostForm.Get("name"))
	if platform.KindOf(err) == platform.Invalid {
		h.renderCommunities(w, r, u, http.StatusUnprocessableEntity, capitalize(err.Error())+".")
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/communities/"+strconv.FormatInt(c.ID, 10), http.StatusSeeOther)
}

var communityNotices = map[string]string{
	"admin-added":   "Admin added.",
	"admin-removed": "Admin removed. The tokens they granted keep working until an admin revokes them.",
	"revoked":       "Token revoked. It no longer works.",
}

// tokenRow is a token as the API usage tab lists it.
type tokenRow struct {
	ID, App, Permissions, GrantedBy, Created, LastUsed string
}

// Community shows a community's admins tab (tab "admins") or API usage tab.
func (h *Handler) Community(w http.ResponseWriter, r *http.Request) {
	u := h.requireUser(w, r)
	if u == nil {
		return
	}
	tab := "admins"
	if strings.HasSuffix(r.URL.Path, "/api") {
		tab = "api"
	}
	h.renderCommunity(w, r, u, tab, http.StatusOK, communityNotices[r.URL.Query().Get("done")], "", "")
}

func (h *Handler) communityID(r *http.Request) int64 {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id
}

func (h *Handler) renderCommunity(w http.ResponseWriter, r *http.Request, u *storage.User, tab string, status int, notice, errMsg, newToken string) {
	ctx, a, id := r.Context(), actor(u, r), h.communityID(r)
	c, err := h.P.Community(ctx, a, id)
	if !h.answered(w, r, err) {
		return
	}
	p := page{Title: c.Name, Wide: true, User: u, Community: c, Tab: tab, Notice: notice, Error: errMsg, NewToken: newToken}
	who := h.logins(ctx)
	if tab == "admins" {
		if p.Admins, err = h.P.CommunityAdmins(ctx, a, id); err != nil {
			h.internal(w, r, err)
			return
		}
	} else {
		tokens, err := h.P.CommunityTokens(ctx, a, id)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		apps := map[int64]string{}
		for _, t := range tokens {
			row := tokenRow{ID: hex.EncodeToString(t.Hash[:]), Permissions: strings.Join(t.Scope.Names(scope.Community), ", "),
				GrantedBy: who.name(t.UserID), Created: t.IssuedAt.Format(time.DateTime), LastUsed: "never"}
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
				if app, err := h.P.LookupApp(ctx, t.AppID); err == nil {
					row.App = app.Title
				}
				apps[t.AppID] = row.App
			}
			if t.Flow == storage.FlowConsole && t.AppID != 0 {
				row.App += " (created here)"
			}
			p.Tokens = append(p.Tokens, row)
		}
		p.AllScopes = scope.All(scope.Community)
		if p.Apps, err = h.P.Apps(ctx, u.ID); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	events, err := h.P.CommunityAudit(ctx, a, id, 20)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p.Events = h.eventRows(ctx, events)
	h.render(w, r, status, "community", p)
}

// CommunityPost handles the community's forms: add and remove admins,
// create and revoke tokens.
func (h *Handler) CommunityPost(w http.ResponseWriter, r *http.Request) {
	u := h.signedInPost(w, r)
	if u == nil {
		return
	}
	ctx, a, id := r.Context(), actor(u, r), h.communityID(r)
	base := "/communities/" + strconv.FormatInt(id, 10)
	switch {
	case strings.HasSuffix(r.URL.Path, "/admins"):
		err := h.P.AddCommunityAdminByLogin(ctx, a, id, r.PostForm.Get("login"))
		if errors.Is(err, platform.ErrNoSuchLogin) {
			h.renderCommunity(w, r, u, "admins", http.StatusUnprocessableEntity, "", capitalize(err.Error())+".", "")
			return
		}
		if !h.answered(w, r, err) {
			return
		}
		http.Redirect(w, r, base+"?done=admin-added", http.StatusSeeOther)
	case strings.HasSuffix(r.URL.Path, "/remove"):
		uid, _ := strconv.ParseInt(r.PathValue("user"), 10, 64)
		err := h.P.RemoveCommunityAdmin(ctx, a, id, uid)
		if errors.Is(err, platform.ErrLastAdmin) {
			h.renderCommunity(w, r, u, "admins", http.StatusConflict, "", capitalize(err.Error())+".", "")
			return
		}
		if !h.answered(w, r, err) {
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
				h.renderCommunity(w, r, u, "api", http.StatusUnprocessableEntity, "", capitalize(err.Error())+".", "")
				return
			}
			mask |= m
		}
		appID, _ := strconv.ParseInt(r.PostForm.Get("app_id"), 10, 64)
		raw, err := h.P.CreateCommunityToken(ctx, a, id, appID, mask)
		if platform.KindOf(err) == platform.Invalid {
			h.renderCommunity(w, r, u, "api", http.StatusUnprocessableEntity, "", capitalize(err.Error())+".", "")
			return
		}
		if !h.answered(w, r, err) {
			return
		}
		// Shown once, on this answer; never stored in the clear.
		h.renderCommunity(w, r, u, "api", http.StatusOK, "", "", raw)
	case strings.HasSuffix(r.URL.Path, "/revoke"):
		b, err := hex.DecodeString(r.PathValue("token"))
		if err != nil || len(b) != len(token.Hash{}) {
			h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such token.", "")
			return
		}
		if !h.answered(w, r, h.P.RevokeCommunityToken(ctx, a, id, token.Hash(b))) {
			return
		}
		http.Redirect(w, r, base+"/api?done=revoked", http.StatusSeeOther)
	default:
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such page.", "")
	}
}
