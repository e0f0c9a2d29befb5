package account

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/web"
)

type factorRow struct {
	ID                   int64
	Name, Added, LastUse string
}

type upstreamRow struct {
	Name         string
	OIDC, Linked bool
}

type sessionRow struct {
	ID                      int64
	Device, Address, SeenAt string
	Current                 bool
}

// securityView is the security page's: passkeys, the authenticator app,
// recovery codes and the sessions.
type securityView struct {
	Passkeys []factorRow
	// PasskeysOff says why passkeys cannot be used here ("" when they can).
	PasskeysOff  string
	App          *factorRow
	RecoveryLeft int
	// Codes are new recovery codes, shown this once.
	Codes    []string
	Sessions []sessionRow
	// Enrol: the person must add a second factor before going on to Next.
	Enrol bool
	// Stale: the session signed in too long ago to change sign-in methods.
	Stale bool
	// Upstreams are the identity providers, and whether the person is
	// linked to each.
	Upstreams []upstreamRow
	Next      string
}

func rowOf(f storage.Factor) factorRow {
	r := factorRow{ID: f.ID, Name: f.Name, Added: f.CreatedAt.Format(time.DateTime)}
	if !f.LastUsedAt.IsZero() {
		r.LastUse = f.LastUsedAt.Format(time.DateTime)
	}
	return r
}

var securityNotices = map[string]string{
	"passkey":  "Passkey added.",
	"removed":  "Sign-in method removed.",
	"ended":    "Session ended.",
	"others":   "Every other session ended.",
	"recovery": "New recovery codes made: the old ones no longer work.",
	"linked":   "Account linked: you can sign in with it.",
	"unlinked": "Account unlinked.",
}

// Security shows the security page.
func (h *Handler) Security(w http.ResponseWriter, r *http.Request) {
	s := h.CurrentSession(r)
	if s == nil {
		h.RequireUser(w, r)
		return
	}
	h.security(w, r, s, http.StatusOK, web.Page{Notice: securityNotices[r.URL.Query().Get("done")]}, nil)
}

// security renders the security page of s's person, with new recovery
// codes when there are some to show.
func (h *Handler) security(w http.ResponseWriter, r *http.Request, s *platform.Session, status int, p web.Page, codes []string) {
	ctx := r.Context()
	st, err := h.p.Status(ctx, s.User.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	sessions, err := h.p.List(ctx, s.User.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	next := web.LocalNext(r.FormValue("next"))
	v := securityView{RecoveryLeft: st.RecoveryLeft, Codes: codes,
		Enrol: r.FormValue("enrol") == "1" && !st.Any(), Next: next, Stale: h.now().Sub(s.AuthTime) > recentSignIn}
	if next == "/" {
		v.Next = ""
	}
	if h.p.PasskeysOff() != "" {
		v.PasskeysOff = "Passkeys need the server's public URL to have a host name, not an IP address."
	}
	for _, f := range st.Passkeys {
		v.Passkeys = append(v.Passkeys, rowOf(f))
	}
	if st.App != nil {
		row := rowOf(*st.App)
		v.App = &row
	}
	ups, err := h.p.All(ctx)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	linked, err := h.p.Linked(ctx, s.User.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	for _, u := range ups {
		v.Upstreams = append(v.Upstreams, upstreamRow{Name: u.Name, OIDC: u.Kind == storage.UpstreamOIDC, Linked: linked[u.Name]})
	}
	for _, x := range sessions {
		v.Sessions = append(v.Sessions, sessionRow{ID: x.ID, Device: x.Device, Address: x.Address,
			SeenAt: x.LastSeenAt.Format(time.DateTime), Current: x.ID == s.ID})
	}
	p.Title, p.Wide, p.User = "Security", true, &s.User
	web.SetCSP(w, passkeyCSP)
	h.pages.security.Render(w, r, status, p, v)
}

// recentSignIn is how fresh a session's sign-in must be to change how its
// person signs in: whoever finds a session left open cannot add their own
// factor, or take the owner's away, without the password (or passkey).
const recentSignIn = 15 * time.Minute

// fresh reports whether s signed in recently enough to change sign-in
// methods; otherwise it sends the browser to sign in again, back to the
// security page.
func (h *Handler) fresh(w http.ResponseWriter, r *http.Request, s *platform.Session) bool {
	if h.now().Sub(s.AuthTime) <= recentSignIn {
		return true
	}
	back := "/account/security"
	if r.Method == http.MethodGet {
		back = r.URL.RequestURI()
	}
	http.Redirect(w, r, LoginURL(back, ""), http.StatusSeeOther)
	return false
}

// securityPost is the signed-in session of a posted security form whose
// CSRF token checks out, or nil (answered). Changes of sign-in methods
// (change) need a recent sign-in.
func (h *Handler) securityPost(w http.ResponseWriter, r *http.Request, change bool) *platform.Session {
	if h.SignedInPost(w, r) == nil {
		return nil
	}
	s := h.CurrentSession(r)
	if s == nil {
		h.RequireUser(w, r)
		return nil
	}
	if change && !h.fresh(w, r, s) {
		return nil
	}
	return s
}

// afterEnrol goes on after a factor was added: to where an enrolment
// forced by a sign-in was going, or to the page with the new codes.
func (h *Handler) afterEnrol(w http.ResponseWriter, r *http.Request, s *platform.Session, notice string, codes []string) {
	if len(codes) > 0 {
		h.security(w, r, s, http.StatusOK, web.Page{Notice: notice}, codes)
		return
	}
	if next := r.PostForm.Get("next"); next != "" {
		http.Redirect(w, r, FactorURL(web.LocalNext(next)), http.StatusSeeOther)
		return
	}
	h.security(w, r, s, http.StatusOK, web.Page{Notice: notice}, nil)
}

// PasskeyAddOptions begins adding a passkey.
func (h *Handler) PasskeyAddOptions(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	s := h.CurrentSession(r)
	if s == nil || h.now().Sub(s.AuthTime) > recentSignIn {
		http.Error(w, "sign in again first", http.StatusUnauthorized)
		return
	}
	c, err := h.p.BeginPasskey(r.Context(), s.User, h.Sessions.Browser(w, r))
	h.ceremony(w, c, err)
}

// AddPasskey adds the passkey the browser made.
func (h *Handler) AddPasskey(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, true)
	if s == nil {
		return
	}
	codes, err := h.p.AddPasskey(r.Context(), web.Actor(&s.User, r), s.User, r.PostForm.Get("state"), h.Sessions.Browser(w, r),
		[]byte(r.PostForm.Get("answer")), r.PostForm.Get("name"))
	if k := platform.KindOf(err); k == platform.Invalid || k == platform.Forbidden {
		h.security(w, r, s, http.StatusUnprocessableEntity, web.Page{Error: web.Sentence(err)}, nil)
		return
	}
	if !h.Answered(w, r, err) {
		return
	}
	h.afterEnrol(w, r, s, "Passkey added.", codes)
}

// RemoveFactor removes a passkey or the authenticator app.
func (h *Handler) RemoveFactor(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, true)
	if s == nil {
		return
	}
	id, ok := web.PathID(r, "id")
	if !ok {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such sign-in method.", "")
		return
	}
	if !h.Answered(w, r, h.p.Remove(r.Context(), web.Actor(&s.User, r), s.User.ID, id)) {
		return
	}
	http.Redirect(w, r, "/account/security?done=removed", http.StatusSeeOther)
}

// addAppView is the page that adds an authenticator app.
type addAppView struct {
	Secret string
	// QR is the QR code's PNG as a data URL (made here, so trusted).
	QR    template.URL
	State string
	Next  string
}

// AddAppForm shows a new secret as a QR code and as text, with the form
// that confirms it by a code.
func (h *Handler) AddAppForm(w http.ResponseWriter, r *http.Request) {
	s := h.CurrentSession(r)
	if s == nil {
		h.RequireUser(w, r)
		return
	}
	if !h.fresh(w, r, s) {
		return
	}
	e, err := h.p.BeginApp(s.User)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	h.addAppPage(w, r, s, http.StatusOK, "", e.Secret, e.QR, e.State)
}

func (h *Handler) addAppPage(w http.ResponseWriter, r *http.Request, s *platform.Session, status int, msg, secret string, qr []byte, state string) {
	v := addAppView{Secret: secret, State: state, Next: web.LocalNext(r.FormValue("next"))}
	if qr != nil {
		v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(qr))
	}
	if v.Next == "/" {
		v.Next = ""
	}
	h.pages.addApp.Render(w, r, status, web.Page{Title: "Add an authenticator app", User: &s.User, Error: msg}, v)
}

