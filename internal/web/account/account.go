// Package account is a person's own pages: sign-up, login and logout (with
// the throttles against guessing), the start page, profile, inbox, the apps
// they have authorized, and generated avatars.
package account

import (
	"context"
	"embed"
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
	"latchkey/internal/metrics"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/web"
)

// Failed-login limits per window: per login, and per client IP.
const (
	loginFailuresPerLogin = 5
	loginFailuresPerIP    = 20
	loginWindow           = 15 * time.Minute
	// Accounts created per client IP per hour.
	signupsPerIP = 20
	signupWindow = time.Hour
)

// Platform is what these pages ask of the domain layer.
type Platform interface {
	Authenticate(ctx context.Context, login, password string) (storage.User, error)
	CreateUser(ctx context.Context, u platform.NewUser) (storage.User, error)
	Logout(ctx context.Context, userID int64) error
	Rename(ctx context.Context, userID int64, first, last string) error
	User(ctx context.Context, id int64) (storage.User, error)
	AuthorizedApps(ctx context.Context, userID int64) ([]platform.AuthorizedApp, error)
	RemoveAppAccess(ctx context.Context, actor platform.Actor, userID, appID int64) error
	Inbox(ctx context.Context, userID int64) ([]platform.InboxItem, error)
	MarkInboxRead(ctx context.Context, userID int64) error
	IDTokenHint(ctx context.Context, raw string) (platform.IDClaims, error)
	LookupApp(ctx context.Context, id int64) (storage.App, error)

	// Sessions (platform.Sessions).
	Start(ctx context.Context, userID int64, amr []string, device, address string) (string, platform.Session, error)
	Raise(ctx context.Context, s *platform.Session, methods ...string) error
	List(ctx context.Context, userID int64) ([]storage.Session, error)
	End(ctx context.Context, actor platform.Actor, userID, id int64) error
	EndOthers(ctx context.Context, actor platform.Actor, userID, keep int64) (int, error)

	// Second factors (platform.Factors).
	Status(ctx context.Context, userID int64) (platform.FactorStatus, error)
	Required(u storage.User) bool
	BeginApp(u storage.User) (platform.Enrolment, error)
	EnrolmentSecret(userID int64, state string) (string, error)
	ConfirmApp(ctx context.Context, actor platform.Actor, u storage.User, state, name, code string) ([]string, error)
	CheckCode(ctx context.Context, actor platform.Actor, userID int64, code string) ([]string, error)
	NewRecoveryCodes(ctx context.Context, actor platform.Actor, userID int64) ([]string, error)
	Remove(ctx context.Context, actor platform.Actor, userID, id int64) error
	PasskeysOff() string
	BeginPasskey(ctx context.Context, u storage.User, browser string) (platform.Ceremony, error)
	AddPasskey(ctx context.Context, actor platform.Actor, u storage.User, state, browser string, answer []byte, name string) ([]string, error)
	BeginPasskeyLogin(ctx context.Context, u *storage.User, browser string) (platform.Ceremony, error)
	PasskeyLogin(ctx context.Context, actor platform.Actor, u *storage.User, state, browser string, answer []byte) (storage.User, []string, error)

	// Upstreams (platform.Upstreams).
	All(ctx context.Context) ([]platform.UpstreamView, error)
	Begin(ctx context.Context, name string) (string, platform.UpstreamFlow, error)
	Finish(ctx context.Context, f platform.UpstreamFlow, state, code string) (platform.Identity, error)
	SignIn(ctx context.Context, id platform.Identity) (storage.User, error)
	Link(ctx context.Context, actor platform.Actor, userID int64, id platform.Identity) error
	Unlink(ctx context.Context, actor platform.Actor, userID int64, name string) error
	Linked(ctx context.Context, userID int64) (map[string]bool, error)
	LDAPLogin(ctx context.Context, login, password string) (storage.User, error)
}

//go:embed templates/*.html
var templateFiles embed.FS

// pages are this package's pages, each with the type of its view.
type pages struct {
	home         *web.Template[struct{}]
	login        *web.Template[loginView]
	signup       *web.Template[signupView]
	logout       *web.Template[struct{}]
	settingsApps *web.Template[authorizedView]
	inbox        *web.Template[inboxView]
	profile      *web.Template[struct{}]
	endSession   *web.Template[endSessionView]
	factor       *web.Template[factorView]
	security     *web.Template[securityView]
	addApp       *web.Template[addAppView]
}

