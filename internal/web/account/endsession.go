package account

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/web"
)

// endSessionView is the page of RP-Initiated Logout: a question (Confirm)
// with the request's parameters to post back, or the news that the person
// is signed out.
type endSessionView struct {
	Confirm bool
	// App is the title of the app asking, when it is known.
	App    string
	Hidden []web.Hidden
}

// endSession is an RP-Initiated Logout request, checked.
type endSession struct {
	// hinted is the user the id_token_hint names (0 without a valid one).
	hinted int64
	app    *storage.App
	// redirect is the registered post_logout_redirect_uri, with state
	// ("" for none).
	redirect string
	params   url.Values
}

// EndSession serves GET and POST /oauth/logout (OpenID Connect RP-Initiated
// Logout 1.0, the end_session_endpoint): with a valid id_token_hint naming
// the person signed in (or nobody), the browser session ends at once;
// without one, the person confirms on a page. Then the browser goes to the
// post_logout_redirect_uri, which must be one the app registered, with
// state; without one, a page says the person is signed out.
func (h *Handler) EndSession(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "Sign out", "The request is malformed.", "")
		return
	}
	req, err := h.endSessionRequest(r, r.Form)
	if err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "Sign out", err.Error(), "")
		return
	}
	u := h.CurrentUser(r)
	if req.hinted != 0 && (u == nil || u.ID == req.hinted) {
		h.endSession(w, r, u, req)
		return
	}
	v := endSessionView{Confirm: true}
	if req.app != nil {
		v.App = req.app.Title
	}
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if val := req.params.Get(k); val != "" {
			v.Hidden = append(v.Hidden, web.Hidden{Name: k, Value: val})
		}
	}
	h.pages.endSession.Render(w, r, http.StatusOK, web.Page{Title: "Sign out", User: u}, v)
}

// ConfirmEndSession serves POST /oauth/logout/confirm: the person's yes,
// with the CSRF token of the question's page.
func (h *Handler) ConfirmEndSession(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		h.ErrorPage(w, r, http.StatusForbidden, "Sign out", err.Error(), "")
		return
	}
	req, err := h.endSessionRequest(r, r.PostForm)
	if err != nil {
		h.ErrorPage(w, r, http.StatusBadRequest, "Sign out", err.Error(), "")
		return
	}
	h.endSession(w, r, h.CurrentUser(r), req)
}

func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, u *storage.User, req endSession) {
	if u != nil {
		if err := h.p.Logout(r.Context(), u.ID); err != nil {
			h.Fail(w, r, err)
			return
		}
	}
	h.Sessions.Clear(w, r)
	if req.redirect != "" {
		http.Redirect(w, r, req.redirect, http.StatusSeeOther)
		return
	}
	h.pages.endSession.Render(w, r, http.StatusOK, web.Page{Title: "Signed out"}, endSessionView{})
}

// errEndSession is why an RP-Initiated Logout request is refused.
type errEndSession string

func (e errEndSession) Error() string { return string(e) }

// endSessionRequest checks the request's parameters: the hint (a bad one
// counts as none, so the person is asked), the client (the hint's audience,
// or client_id; both must agree), and the post-logout redirect URI, which
// only a known client may name and only as registered.
func (h *Handler) endSessionRequest(r *http.Request, q url.Values) (endSession, error) {
	req := endSession{params: q}
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		claims, err := h.p.IDTokenHint(r.Context(), hint)
		switch {
		case errors.Is(err, platform.ErrBadIDToken):
			// Not ours, or not an id_token: the person is asked.
		case err != nil:
			return req, err
		default:
			if clientID != "" && clientID != claims.Audience {
				return req, errEndSession("client_id is not the id_token_hint's audience.")
			}
			clientID = claims.Audience
			req.hinted, _ = strconv.ParseInt(claims.Subject, 10, 64)
		}
	}
	if clientID != "" {
		id, err := strconv.ParseInt(clientID, 10, 64)
		if err != nil || id <= 0 {
			return req, errEndSession("client_id is incorrect.")
		}
		app, err := h.p.LookupApp(r.Context(), id)
		if errors.Is(err, storage.ErrNotFound) {
			return req, errEndSession("client_id is incorrect.")
		}
		if err != nil {
			return req, err
		}
		req.app = &app
	}
	if uri := q.Get("post_logout_redirect_uri"); uri != "" {
		if req.app == nil || !slices.Contains(req.app.PostLogoutRedirectURIs, uri) {
			return req, errEndSession("post_logout_redirect_uri is not one the app registered.")
		}
		u, _ := url.Parse(uri)
		if state := q.Get("state"); state != "" {
			qs := u.Query()
			qs.Set("state", state)
			u.RawQuery = qs.Encode()
		}
		req.redirect = u.String()
	}
	return req, nil
}