// AddApp confirms the authenticator app by one of its codes.
func (h *Handler) AddApp(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, true)
	if s == nil {
		return
	}
	state := r.PostForm.Get("state")
	codes, err := h.p.ConfirmApp(r.Context(), web.Actor(&s.User, r), s.User, state, r.PostForm.Get("name"), r.PostForm.Get("otp"))
	if k := platform.KindOf(err); k == platform.Invalid || k == platform.Unavailable || k == platform.Conflict {
		secret, serr := h.p.EnrolmentSecret(s.User.ID, state)
		if serr != nil {
			// The form itself is bad or stale: start again.
			h.security(w, r, s, http.StatusUnprocessableEntity, web.Page{Error: web.Sentence(serr)}, nil)
			return
		}
		status := http.StatusUnprocessableEntity
		if k == platform.Unavailable {
			status = http.StatusTooManyRequests
		}
		h.addAppPage(w, r, s, status, web.Sentence(err), secret, nil, state)
		return
	}
	if !h.Answered(w, r, err) {
		return
	}
	h.afterEnrol(w, r, s, "Authenticator app added.", codes)
}

// NewRecoveryCodes replaces the recovery codes and shows the new ones once.
func (h *Handler) NewRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, true)
	if s == nil {
		return
	}
	st, err := h.p.Status(r.Context(), s.User.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if !st.Any() {
		h.security(w, r, s, http.StatusUnprocessableEntity, web.Page{Error: "Add a passkey or an authenticator app first."}, nil)
		return
	}
	codes, err := h.p.NewRecoveryCodes(r.Context(), web.Actor(&s.User, r), s.User.ID)
	if !h.Answered(w, r, err) {
		return
	}
	h.security(w, r, s, http.StatusOK, web.Page{Notice: securityNotices["recovery"]}, codes)
}

// EndOneSession ends one of the person's sessions.
func (h *Handler) EndOneSession(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, false)
	if s == nil {
		return
	}
	id, ok := web.PathID(r, "id")
	if !ok {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such session.", "")
		return
	}
	if !h.Answered(w, r, h.p.End(r.Context(), web.Actor(&s.User, r), s.User.ID, id)) {
		return
	}
	if id == s.ID {
		h.Sessions.Clear(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/account/security?done=ended", http.StatusSeeOther)
}

// EndOtherSessions ends every session of the person but this one.
func (h *Handler) EndOtherSessions(w http.ResponseWriter, r *http.Request) {
	s := h.securityPost(w, r, false)
	if s == nil {
		return
	}
	_, err := h.p.EndOthers(r.Context(), web.Actor(&s.User, r), s.User.ID, s.ID)
	if !h.Answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/account/security?done=others", http.StatusSeeOther)
}
