// Package web is the kit every browser page of Latchkey is built with: the
// layout and its Page, typed page templates (Template[V], each parsed at
// start with the layout, its view a type of the package that serves it),
// signed session cookies, CSRF tokens, a typed Content Security Policy, and
// the one place where a domain error becomes a page. The pages themselves
// live by domain in the packages below it, each with its templates beside
// it: account, authorize, console, communities, embed and demo.
//
// Pages are server-rendered, work without JavaScript, carry a CSRF token in
// every form, and are served with a strict CSP and frame-ancestors 'none'.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/metrics"
	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
	"latchkey/internal/web/i18n"
)

// templateFiles are the layout and the pages several packages show (the
// error page, the consent dialog); every other page's template is beside
// the package that serves it.
//
//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// blankFiles hold the page served at /blank.html only, with the pages'
// headers: it receives tokens in its fragment, so nothing may frame it. It
// is kept out of static/, whose files are served without them.
//
//go:embed pages/blank.html
var blankFiles embed.FS

// Page is what the layout of every page reads. View is the page's own
// data, a type of the package that serves the page, which its Template
// names (Template.Render sets it).
type Page struct {
	Title   string
	Wide    bool // the wider card, for tables
	Full    bool // the whole width, for an iframe app
	Bare    bool // no header or card: the widget's button
	Notice  string
	Error   string
	Display string
	// Lang, when set, is the page's language whatever the browser prefers
	// (VK ID's lang_id); Render sets it otherwise. Theme is "dark" for the
	// dark colour scheme.
	Lang  i18n.Lang
	Theme string
	// Langs are the links to this page in each language, set by Render.
	Langs []LangLink
	User  *storage.User
	CSRF  string
	View  any
}

// LangLink is a link to the page in another language.
type LangLink struct {
	Code, Name, Href string
	Current          bool
}

// langNames are the languages' own names.
var langNames = map[i18n.Lang]string{i18n.English: "English", i18n.Russian: "Русский"}

// Users is what the kit asks of the domain layer: the user of a session,
// and names for tables.
type Users interface {
	// Current is the live session whose cookie names userID and secret.
	Current(ctx context.Context, userID int64, secret, address string) (platform.Session, error)
	User(ctx context.Context, id int64) (storage.User, error)
	// Counter keeps the throttles' counts (Kit.Throttle).
	Counter
}

// Kit renders pages and knows who is signed in.
type Kit struct {
	Log      *slog.Logger
	Sessions *Sessions
	users    Users
	// Consent is the consent dialog, which /authorize, the device page,
	// iframe apps and the widget show; Errors the error page.
	Consent *Template[ConsentView]
	Errors  *Template[ErrorView]
	// made are every template made (CheckPages).
	made []page
	// Lang is the language of a browser that states no preference.
	Lang i18n.Lang
	// Metrics counts logins and throttled requests (nil: none).
	Metrics *metrics.Metrics
	// Now is the injected clock.
	Now func() time.Time
	// blank is the blank page in each language.
	blank map[i18n.Lang][]byte
}

// Throttle is a throttle of the pages, counted where every node counts.
func (k *Kit) Throttle(name string, window time.Duration) *Throttle {
	return NewThrottle(k.users, name, k.Now, window)
}

// NewKit builds the kit and makes the pages it shows itself.
func NewKit(keys *token.Keyring, now func() time.Time, log *slog.Logger, secureCookies bool, users Users) (*Kit, error) {
	k := &Kit{Log: log, users: users, Lang: i18n.English, Now: now,
		Sessions: &Sessions{keys: keys, now: now, secure: secureCookies}}
	k.blank = map[i18n.Lang][]byte{}
	for _, l := range i18n.All {
		// The blank page holds no data: rendered once per language.
		var b bytes.Buffer
		t, err := template.New("blank.html").Funcs(template.FuncMap{"t": l.T}).ParseFS(blankFiles, "pages/blank.html")
		if err == nil {
			err = t.Execute(&b, l)
		}
		if err != nil {
			return nil, fmt.Errorf("web: the blank page: %w", err)
		}
		k.blank[l] = b.Bytes()
	}
	k.Consent = NewTemplate[ConsentView](k, templateFiles, "consent")
	k.Errors = NewTemplate[ErrorView](k, templateFiles, "error")
	return k, nil
}

