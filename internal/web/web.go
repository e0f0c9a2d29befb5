// Package web is the browser side of Latchkey: sign-up, login, the
// authorization dialog and the pages people use. Pages are server-rendered
// from embedded templates parsed at start, work without JavaScript, carry a
// CSRF token in every form, and are served with a strict CSP and
// frame-ancestors 'none'.
package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
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
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Failed-login limits per window: per login, and per client IP.
const (
	loginFailuresPerLogin = 5
	loginFailuresPerIP    = 20
	loginWindow           = 15 * time.Minute
	// Accounts created per client IP per hour.
	signupsPerIP = 20
	signupWindow = time.Hour
)

// Handler serves the browser pages.
type Handler struct {
	P        *platform.Platform
	OAuth    *oauth.Provider
	Log      *slog.Logger
	pages    map[string]*template.Template
	sessions *sessions
	throttle *throttle
	signups  *throttle
}

// New parses the templates; a missing or broken template fails here, at
// start, not at the first request.
func New(p *platform.Platform, op *oauth.Provider, log *slog.Logger, secureCookies bool) (*Handler, error) {
	h := &Handler{P: p, OAuth: op, Log: log, pages: map[string]*template.Template{},
		sessions: &sessions{keys: p.Keys, now: p.Now, secure: secureCookies},
		throttle: newThrottle(p.Now, loginWindow), signups: newThrottle(p.Now, signupWindow)}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if page == "layout" {
			continue
		}
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		h.pages[page] = t
	}
	for _, required := range []string{"login", "signup", "consent", "error", "home", "logout", "apps", "app_new", "app", "confirm", "communities", "community", "iframe_app", "widget_button", "widget_result", "settings_apps", "inbox", "profile"} {
		if h.pages[required] == nil {
			return nil, fmt.Errorf("web: template %s.html is missing", required)
		}
	}
	return h, nil
}

// Secure adds the browser-side protections to every page: CSP with
// frame-ancestors 'none', nosniff, no referrer, no caching (pages carry CSRF
// tokens and personal data), and Go's cross-origin request protection
// (Sec-Fetch-Site / Origin) in front of the CSRF tokens.
func Secure(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	}))
}

// Static serves the embedded static files.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFiles, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

// Blank serves /blank.html, the landing page of standalone apps' redirects.
func Blank(w http.ResponseWriter, r *http.Request) {
	b, _ := staticFiles.ReadFile("static/blank.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

// page is what every template gets.
type page struct {
	Title   string
	Wide    bool
	Full    bool // the whole width, for an iframe app
	Bare    bool // no header or card: the widget's button
	Notice  string
	Display string
	User    *storage.User
	CSRF    string
	Error   string
	Next    string
	Login   string
	Form    platform.NewUser
	// consent
	App         storage.App
	Scopes      []scope.Scope
	Communities []storage.Community
	Hidden      []hidden
	// error and confirmation pages
	Heading string
	Message string
	Back    string
	Action  string
	Confirm string
	Danger  bool
	// console
	Apps           []storage.App
	NewApp         platform.NewApp
	View           platform.AppView
	OldSecretUntil string
	BlankURL       string
	Events         []event
	// communities (Communities above lists them)
	Community storage.Community
	Tab       string
	Admins    []storage.User
	Tokens    []tokenRow
	NewToken  string
	AllScopes []scope.Scope
	// apps inside and outside the platform
	FrameURL   string
	Origin     string
	Mode       string
	AuthURL    string
	ResultJSON string
	Authorized []authorizedRow
	Inbox      []inboxItem
}

var funcs = template.FuncMap{
	"join":      func(lines []string) string { return strings.Join(lines, "\n") },
	"scopeText": func(m scope.Mask) string { return strings.Join(m.Names(scope.User), ",") },
}

type hidden struct{ Name, Value string }

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.CSRF == "" {
		p.CSRF = h.sessions.csrfToken(w, r)
	}
	if p.Display == "" {
		p.Display = displayOf(r)
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.Log.ErrorContext(r.Context(), "render", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func displayOf(r *http.Request) string {
	return protocol.Display(r.FormValue("display"))
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg, back string) {
	h.render(w, r, status, "error", page{Title: heading, Heading: heading, Message: msg, Back: back, User: h.currentUser(r)})
}

func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, storage.ErrUnavailable) {
		h.Log.WarnContext(r.Context(), "web: storage unavailable", "request_id", httpx.RequestID(w), "err", err)
		w.Header().Set("Retry-After", "5")
		h.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The service cannot reach its storage right now. Please try again in a few seconds.", "")
		return
	}
	h.Log.ErrorContext(r.Context(), "web: internal error", "request_id", httpx.RequestID(w), "err", err)
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "An internal error occurred. Please try again.", "")
}

// localNext keeps a post-login target only if it is a path on this server
// (no scheme, no host, no //): an open redirect is a phishing tool.
func localNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// Home is the signed-in user's start page.
func (h *Handler) Home(w http.ResponseWriter, r *http.Request) {
	u := h.currentUser(r)
	if u == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "home", page{Title: "Home", User: u})
}

