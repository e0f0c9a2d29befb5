package account

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/web"
)

// upstreamCookie keeps a sign-in through an OpenID Provider between
// sending the browser there and its coming back: the flow (state, nonce,
// PKCE verifier), where to go next, and, when linking, whose account.
// Sealed, so the browser can neither read nor change it.
const (
	upstreamCookie = "lk_upstream"
	upstreamTTL    = 10 * time.Minute
)

type upstreamState struct {
	Flow platform.UpstreamFlow `json:"f"`
	Next string                `json:"x"`
	// LinkUser, when set, is the signed-in user linking the account.
	LinkUser int64 `json:"l,omitempty"`
	Began    int64 `json:"b"`
}

func (h *Handler) setUpstream(w http.ResponseWriter, r *http.Request, st upstreamState) {
	b, _ := json.Marshal(st)
	http.SetCookie(w, &http.Cookie{Name: upstreamCookie, Value: h.Sessions.Seal(b), Path: "/login/upstream/",
		MaxAge: int(upstreamTTL / time.Second), HttpOnly: true, Secure: h.Sessions.Secure(r), SameSite: http.SameSiteLaxMode})
}

func (h *Handler) upstreamState(r *http.Request) (upstreamState, bool) {
	var st upstreamState
	c, err := r.Cookie(upstreamCookie)
	if err != nil || len(c.Value) > 4096 {
		return st, false
	}
	plain, err := h.Sessions.Unseal(c.Value)
	if err != nil || json.Unmarshal(plain, &st) != nil || h.now().Sub(time.Unix(st.Began, 0)) > upstreamTTL {
		return st, false
	}
	return st, true
}

// UpstreamStart sends the browser to sign in at the named OpenID
// Provider (GET /login/upstream/{name}), back to next afterwards.
func (h *Handler) UpstreamStart(w http.ResponseWriter, r *http.Request) {
	h.beginUpstream(w, r, upstreamState{Next: web.LocalNext(r.FormValue("next"))})
}

func (h *Handler) beginUpstream(w http.ResponseWriter, r *http.Request, st upstreamState) {
	to, flow, err := h.p.Begin(r.Context(), r.PathValue("name"))
	if err != nil {
		h.upstreamFailed(w, r, err)
		return
	}
	st.Flow, st.Began = flow, h.now().Unix()
	h.setUpstream(w, r, st)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// upstreamFailed answers a sign-in through an upstream that did not work.
func (h *Handler) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch platform.KindOf(err) {
	case platform.Invalid:
		h.pages.login.Render(w, r, http.StatusUnauthorized, web.Page{Title: "Log in", Error: web.Sentence(err)}, h.loginView(w, r, "/", ""))
	default:
		h.Fail(w, r, err)
	}
}

// UpstreamCallback is where the OpenID Provider sends the browser back
// (GET /login/upstream/{name}/callback): the flow kept in the cookie is
// finished, and the person signed in, or their account linked.
func (h *Handler) UpstreamCallback(w http.ResponseWriter, r *http.Request) {
	st, ok := h.upstreamState(r)
	http.SetCookie(w, &http.Cookie{Name: upstreamCookie, Value: "", Path: "/login/upstream/", MaxAge: -1, HttpOnly: true, Secure: h.Sessions.Secure(r), SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	if !ok || st.Flow.Name != r.PathValue("name") {
		h.upstreamFailed(w, r, platform.ErrUpstreamRefused)
		return
	}
	if q.Get("error") != "" {
		// The person said no, or the provider could not ask them.
		h.upstreamFailed(w, r, platform.ErrUpstreamRefused)
		return
	}
	id, err := h.p.Finish(r.Context(), st.Flow, q.Get("state"), q.Get("code"))
	if err != nil {
		h.upstreamFailed(w, r, err)
		return
	}
	if st.LinkUser != 0 {
		s := h.CurrentSession(r)
		if s == nil || s.User.ID != st.LinkUser {
			h.upstreamFailed(w, r, platform.ErrUpstreamRefused)
			return
		}
		err := h.p.Link(r.Context(), web.Actor(&s.User, r), s.User.ID, id)
		if errors.Is(err, platform.ErrLinked) {
			h.security(w, r, s, http.StatusConflict, web.Page{Error: web.Sentence(err)}, nil)
			return
		}
		if !h.Answered(w, r, err) {
			return
		}
		http.Redirect(w, r, "/account/security?done=linked", http.StatusSeeOther)
		return
	}
	u, err := h.p.SignIn(r.Context(), id)
	if errors.Is(err, platform.ErrDisabled) {
		h.upstreamFailed(w, r, &platform.Error{Kind: platform.Invalid, Message: platform.ErrDisabled.Message})
		return
	}
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	h.signIn(w, r, u, []string{platform.AMRFederated}, st.Next)
}

// LinkUpstream starts linking the signed-in person's account at the named
// OpenID Provider (a form on the security page).
func (h *Handler) LinkUpstream(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, true)
	if s == nil {
		return
	}
	h.beginUpstream(w, r, upstreamState{Next: "/account/security", LinkUser: s.User.ID})
}

// UnlinkUpstream removes the person's link to the named upstream.
func (h *Handler) UnlinkUpstream(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, true)
	if s == nil {
		return
	}
	if !h.Answered(w, r, h.p.Unlink(r.Context(), web.Actor(&s.User, r), s.User.ID, r.PathValue("name"))) {
		return
	}
	http.Redirect(w, r, "/account/security?done=unlinked", http.StatusSeeOther)
}

// ldapLogin tries the directories with the login form's credentials, for
// a login no local password matched; it reports whether it answered.
func (h *Handler) ldapLogin(w http.ResponseWriter, r *http.Request, login, password, next string, fail func(int, string)) bool {
	u, err := h.p.LDAPLogin(r.Context(), login, password)
	switch {
	case errors.Is(err, platform.ErrWrongCredentials):
		return false
	case errors.Is(err, platform.ErrDirectoryDown):
		w.Header().Set("Retry-After", strconv.Itoa(30))
		fail(http.StatusServiceUnavailable, "The directory cannot be reached right now. Try again later.")
		return true
	case errors.Is(err, platform.ErrDisabled):
		fail(http.StatusForbidden, web.Sentence(err))
		return true
	case err != nil:
		h.Fail(w, r, err)
		return true
	}
	h.Log.InfoContext(r.Context(), "signed in through a directory", "user", u.ID, "address", httpx.ClientIP(r))
	h.signIn(w, r, u, []string{platform.AMRPassword}, next)
	return true
}
