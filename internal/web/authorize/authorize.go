// Package authorize is the authorization dialog at /authorize: it reads
// top-down — check the request, make sure someone is signed in, one
// decision, one answer. The protocol (parsing, the decision, the redirects)
// is internal/oauth's; this package is the pages around it.
package authorize

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/oauth"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/web"
	"latchkey/internal/web/account"
	"latchkey/internal/web/i18n"
)

// Handler serves /authorize.
type Handler struct {
	*web.Kit
	oauth   *oauth.Provider
	factors Factors
}

// Factors is what the dialog asks of people's second factors and
// sessions.
type Factors interface {
	Status(ctx context.Context, userID int64) (platform.FactorStatus, error)
	Required(u storage.User) bool
	// SignedInTo records that a session signed in to an app, which is told
	// when the session ends (back-channel logout).
	SignedInTo(ctx context.Context, sid string, appID int64) error
}

// New returns the dialog's handlers.
func New(k *web.Kit, op *oauth.Provider, f Factors) *Handler {
	return &Handler{Kit: k, oauth: op, factors: f}
}

// params are the /authorize parameters the consent form carries back.
var params = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "display", "revoke", "group_ids", "code_challenge", "code_challenge_method", "nonce", "v", "lang_id", "scheme", "resource", "acr_values"}

// reauthParam carries, back from the login page, the mark of a request
// that asked for a new login (web.Sessions.ReauthMark).
const reauthParam = "lk_reauth"

// Authorize serves GET /authorize: check the request, make sure someone is
// signed in, and either answer at once (consent already covers it) or show
// the dialog.
func (h *Handler) Authorize(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > oauth.MaxQuery {
		h.fail(w, r, nil, oauth.ErrTooLarge)
		return
	}
	s := h.CurrentSession(r)
	q := r.URL.Query()
	mark := q.Get(reauthParam)
	q.Del(reauthParam)
	// A pushed request is spent only when it is answered, not when the
	// browser is first sent to log in.
	req, err := h.oauth.ParseAuthorize(platform.WithClientAddress(r.Context(), httpx.ClientIP(r)), q, false)
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	request := q.Encode()
	// max_age: a session whose person proved who they are longer ago must
	// prove it again (OpenID Connect Core §3.1.2.1).
	stale := s != nil && req.MaxAge >= 0 && h.Now().Sub(s.AuthTime) > req.MaxAge
	switch {
	case (s == nil || stale) && req.Prompt.None:
		h.fail(w, r, req, oauth.ErrLoginRequired)
		return
	case (req.Prompt.Login || stale) && (s == nil || !h.Sessions.ReauthDone(r, mark, request)):
		// Asked again however recent the session: only a login made after
		// this request sent the browser to log in answers it.
		next := "/authorize?" + request + "&" + url.Values{reauthParam: {h.Sessions.ReauthMark(request)}}.Encode()
		http.Redirect(w, r, account.LoginURL(next, req.Display), http.StatusSeeOther)
		return
	case s == nil:
		http.Redirect(w, r, account.LoginURL(r.URL.RequestURI(), req.Display), http.StatusSeeOther)
		return
	}
	if !h.leveled(w, r, req, s, "/authorize?"+request) {
		return
	}
	u := &s.User
	if q.Has("request_uri") {
		if req, err = h.oauth.ParseAuthorize(platform.WithClientAddress(r.Context(), httpx.ClientIP(r)), q, true); err != nil {
			h.fail(w, r, req, err)
			return
		}
	}
	d, err := h.oauth.Decide(r.Context(), req, u.ID)
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	switch {
	case d.Ask && req.Prompt.None && req.OpenID():
		h.fail(w, r, req, oauth.ErrConsentRequired)
	case d.Ask && req.Prompt.None:
		// VK ID's word for it (vkid-wire.md §1).
		h.fail(w, r, req, oauth.ErrConsentNeeded)
	case d.Ask:
		h.dialog(w, r, req, u, d.Communities)
	default:
		h.approve(w, r, req, s, &d)
	}
}

// leveled reports whether session s is at the level the request asks
// (acr_values) and the person's account requires (a second factor), or
// answers: prompt=none gets interaction_required; a person with a second
// factor is asked for it; one without is sent to enrol one first. here is
// where to come back to.
func (h *Handler) leveled(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, s *platform.Session, here string) bool {
	want := req.ACR
	if h.factors.Required(s.User) && platform.LevelOf(want) < platform.LevelOf(platform.ACRMultiFactor) {
		want = platform.ACRMultiFactor
	}
	if platform.LevelOf(s.ACR()) >= platform.LevelOf(want) {
		return true
	}
	if req.Prompt.None {
		h.fail(w, r, req, oauth.ErrInteractionRequired)
		return false
	}
	st, err := h.factors.Status(r.Context(), s.User.ID)
	if err != nil {
		h.Fail(w, r, err)
		return false
	}
	if !st.Any() {
		http.Redirect(w, r, account.EnrolURL(here), http.StatusSeeOther)
		return false
	}
	http.Redirect(w, r, account.FactorURL(here)+"&"+url.Values{"acr": {want}}.Encode(), http.StatusSeeOther)
	return false
}