// LoginForm shows the login page.
func (h *Handler) LoginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login", page{Title: "Log in", Next: localNext(r.FormValue("next"))})
}

// Login checks the credentials, throttling failures per login and per IP.
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) {
	if err := h.parsePost(w, r); err != nil {
		h.render(w, r, http.StatusForbidden, "login", page{Title: "Log in", Error: err.Error(), Next: localNext(r.PostForm.Get("next"))})
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	next := localNext(r.PostForm.Get("next"))
	loginKey, ipKey := "login:"+strings.ToLower(login), "ip:"+httpx.ClientIP(r)
	fail := func(status int, msg string) {
		h.render(w, r, status, "login", page{Title: "Log in", Error: msg, Next: next, Login: login})
	}
	if b, wait := h.throttle.blocked(loginKey, loginFailuresPerLogin); b {
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts. Try again in %d minutes.", minutes(wait)))
		return
	}
	if b, wait := h.throttle.blocked(ipKey, loginFailuresPerIP); b {
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts. Try again in %d minutes.", minutes(wait)))
		return
	}
	u, err := h.P.Authenticate(r.Context(), login, r.PostForm.Get("password"))
	if errors.Is(err, platform.ErrWrongCredentials) {
		h.throttle.add(loginKey)
		h.throttle.add(ipKey)
		fail(http.StatusUnauthorized, "Wrong login or password.")
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.throttle.reset(loginKey)
	h.sessions.set(w, u.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func minutes(d time.Duration) int { return int((d + time.Minute - 1) / time.Minute) }

// parsePost reads a posted form and checks its CSRF token.
func (h *Handler) parsePost(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return errors.New("the form could not be read")
	}
	return h.sessions.checkCSRF(r)
}

// SignupForm shows the sign-up page.
func (h *Handler) SignupForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "signup", page{Title: "Sign up", Next: localNext(r.FormValue("next"))})
}

// Signup creates the account and signs the user in.
func (h *Handler) Signup(w http.ResponseWriter, r *http.Request) {
	err := h.parsePost(w, r)
	f := platform.NewUser{Login: r.PostForm.Get("login"), Password: r.PostForm.Get("password"),
		FirstName: r.PostForm.Get("first_name"), LastName: r.PostForm.Get("last_name"), Email: r.PostForm.Get("email")}
	next := localNext(r.PostForm.Get("next"))
	if err != nil {
		h.render(w, r, http.StatusForbidden, "signup", page{Title: "Sign up", Error: err.Error(), Next: next, Form: f})
		return
	}
	ipKey := "signup:" + httpx.ClientIP(r)
	if b, wait := h.signups.blocked(ipKey, signupsPerIP); b {
		f.Password = ""
		h.render(w, r, http.StatusTooManyRequests, "signup", page{Title: "Sign up", Error: fmt.Sprintf("Too many accounts created from your address. Try again in %d minutes.", minutes(wait)), Next: next, Form: f})
		return
	}
	u, err := h.P.CreateUser(r.Context(), f)
	if k := platform.KindOf(err); k == platform.Invalid || k == platform.Conflict {
		f.Password = ""
		h.render(w, r, http.StatusUnprocessableEntity, "signup", page{Title: "Sign up", Error: capitalize(err.Error()) + ".", Next: next, Form: f})
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.signups.add(ipKey)
	h.sessions.set(w, u.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// LogoutForm asks to confirm (a GET must not change state).
func (h *Handler) LogoutForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "logout", page{Title: "Log out", User: h.currentUser(r)})
}

// Logout ends the user's sessions, on every device: a copied session
// cookie stops working too.
func (h *Handler) Logout(w http.ResponseWriter, r *http.Request) {
	if err := h.parsePost(w, r); err != nil {
		h.errorPage(w, r, http.StatusForbidden, "Log out", err.Error(), "")
		return
	}
	if u := h.currentUser(r); u != nil {
		if err := h.P.Logout(r.Context(), u.ID); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	h.sessions.clear(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// authorizeParams are the /authorize parameters the consent form carries back.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "display", "revoke", "group_ids", "code_challenge", "code_challenge_method", "v"}

// Authorize serves GET /authorize: check the request, make sure someone is
// signed in, and either answer at once (consent already covers it) or show
// the dialog.
func (h *Handler) Authorize(w http.ResponseWriter, r *http.Request) {
	req, err := h.OAuth.ParseAuthorize(r.Context(), r.URL.Query())
	if err != nil {
		h.authorizeError(w, r, req, err)
		return
	}
	u := h.currentUser(r)
	if u == nil {
		q := url.Values{"next": {r.URL.RequestURI()}, "display": {req.Display}}
		http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
		return
	}
	d, err := h.OAuth.Decide(r.Context(), req, u.ID)
	if err != nil {
		h.authorizeError(w, r, req, err)
		return
	}
	if d.Ask {
		h.consent(w, r, req, u, d.Communities)
		return
	}
	h.approve(w, r, req, u, &d)
}

func (h *Handler) consent(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, u *storage.User, communities []storage.Community) {
	p := page{Title: "Allow access", Display: req.Display, User: u, App: req.App, Scopes: req.Scope.Scopes(req.Audience()), Communities: communities}
	for _, name := range authorizeParams {
		if v := req.Params.Get(name); v != "" {
			p.Hidden = append(p.Hidden, hidden{name, v})
		}
	}
	h.render(w, r, http.StatusOK, "consent", p)
}

// Decide serves POST /authorize: the user's Allow or Deny.
func (h *Handler) Decide(w http.ResponseWriter, r *http.Request) {
	if err := h.parsePost(w, r); err != nil {
		h.errorPage(w, r, http.StatusForbidden, "Request refused", err.Error(), "")
		return
	}
	q := url.Values{}
	for _, name := range authorizeParams {
		if v := r.PostForm.Get(name); v != "" {
			q.Set(name, v)
		}
	}
	req, err := h.OAuth.ParseAuthorize(r.Context(), q)
	if err != nil {
		h.authorizeError(w, r, req, err)
		return
	}
	u := h.currentUser(r)
	if u == nil {
		next := url.Values{"next": {"/authorize?" + q.Encode()}, "display": {req.Display}}
		http.Redirect(w, r, "/login?"+next.Encode(), http.StatusSeeOther)
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		h.approve(w, r, req, u, nil)
	case "deny":
		http.Redirect(w, r, oauth.DenyURL(req), http.StatusFound)
	default:
		h.errorPage(w, r, http.StatusBadRequest, "Request refused", "Choose Allow or Deny.", "")
	}
}

// approve answers a request the user approved: through the dialog (d nil),
// or because the consent covered it (Decide's d).
func (h *Handler) approve(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, u *storage.User, d *oauth.Decision) {
	to, err := h.OAuth.Approve(r.Context(), req, *u, httpx.ClientIP(r), d, d == nil)
	if err != nil {
		h.authorizeError(w, r, req, err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// authorizeError answers a failed /authorize. Errors about the client or
// the redirect URI never redirect: a person gets a page, a program JSON.
// Refusals (not an admin) get a page whose button carries access_denied back
// to the app; other protocol errors go straight back to the app.
func (h *Handler) authorizeError(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, err error) {
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		h.internal(w, r, err)
		return
	}
	if !oe.Redirect || req == nil {
		if !wantsHTML(r) {
			oauth.WriteJSON(w, oe)
			return
		}
		h.errorPage(w, r, http.StatusBadRequest, "This app's request is invalid", oe.Description, "")
		return
	}
	if oe.Code == protocol.AccessDenied {
		h.errorPage(w, r, http.StatusForbidden, "Access refused", capitalize(oe.Description)+".", oauth.ErrorURL(req, oe))
		return
	}
	http.Redirect(w, r, oauth.ErrorURL(req, oe), http.StatusFound)
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