func newPages(k *web.Kit) pages {
	return pages{
		home:         web.NewTemplate[struct{}](k, templateFiles, "home"),
		login:        web.NewTemplate[loginView](k, templateFiles, "login"),
		signup:       web.NewTemplate[signupView](k, templateFiles, "signup"),
		logout:       web.NewTemplate[struct{}](k, templateFiles, "logout"),
		settingsApps: web.NewTemplate[authorizedView](k, templateFiles, "settings_apps"),
		inbox:        web.NewTemplate[inboxView](k, templateFiles, "inbox"),
		profile:      web.NewTemplate[struct{}](k, templateFiles, "profile"),
		endSession:   web.NewTemplate[endSessionView](k, templateFiles, "endsession"),
		factor:       web.NewTemplate[factorView](k, templateFiles, "factor"),
		security:     web.NewTemplate[securityView](k, templateFiles, "security"),
		addApp:       web.NewTemplate[addAppView](k, templateFiles, "add_app"),
	}
}

// Handler serves the account pages.
type Handler struct {
	pages pages
	*web.Kit
	p        Platform
	now      func() time.Time
	throttle *web.Throttle
	signups  *web.Throttle
}

// New returns the account pages.
func New(k *web.Kit, p Platform, now func() time.Time) *Handler {
	return &Handler{Kit: k, p: p, now: now, throttle: k.Throttle("login", loginWindow), signups: k.Throttle("signup", signupWindow), pages: newPages(k)}
}

// Home is the signed-in user's start page.
func (h *Handler) Home(w http.ResponseWriter, r *http.Request) {
	u := h.CurrentUser(r)
	if u == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	h.pages.home.Render(w, r, http.StatusOK, web.Page{Title: "Home", User: u}, struct{}{})
}

// loginView is the login page's.
type loginView struct {
	Next  string
	Login string
	// Passkeys: "Sign in with a passkey" is offered.
	Passkeys bool
	// Upstreams are the OpenID Providers to sign in with.
	Upstreams []string
}

// loginView is the login page's view; the page may then fetch a passkey
// ceremony (passkeyCSP, set on w).
func (h *Handler) loginView(w http.ResponseWriter, r *http.Request, next, login string) loginView {
	web.SetCSP(w, passkeyCSP)
	v := loginView{Next: next, Login: login, Passkeys: h.p.PasskeysOff() == ""}
	if ups, err := h.p.All(r.Context()); err == nil {
		for _, u := range ups {
			if u.Kind == storage.UpstreamOIDC {
				v.Upstreams = append(v.Upstreams, u.Name)
			}
		}
	}
	return v
}

// LoginForm shows the login page, the login filled in when the app that
// sent the person here named one (OpenID Connect's login_hint).
func (h *Handler) LoginForm(w http.ResponseWriter, r *http.Request) {
	next := web.LocalNext(r.FormValue("next"))
	hint := ""
	if u, err := url.Parse(next); err == nil && u.Path == "/authorize" {
		hint = u.Query().Get("login_hint")
	}
	h.pages.login.Render(w, r, http.StatusOK, web.Page{Title: "Log in"}, h.loginView(w, r, next, hint))
}

// Login checks the credentials. Every attempt is counted before the
// password is checked: per login (5 in 15 minutes) and per client address
// (20), or, from a browser that logged in as this login before (a device
// cookie), per that browser alone (5). A success forgets the login's
// failures and gives the address its attempt back.
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		h.pages.login.Render(w, r, http.StatusForbidden, web.Page{Title: "Log in", Error: err.Error()}, h.loginView(w, r, web.LocalNext(r.PostForm.Get("next")), ""))
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	next := web.LocalNext(r.PostForm.Get("next"))
	fail := func(status int, msg string) {
		h.pages.login.Render(w, r, status, web.Page{Title: "Log in", Error: msg}, h.loginView(w, r, next, login))
	}
	keys := []counted{{"ip:" + httpx.ClientIP(r), loginFailuresPerIP}, {"login:" + strings.ToLower(login), loginFailuresPerLogin}}
	if device := h.Sessions.Device(r, login); device != "" {
		keys = []counted{{"device:" + device, loginFailuresPerLogin}}
	}
	for _, k := range keys {
		ok, wait, err := h.throttle.Take(r.Context(), k.key, k.limit)
		if err != nil {
			h.Fail(w, r, err)
			return
		}
		if !ok {
			h.Metrics.Login(metrics.LoginThrottled)
			h.Metrics.Limited(metrics.LimitLogin)
			fail(http.StatusTooManyRequests, h.T(r, "Too many failed attempts. Try again in %d minutes.", minutes(wait)))
			return
		}
	}
	u, err := h.p.Authenticate(r.Context(), login, r.PostForm.Get("password"))
	switch {
	case errors.Is(err, platform.ErrWrongCredentials):
		// Not a local password: perhaps a directory's.
		if h.ldapLogin(w, r, login, r.PostForm.Get("password"), next, fail) {
			return
		}
		h.Metrics.Login(metrics.LoginFailed)
		fail(http.StatusUnauthorized, "Wrong login or password.")
		return
	case errors.Is(err, platform.ErrBusy):
		h.Metrics.Login(metrics.LoginBusy)
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "Too many people are logging in right now. Try again in a moment.")
		return
	case err != nil:
		h.Fail(w, r, err)
		return
	}
	for _, k := range keys {
		var err error
		if strings.HasPrefix(k.key, "ip:") {
			err = h.throttle.Refund(r.Context(), k.key)
		} else {
			err = h.throttle.Reset(r.Context(), k.key)
		}
		if err != nil {
			// The login stands; the count stays a little high.
			h.Log.WarnContext(r.Context(), "giving back a login attempt failed", "err", err)
		}
	}
	h.Metrics.Login(metrics.LoginOK)
	h.Sessions.SetDevice(w, r, u.Login)
	h.signIn(w, r, u, []string{platform.AMRPassword}, next)
}