// Template is one page: its template, in templates/<name>.html of the
// package that serves it, parsed with the layout once per language (its t
// and th functions translate into that language) the first time it is
// shown in that language, and the type of its view, which every Render of
// it passes.
type Template[V any] struct {
	kit    *Kit
	name   string
	byLang map[i18n.Lang]func() (*template.Template, error)
}

// NewTemplate makes the page name from files, the serving package's
// embedded templates.
func NewTemplate[V any](k *Kit, files fs.FS, name string) *Template[V] {
	t := &Template[V]{kit: k, name: name, byLang: map[i18n.Lang]func() (*template.Template, error){}}
	k.made = append(k.made, t)
	for _, l := range i18n.All {
		t.byLang[l] = sync.OnceValues(func() (*template.Template, error) {
			fm := template.FuncMap{"t": l.T, "th": l.HTML}
			for name, f := range funcs {
				fm[name] = f
			}
			parsed, err := template.New(name).Funcs(fm).ParseFS(templateFiles, "templates/layout.html")
			if err == nil {
				parsed, err = parsed.ParseFS(files, "templates/"+name+".html")
			}
			if err != nil {
				return nil, fmt.Errorf("web: template %s (%s): %w", name, l, err)
			}
			return parsed, nil
		})
	}
	return t
}

func (t *Template[V]) parsed(l i18n.Lang) (*template.Template, error) {
	parse := t.byLang[l]
	if parse == nil {
		return nil, fmt.Errorf("web: template %s: no language %q", t.name, l)
	}
	return parse()
}

// String is the page's name, for the log.
func (t *Template[V]) String() string { return t.name }

// Render writes the page with status: p, with v as its view.
func (t *Template[V]) Render(w http.ResponseWriter, r *http.Request, status int, p Page, v V) {
	p.View = v
	t.kit.render(w, r, status, t, p)
}

// langCookie keeps the language a person chose.
const langCookie = "lang"

// LangOf is the language of r's pages: the lang cookie, else the browser's
// Accept-Language, else the kit's default.
func (k *Kit) LangOf(r *http.Request) i18n.Lang {
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := i18n.Parse(c.Value); ok {
			return l
		}
	}
	return i18n.Prefer(r.Header.Get("Accept-Language"), k.Lang)
}

// T translates msg into r's language.
func (k *Kit) T(r *http.Request, msg string, args ...any) string { return k.LangOf(r).T(msg, args...) }