func (h *Handler) dialog(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, u *storage.User, communities []storage.Community) {
	v := web.ConsentView{App: req.App, Scopes: req.Scope.Scopes(req.Audience()), Communities: communities}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		v.RedirectHost = u.Host
		if v.RedirectHost == "" {
			v.RedirectHost = u.Scheme + ":" // a private-use scheme (cursor://…, com.example.app:/cb)
		}
	}
	if req.API != nil {
		// The API's scopes, described by its owner; beside them, the
		// OpenID Connect ones asked.
		v.API, v.Scopes, v.APIScopes = req.API.Name, req.Claims.Scopes(scope.User), web.APIScopesOf(req.API, req.Scope)
	}
	answer := url.Values{}
	for _, name := range params {
		if val := req.Params.Get(name); val != "" {
			v.Hidden = append(v.Hidden, web.Hidden{Name: name, Value: val})
			answer.Set(name, val)
		}
	}
	if req.Pushed {
		// The answer carries a pushed request's parameters: vouched for,
		// so that it counts as pushed only if they come back unchanged.
		v.Hidden = append(v.Hidden, web.Hidden{Name: "pushed", Value: h.Sessions.Vouch("pushed", answer.Encode())})
	}
	h.Consent.Render(w, r, http.StatusOK, web.Page{Title: "Allow access", Display: req.Display, User: u, Lang: i18n.Lang(req.Lang), Theme: req.Scheme}, v)
}

// Decide serves POST /authorize: the user's Allow or Deny.
func (h *Handler) Decide(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		h.ErrorPage(w, r, http.StatusForbidden, "Request refused", err.Error(), "")
		return
	}
	q := url.Values{}
	for _, name := range params {
		if v := r.PostForm.Get(name); v != "" {
			q.Set(name, v)
		}
	}
	req, err := h.oauth.ParseDecision(platform.WithClientAddress(r.Context(), httpx.ClientIP(r)), q, h.Sessions.Vouched("pushed", q.Encode(), r.PostForm.Get("pushed")))
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	s := h.CurrentSession(r)
	if s == nil {
		http.Redirect(w, r, account.LoginURL("/authorize?"+q.Encode(), req.Display), http.StatusSeeOther)
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		if !h.leveled(w, r, req, s, "/authorize?"+q.Encode()) {
			return
		}
		h.approve(w, r, req, s, nil)
	case "deny":
		http.Redirect(w, r, oauth.DenyURL(req), backStatus(r))
	default:
		h.ErrorPage(w, r, http.StatusBadRequest, "Request refused", "Choose Allow or Deny.", "")
	}
}

// approve answers a request the user approved: through the dialog (d nil),
// or because the consent covered it (Decide's d).
func (h *Handler) approve(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, s *platform.Session, d *oauth.Decision) {
	req.DeviceID = h.deviceID(w, r)
	if req.App.BackchannelLogoutURI != "" {
		// Only an app that can be told of the session's end needs the
		// write that remembers it signed in.
		if err := h.factors.SignedInTo(r.Context(), s.SID, req.App.ID); err != nil {
			h.fail(w, r, req, err)
			return
		}
	}
	to, err := h.oauth.Approve(r.Context(), req, s.User, s.Authn(), httpx.ClientIP(r), d, d == nil)
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	http.Redirect(w, r, to, backStatus(r))
}

// deviceCookie keeps the browser's VK ID device_id (vkid-wire.md §1).
const (
	deviceCookie = "lk_device_id"
	deviceTTL    = 5 * 365 * 24 * time.Hour
)

// deviceID is this browser's device_id, given one when it has none.
func (h *Handler) deviceID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(deviceCookie); err == nil && oauth.ValidDeviceID(c.Value) {
		return c.Value
	}
	id := oauth.NewDeviceID()
	http.SetCookie(w, &http.Cookie{Name: deviceCookie, Value: id, Path: "/authorize", MaxAge: int(deviceTTL / time.Second),
		HttpOnly: true, Secure: h.Sessions.Secure(r), SameSite: http.SameSiteLaxMode})
	return id
}

// backStatus is the status of a redirect back to the app: 303 after the
// dialog's POST, so that no browser re-posts the form (with the user's
// CSRF token) to the app (RFC 9700 §4.12); 302 otherwise, as VK answers.
func backStatus(r *http.Request) int {
	if r.Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// fail answers a failed /authorize. Errors about the client or the
// redirect URI never redirect: a person gets a page, a program JSON.
// Refusals (not an admin) get a page whose button carries access_denied back
// to the app; other protocol errors go straight back to the app.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, err error) {
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		h.Fail(w, r, err)
		return
	}
	if !oe.Redirect || req == nil {
		if !wantsHTML(r) {
			oauth.WriteJSON(w, oe)
			return
		}
		h.ErrorPage(w, r, http.StatusBadRequest, "This app's request is invalid", oe.Description, "")
		return
	}
	if oe.Code == protocol.AccessDenied {
		h.ErrorPage(w, r, http.StatusForbidden, "Access refused", web.Capitalize(oe.Description)+".", oauth.ErrorURL(req, oe))
		return
	}
	http.Redirect(w, r, oauth.ErrorURL(req, oe), backStatus(r))
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