// counted is a throttle key with its limit.
type counted struct {
	key   string
	limit int
}

func minutes(d time.Duration) int { return int((d + time.Minute - 1) / time.Minute) }

// signupView is the sign-up page's.
type signupView struct {
	Next string
	Form platform.NewUser
}

// SignupForm shows the sign-up page.
func (h *Handler) SignupForm(w http.ResponseWriter, r *http.Request) {
	h.pages.signup.Render(w, r, http.StatusOK, web.Page{Title: "Sign up"}, signupView{Next: web.LocalNext(r.FormValue("next"))})
}

// Signup creates the account and signs the user in.
func (h *Handler) Signup(w http.ResponseWriter, r *http.Request) {
	err := h.ParsePost(w, r)
	f := platform.NewUser{Login: r.PostForm.Get("login"), Password: r.PostForm.Get("password"),
		FirstName: r.PostForm.Get("first_name"), LastName: r.PostForm.Get("last_name"), Email: r.PostForm.Get("email")}
	next := web.LocalNext(r.PostForm.Get("next"))
	refuse := func(status int, msg string) {
		f.Password = ""
		h.pages.signup.Render(w, r, status, web.Page{Title: "Sign up", Error: msg}, signupView{Next: next, Form: f})
	}
	if err != nil {
		refuse(http.StatusForbidden, err.Error())
		return
	}
	// Counted before the account is made: a taken login counts too.
	ok, wait, err := h.signups.Take(r.Context(), "signup:"+httpx.ClientIP(r), signupsPerIP)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if !ok {
		h.Metrics.Limited(metrics.LimitSignup)
		refuse(http.StatusTooManyRequests, h.T(r, "Too many accounts created from your address. Try again in %d minutes.", minutes(wait)))
		return
	}
	u, err := h.p.CreateUser(r.Context(), f)
	if k := platform.KindOf(err); k == platform.Invalid || k == platform.Conflict {
		refuse(http.StatusUnprocessableEntity, web.Sentence(err))
		return
	}
	if errors.Is(err, platform.ErrBusy) {
		w.Header().Set("Retry-After", "5")
		refuse(http.StatusServiceUnavailable, "Too many people are signing up right now. Try again in a moment.")
		return
	}
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	h.signIn(w, r, u, []string{platform.AMRPassword}, next)
}

// LogoutForm asks to confirm (a GET must not change state).
func (h *Handler) LogoutForm(w http.ResponseWriter, r *http.Request) {
	h.pages.logout.Render(w, r, http.StatusOK, web.Page{Title: "Log out", User: h.CurrentUser(r)}, struct{}{})
}