// SetLang serves GET /lang?to=ru&next=/path: it keeps the choice in the
// lang cookie and goes back to next (a path on this server only).
func (k *Kit) SetLang(w http.ResponseWriter, r *http.Request) {
	l, ok := i18n.Parse(r.URL.Query().Get("to"))
	if !ok {
		k.ErrorPage(w, r, http.StatusBadRequest, "Not found", "There is no such language.", "")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
		Secure: k.Sessions.Secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, LocalNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}

var funcs = template.FuncMap{
	"join":      func(lines []string) string { return strings.Join(lines, "\n") },
	"scopeText": func(m scope.Mask) string { return strings.Join(m.Names(scope.User), ",") },
}

// page is a Template of any view.
type page interface {
	parsed(i18n.Lang) (*template.Template, error)
	String() string
	// zero renders the page in l with a zero view, signed out.
	zero(l i18n.Lang) error
}

func (t *Template[V]) zero(l i18n.Lang) error {
	var v V
	tmpl, err := t.parsed(l)
	if err != nil {
		return err
	}
	if err := tmpl.ExecuteTemplate(io.Discard, "layout", Page{Lang: l, User: &storage.User{}, View: v}); err != nil {
		return fmt.Errorf("signed in: %w", err)
	}
	// Signed out, a page for the signed in alone may fail on the absent
	// user, and nothing else.
	err = tmpl.ExecuteTemplate(io.Discard, "layout", Page{Lang: l, View: v})
	if err != nil && !strings.Contains(err.Error(), "nil pointer evaluating *storage.User.") {
		return fmt.Errorf("signed out: %w", err)
	}
	return nil
}

// CheckPages renders every page made so far, in every language, with a
// zero view, signed in and out: a template that names a field its view
// does not have fails here rather than in front of a person.
func (k *Kit) CheckPages() error {
	var errs []error
	for _, t := range k.made {
		for _, l := range i18n.All {
			if err := t.zero(l); err != nil {
				errs = append(errs, fmt.Errorf("page %s (%s): %w", t, l, err))
			}
		}
	}
	return errors.Join(errs...)
}

// render writes the page t with status.
func (k *Kit) render(w http.ResponseWriter, r *http.Request, status int, t page, p Page) {
	if p.CSRF == "" {
		p.CSRF = k.Sessions.CSRFToken(w, r)
	}
	if p.Display == "" {
		p.Display = protocol.Display(r.FormValue("display"))
	}
	if p.Lang == "" || p.Theme == "" {
		// A page on the way to a VK ID dialog (the login before it) speaks
		// the dialog's language and wears its theme.
		if next, err := url.Parse(r.FormValue("next")); err == nil && next.Path == "/authorize" && next.Host == "" {
			if l, ok := i18n.Parse(protocol.VKIDLang(next.Query().Get("lang_id"))); ok && p.Lang == "" {
				p.Lang = l
			}
			if p.Theme == "" {
				p.Theme = protocol.VKIDScheme(next.Query().Get("scheme"))
			}
		}
	}
	if p.Lang == "" {
		p.Lang = k.LangOf(r)
	}
	here := "/"
	if r.Method == http.MethodGet {
		here = r.URL.RequestURI()
	}
	for _, l := range i18n.All {
		p.Langs = append(p.Langs, LangLink{Code: string(l), Name: langNames[l], Current: l == p.Lang,
			Href: "/lang?" + url.Values{"to": {string(l)}, "next": {here}}.Encode()})
	}
	var buf bytes.Buffer
	tmpl, err := t.parsed(p.Lang)
	if err != nil {
		k.Log.ErrorContext(r.Context(), "render: the template did not parse", "template", t, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := tmpl.ExecuteTemplate(&buf, "layout", p); err != nil {
		k.Log.ErrorContext(r.Context(), "render", "template", t, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ErrorView is the error page's.
type ErrorView struct {
	Heading string
	Message string
	// Back, when set, is a button back to the app.
	Back string
}

// ErrorPage answers with the error page.
func (k *Kit) ErrorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg, back string) {
	k.Errors.Render(w, r, status, Page{Title: heading, User: k.CurrentUser(r)}, ErrorView{Heading: heading, Message: msg, Back: back})
}

// Fail is the one place where an error becomes a page: a domain error
// with its own message and the status of its kind, storage being down as
// 503, anything else as an internal error (logged, not shown).
func (k *Kit) Fail(w http.ResponseWriter, r *http.Request, err error) {
	if httpx.ClientGone(r, err) {
		k.Log.DebugContext(r.Context(), "web: the client went away", "request_id", httpx.RequestID(w))
		w.WriteHeader(httpx.StatusClientClosed)
		return
	}
	switch platform.KindOf(err) {
	case platform.NotFound:
		k.ErrorPage(w, r, http.StatusNotFound, "Not found", Sentence(err), "")
		return
	case platform.Forbidden:
		k.ErrorPage(w, r, http.StatusForbidden, "Not allowed", Sentence(err), "")
		return
	case platform.Invalid, platform.Conflict:
		k.ErrorPage(w, r, http.StatusUnprocessableEntity, "Not done", Sentence(err), "")
		return
	case platform.Unavailable:
		w.Header().Set("Retry-After", "5")
		k.ErrorPage(w, r, http.StatusServiceUnavailable, "Busy", Sentence(err), "")
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		k.Log.WarnContext(r.Context(), "web: storage unavailable", "request_id", httpx.RequestID(w), "err", err)
		w.Header().Set("Retry-After", "5")
		k.ErrorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The service cannot reach its storage right now. Please try again in a few seconds.", "")
		return
	}
	k.Log.ErrorContext(r.Context(), "web: internal error", "request_id", httpx.RequestID(w), "err", err)
	k.ErrorPage(w, r, http.StatusInternalServerError, "Something went wrong", "An internal error occurred. Please try again.", "")
}

// Answered reports whether err is nil; otherwise Fail has answered it.
func (k *Kit) Answered(w http.ResponseWriter, r *http.Request, err error) bool {
	if err == nil {
		return true
	}
	k.Fail(w, r, err)
	return false
}

// Sentence is an error's message as a sentence for a page.
func Sentence(err error) string {
	s := Capitalize(err.Error())
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "!") {
		return s
	}
	return s + "."
}

// Capitalize upper-cases the first letter.
func Capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// CurrentUser loads the signed-in user, or returns nil: no session, or one
// that ended (or storage cannot say).
func (k *Kit) CurrentUser(r *http.Request) *storage.User {
	u, _ := k.sessionUser(r)
	return u
}

// CurrentSession is the browser's live session with its user, or nil.
func (k *Kit) CurrentSession(r *http.Request) *platform.Session {
	s, _ := k.session(r)
	return s
}

// sessionUser is CurrentUser with the failure to check, if any: nil, nil
// means nobody is signed in.
func (k *Kit) sessionUser(r *http.Request) (*storage.User, error) {
	s, err := k.session(r)
	if s == nil {
		return nil, err
	}
	return &s.User, nil
}

func (k *Kit) session(r *http.Request) (*platform.Session, error) {
	id, _, secret := k.Sessions.session(r)
	if id == 0 {
		return nil, nil
	}
	s, err := k.users.Current(r.Context(), id, secret, httpx.ClientIP(r))
	if errors.Is(err, platform.ErrSessionEnded) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// RequireUser returns the signed-in user, or answers and returns nil: the
// browser is sent to log in, or, when storage cannot be reached, told so
// (503) rather than sent to log in as if logged out.
func (k *Kit) RequireUser(w http.ResponseWriter, r *http.Request) *storage.User {
	u, err := k.sessionUser(r)
	if err != nil {
		k.Fail(w, r, err)
		return nil
	}
	if u == nil {
		http.Redirect(w, r, "/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
	}
	return u
}

// ParsePost reads a posted form and checks its CSRF token.
func (k *Kit) ParsePost(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return errors.New("the form could not be read")
	}
	return k.Sessions.CheckCSRF(r)
}

// SignedInPost returns the signed-in user of a posted form whose CSRF token
// checks out; otherwise it has answered (login page or refusal) and
// returns nil.
func (k *Kit) SignedInPost(w http.ResponseWriter, r *http.Request) *storage.User {
	u := k.RequireUser(w, r)
	if u == nil {
		return nil
	}
	if err := k.ParsePost(w, r); err != nil {
		k.ErrorPage(w, r, http.StatusForbidden, "Not done", err.Error(), "")
		return nil
	}
	return u
}

// Actor is the signed-in user as the audit log records them.
func Actor(u *storage.User, r *http.Request) platform.Actor {
	return platform.Actor{UserID: u.ID, IP: httpx.ClientIP(r)}
}

// PathID reads a positive id from the path value name.
func PathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

// Lines splits a textarea into its non-empty trimmed lines.
func Lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ConsentView is the consent dialog's, shared by /authorize, iframe apps
// and the widget.
type ConsentView struct {
	App    storage.App
	Scopes []scope.Scope
	// API is the name of the API the request is for ("" for the built-in
	// API), and APIScopes its scopes asked, as its owner describes them.
	API         string
	APIScopes   []APIScope
	Communities []storage.Community
	// Hidden are the request's parameters, posted back with the answer.
	Hidden []Hidden
	// Action is where the form posts ("" for /authorize).
	Action string
	// RedirectHost is where the answer goes (the redirect URI's host),
	// shown for an app that registered itself.
	RedirectHost string
}

// Unverified reports an app that registered itself (RFC 7591): no
// developer of this server vouches for it, and the dialog says so.
func (v ConsentView) Unverified() bool { return v.App.OwnerID == 0 }

// APIScope is an API's scope as the consent dialog shows it, in the
// page's language.
type APIScope struct{ EN, RU string }

// APIScopesOf are the scopes of api in m, as the consent dialog shows them.
func APIScopesOf(api *storage.API, m scope.Mask) []APIScope {
	var out []APIScope
	for _, sc := range api.Scopes {
		if m&(1<<sc.Bit) != 0 && !sc.Removed {
			out = append(out, APIScope{EN: sc.EN, RU: sc.RU})
		}
	}
	return out
}

// Hidden is a hidden form field.
type Hidden struct{ Name, Value string }

// Event is an audit event as a "recent events" table shows it.
type Event struct{ When, What, Who, IP string }

// auditLabels name each audit action for people.
var auditLabels = map[storage.AuditAction]string{
	storage.AuditAppCreate: "App created", storage.AuditAppSettings: "Settings changed", storage.AuditSecretRotate: "Secure key regenerated",
	storage.AuditSecretRetire: "Previous secure key retired", storage.AuditServiceTokenNew: "Service token regenerated",
	storage.AuditClientCredsOn: "Client credentials flow turned on", storage.AuditClientCredsOff: "Client credentials flow turned off",
	storage.AuditTokenRevoke: "Token revoked by the app", storage.AuditCodeReplay: "Authorization code reused: its tokens revoked",
	storage.AuditRefreshReuse:  "Spent refresh token reused: its grant revoked",
	storage.AuditAccessRemoved: "A user removed the app's access", storage.AuditAppDelete: "App deleted",
	storage.AuditCommunityCreate: "Community created", storage.AuditAdminAdd: "Admin added", storage.AuditAdminRemove: "Admin removed",
	storage.AuditCommunityTokenNew: "Token created here", storage.AuditCommunityTokenGone: "Token revoked",
}

// detailedEvents show their detail after their name.
var detailedEvents = map[storage.AuditAction]bool{storage.AuditCommunityTokenNew: true}

// Events renders audit events for a "recent events" table.
func (k *Kit) Events(ctx context.Context, evs []storage.AuditEvent) []Event {
	who := k.Names(ctx)
	rows := make([]Event, 0, len(evs))
	for _, e := range evs {
		what := auditLabels[e.Action]
		if what == "" {
			what = string(e.Action)
		}
		if detailedEvents[e.Action] && e.Detail != "" {
			what += ": " + e.Detail
		}
		rows = append(rows, Event{When: e.At.Format(time.DateTime + " MST"), What: what, Who: who.Login(e.ActorUserID), IP: e.IP})
	}
	return rows
}

// Names names users in tables, loading each once per page.
type Names struct {
	users Users
	ctx   context.Context
	names map[int64]string
}

// Names starts a page's user names.
func (k *Kit) Names(ctx context.Context) *Names {
	return &Names{users: k.users, ctx: ctx, names: map[int64]string{}}
}

// Login is the user's login ("command line" for the CLI's actions).
func (n *Names) Login(id int64) string {
	if id == 0 {
		return "command line"
	}
	if s, ok := n.names[id]; ok {
		return s
	}
	s := "user " + strconv.FormatInt(id, 10)
	if u, err := n.users.User(n.ctx, id); err == nil {
		s = u.Login
	}
	n.names[id] = s
	return s
}

// Static serves the embedded static files.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFiles, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

// Blank serves /blank.html, the landing page of standalone apps'
// redirects, in the browser's language.
func (k *Kit) Blank(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Vary", "Accept-Language, Cookie")
	w.Write(k.blank[k.LangOf(r)])
}

// WidgetScript serves /js/widget.js, the script sites include.
func WidgetScript(w http.ResponseWriter, r *http.Request) {
	b, _ := staticFiles.ReadFile("static/widget.js")
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}
