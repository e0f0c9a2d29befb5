package account

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"latchkey/internal/httpx"
	"latchkey/internal/metrics"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/web"
)

// signIn finishes a sign-in of u by the methods amr: a person with a
// second factor who gave only a password is asked for it next (a pending
// sign-in); anyone else gets a session, and one who must have a second
// factor and has none is sent to enrol one first.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, u storage.User, amr []string, next string) {
	st, err := h.p.Status(r.Context(), u.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if st.Any() && !slices.Contains(amr, platform.AMRMulti) {
		h.Sessions.SetPending(w, r, u.ID, amr)
		http.Redirect(w, r, "/login/factor?"+url.Values{"next": {next}}.Encode(), http.StatusSeeOther)
		return
	}
	secret, _, err := h.p.Start(r.Context(), u.ID, amr, r.UserAgent(), httpx.ClientIP(r))
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	h.Sessions.ClearPending(w, r)
	h.Sessions.Set(w, r, u.ID, secret)
	if h.p.Required(u) && !st.Any() {
		next = EnrolURL(next)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// passkeyCSP is the policy of the pages with passkey buttons: their script
// fetches the ceremony's options from this server.
var passkeyCSP = func() web.CSP {
	c := web.PageCSP
	c.Connect = "'self'"
	return c
}()

// EnrolURL is the security page for a person who must add a second factor
// before going on to next.
func EnrolURL(next string) string {
	return "/account/security?" + url.Values{"enrol": {"1"}, "next": {next}}.Encode()
}

// FactorURL is the second-factor step, back to next afterwards.
func FactorURL(next string) string { return "/login/factor?" + url.Values{"next": {next}}.Encode() }

// factorView is the second-factor page's.
type factorView struct {
	Next     string
	App      bool
	Passkeys bool
	// Phishing: the app asked for a passkey, which alone will do.
	Phishing bool
}

// stepper is who gives a second factor: a pending sign-in (user, the
// methods so far) or a live session raising its level.
type stepper struct {
	user    storage.User
	amr     []string
	session *platform.Session
}

// stepperOf finds the person at the second-factor step, or nil.
func (h *Handler) stepperOf(r *http.Request) (*stepper, error) {
	if id, amr := h.Sessions.Pending(r); id != 0 {
		u, err := h.p.User(r.Context(), id)
		if platform.KindOf(err) == platform.NotFound {
			return nil, nil
		}
		if err != nil || !u.DisabledAt.IsZero() {
			return nil, err
		}
		return &stepper{user: u, amr: amr}, nil
	}
	if s := h.CurrentSession(r); s != nil {
		return &stepper{user: s.User, amr: s.AMR, session: s}, nil
	}
	return nil, nil
}

// FactorForm shows the second-factor step: a code from the authenticator
// app or a recovery code, or a passkey.
func (h *Handler) FactorForm(w http.ResponseWriter, r *http.Request) {
	h.factorPage(w, r, http.StatusOK, "")
}

func (h *Handler) factorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	next := web.LocalNext(r.FormValue("next"))
	s, err := h.stepperOf(r)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if s == nil {
		http.Redirect(w, r, LoginURL(next, r.FormValue("display")), http.StatusSeeOther)
		return
	}
	st, err := h.p.Status(r.Context(), s.user.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if !st.Any() {
		// Nothing to ask: enrol one first.
		http.Redirect(w, r, EnrolURL(next), http.StatusSeeOther)
		return
	}
	v := factorView{Next: next, App: st.App != nil, Passkeys: len(st.Passkeys) > 0 && h.p.PasskeysOff() == "",
		Phishing: r.FormValue("acr") == platform.ACRPhishingResistant}
	web.SetCSP(w, passkeyCSP)
	h.pages.factor.Render(w, r, status, web.Page{Title: "Second step", Error: msg}, v)
}

// stepPost is who gives a second factor in a posted form whose CSRF token
// checks out, or nil (the page shown again).
func (h *Handler) stepPost(w http.ResponseWriter, r *http.Request) *stepper {
	if err := h.ParsePost(w, r); err != nil {
		h.factorPage(w, r, http.StatusForbidden, err.Error())
		return nil
	}
	s, err := h.stepperOf(r)
	if err != nil || s == nil {
		h.factorPage(w, r, http.StatusOK, "")
		return nil
	}
	return s
}

// Factor checks the otp field: a code of the authenticator app, or a
// recovery code.
func (h *Handler) Factor(w http.ResponseWriter, r *http.Request) {
	s := h.stepPost(w, r)
	if s == nil {
		return
	}
	methods, err := h.p.CheckCode(r.Context(), platform.Actor{UserID: s.user.ID, IP: httpx.ClientIP(r)}, s.user.ID, r.PostForm.Get("otp"))
	h.stepped(w, r, s, methods, err)
}

// stepped ends the second-factor step: on to next with the higher level,
// or the page again with why not.
func (h *Handler) stepped(w http.ResponseWriter, r *http.Request, s *stepper, methods []string, err error) {
	next := web.LocalNext(r.FormValue("next"))
	switch {
	case errors.Is(err, platform.ErrTooManyCodes):
		h.Metrics.Limited(metrics.LimitLogin)
		h.factorPage(w, r, http.StatusTooManyRequests, web.Sentence(err))
		return
	case platform.KindOf(err) == platform.Invalid:
		h.factorPage(w, r, http.StatusUnauthorized, web.Sentence(err))
		return
	case err != nil:
		h.Fail(w, r, err)
		return
	}
	if s.session != nil {
		if err := h.p.Raise(r.Context(), s.session, methods...); err != nil {
			h.Fail(w, r, err)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.signIn(w, r, s.user, platform.WithFactor(s.amr, methods...), next)
}

// ceremony answers a passkey prompt's options as JSON.
func (h *Handler) ceremony(w http.ResponseWriter, c platform.Ceremony, err error) {
	if err != nil {
		status := http.StatusBadRequest
		if platform.KindOf(err) == platform.Forbidden {
			status = http.StatusForbidden
		}
		http.Error(w, web.Sentence(err), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Options json.RawMessage `json:"options"`
		State   string          `json:"state"`
	}{c.Options, c.State})
}

// FactorPasskeyOptions begins a passkey as the second factor.
func (h *Handler) FactorPasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	s, err := h.stepperOf(r)
	if err == nil && s == nil {
		err = platform.ErrPasskeyRefused
	}
	if err != nil {
		h.ceremony(w, platform.Ceremony{}, err)
		return
	}
	c, err := h.p.BeginPasskeyLogin(r.Context(), &s.user, h.Sessions.Browser(w, r))
	h.ceremony(w, c, err)
}

// FactorPasskey checks a passkey given as the second factor.
func (h *Handler) FactorPasskey(w http.ResponseWriter, r *http.Request) {
	s := h.stepPost(w, r)
	if s == nil {
		return
	}
	_, methods, err := h.p.PasskeyLogin(r.Context(), platform.Actor{UserID: s.user.ID, IP: httpx.ClientIP(r)}, &s.user,
		r.PostForm.Get("state"), h.Sessions.Browser(w, r), []byte(r.PostForm.Get("answer")))
	h.stepped(w, r, s, methods, err)
}

// PasskeyOptions begins "Sign in with a passkey": no login name, the
// passkey says who.
func (h *Handler) PasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	c, err := h.p.BeginPasskeyLogin(r.Context(), nil, h.Sessions.Browser(w, r))
	h.ceremony(w, c, err)
}

// Passkey signs in whoever the passkey names.
func (h *Handler) Passkey(w http.ResponseWriter, r *http.Request) {
	next := web.LocalNext(r.FormValue("next"))
	fail := func(status int, msg string) {
		h.pages.login.Render(w, r, status, web.Page{Title: "Log in", Error: msg}, h.loginView(w, r, next, ""))
	}
	if err := h.ParsePost(w, r); err != nil {
		fail(http.StatusForbidden, err.Error())
		return
	}
	u, methods, err := h.p.PasskeyLogin(r.Context(), platform.Actor{IP: httpx.ClientIP(r)}, nil,
		r.PostForm.Get("state"), h.Sessions.Browser(w, r), []byte(r.PostForm.Get("answer")))
	switch {
	case errors.Is(err, platform.ErrDisabled):
		fail(http.StatusForbidden, web.Sentence(err))
		return
	case platform.KindOf(err) == platform.Invalid || platform.KindOf(err) == platform.Forbidden:
		h.Metrics.Login(metrics.LoginFailed)
		fail(http.StatusUnauthorized, web.Sentence(err))
		return
	case err != nil:
		h.Fail(w, r, err)
		return
	}
	h.Metrics.Login(metrics.LoginOK)
	h.signIn(w, r, u, platform.WithFactor(nil, methods...), next)
}