// Logout ends the user's sessions, on every device: a copied session
// cookie stops working too.
func (h *Handler) Logout(w http.ResponseWriter, r *http.Request) {
	if err := h.ParsePost(w, r); err != nil {
		h.ErrorPage(w, r, http.StatusForbidden, "Log out", err.Error(), "")
		return
	}
	if u := h.CurrentUser(r); u != nil {
		if err := h.p.Logout(r.Context(), u.ID); err != nil {
			h.Fail(w, r, err)
			return
		}
	}
	h.Sessions.Clear(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// LoginURL is where a person who must log in first is sent, back to next
// afterwards, in the given layout.
func LoginURL(next, display string) string {
	return "/login?" + url.Values{"next": {next}, "display": {display}}.Encode()
}

type authorizedRow struct {
	App storage.App
	// Permissions are what the app may do, as the consent dialog says it
	// (the scopes' descriptions, shown in the page's language).
	Permissions []string
	Since       string
}

// authorizedView is the authorized apps page's.
type authorizedView struct{ Apps []authorizedRow }

var notices = map[string]string{
	"removed": "Access removed. The app's tokens no longer work; it will ask again next time.",
	"saved":   "Profile saved.",
}

// AuthorizedApps lists the apps the user has authorized.
func (h *Handler) AuthorizedApps(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	apps, err := h.p.AuthorizedApps(r.Context(), u.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	var v authorizedView
	for _, a := range apps {
		var perms []string
		for _, s := range a.Consent.Scope.Scopes(scope.User) {
			perms = append(perms, s.Description)
		}
		if len(perms) == 0 {
			perms = []string{"Basic information"}
		}
		v.Apps = append(v.Apps, authorizedRow{App: a.App, Permissions: perms, Since: a.Consent.CreatedAt.Format(time.DateTime)})
	}
	h.pages.settingsApps.Render(w, r, http.StatusOK, web.Page{Title: "Authorized apps", Wide: true, User: u, Notice: notices[r.URL.Query().Get("done")]}, v)
}

// RemoveAccess is "Remove access": every token of the user for that app
// stops working, and the consent is forgotten.
func (h *Handler) RemoveAccess(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	id, ok := web.PathID(r, "id")
	if !ok {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such app.", "")
		return
	}
	if !h.Answered(w, r, h.p.RemoveAppAccess(r.Context(), web.Actor(u, r), u.ID, id)) {
		return
	}
	http.Redirect(w, r, "/settings/apps?done=removed", http.StatusSeeOther)
}

type inboxItem struct {
	From, When, Text string
	Unread           bool
}

// inboxView is the inbox's.
type inboxView struct{ Items []inboxItem }

// Inbox shows the user's notifications from apps and messages from users
// and communities, newest first, and marks them read.
func (h *Handler) Inbox(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	items, err := h.p.Inbox(ctx, u.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	v := inboxView{Items: make([]inboxItem, len(items))}
	for i, it := range items {
		v.Items[i] = inboxItem{From: it.From, When: it.At.Format(time.DateTime), Text: it.Text, Unread: it.Unread}
	}
	h.pages.inbox.Render(w, r, http.StatusOK, web.Page{Title: "Inbox", Wide: true, User: u}, v)
	// Seen now: marked read for the next visit.
	if err := h.p.MarkInboxRead(ctx, u.ID); err != nil {
		h.Log.WarnContext(ctx, "marking the inbox read", "err", err)
	}
}

// Profile shows and edits the user's name.
func (h *Handler) Profile(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	h.pages.profile.Render(w, r, http.StatusOK, web.Page{Title: "Profile", User: u, Notice: notices[r.URL.Query().Get("done")]}, struct{}{})
}

// SaveProfile changes the user's name.
func (h *Handler) SaveProfile(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	if err := h.ParsePost(w, r); err != nil {
		h.pages.profile.Render(w, r, http.StatusForbidden, web.Page{Title: "Profile", User: u, Error: err.Error()}, struct{}{})
		return
	}
	err := h.p.Rename(r.Context(), u.ID, r.PostForm.Get("first_name"), r.PostForm.Get("last_name"))
	if platform.KindOf(err) == platform.Invalid {
		h.pages.profile.Render(w, r, http.StatusUnprocessableEntity, web.Page{Title: "Profile", User: u, Error: web.Sentence(err)}, struct{}{})
		return
	}
	if !h.Answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/settings/profile?done=saved", http.StatusSeeOther)
}

// avatarCSP lets the generated picture style itself, and nothing else.
var avatarCSP = web.CSP{Style: "'unsafe-inline'"}

// Avatar serves /avatar/{id}.svg: a generated picture with the user's
// initials on a color derived from the id, used as "photo" everywhere.
func (h *Handler) Avatar(w http.ResponseWriter, r *http.Request) {
	idText, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 {
		http.NotFound(w, r)
		return
	}
	u, err := h.p.User(r.Context(), id)
	if platform.KindOf(err) == platform.NotFound {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.Fail(w, r, err)
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
	web.SetCSP(w, avatarCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 100 100"><rect width="100" height="100" fill="hsl(%d,55%%,48%%)"/><text x="50" y="50" dy=".35em" text-anchor="middle" font-family="sans-serif" font-size="40" fill="#fff">%s</text></svg>`,
		size, size, hue, html.EscapeString(initials))
}
