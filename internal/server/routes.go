package server

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"latchkey/internal/admin"
	"latchkey/internal/longpoll"
	"latchkey/internal/web"
	"latchkey/internal/web/demo"
)

// apiRoutes are the machine-facing patterns, called by apps' servers and
// bots thousands of times a second: their access log lines are DEBUG (a
// failure of ours, 5xx, stays an ERROR). At that rate a line per issued
// token or API call is gigabytes a day that no one reads; the metrics
// count every request by route and status, and the audit log keeps what
// a person did.
var apiRoutes = []string{apiGET, apiPOST, "GET /longpoll/{group_id}",
	"GET /access_token", "POST /access_token", "POST /oauth/introspect", "POST /oauth/revoke",
	"GET /oauth/userinfo", "POST /oauth/userinfo", "POST /oauth2/auth", "POST /oauth2/user_info", "/api/", "/oauth/check",
	"POST /oauth/register", "/oauth/register/{client_id}"}

// adminRoutes are the admin listener's (--admin-addr): metrics, the Go
// profiler and the admin API. It is for operators: keep it off the public
// network.
func (s *Server) adminRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/admin/v1/", admin.New(admin.Deps{Admin: s.deps.Platform.Admin, Users: s.deps.Platform.Users, Apps: s.deps.Platform.Apps, Communities: s.deps.Platform.Communities, Tokens: s.deps.Platform.Tokens, APIs: s.deps.Platform.APIs, Factors: s.deps.Platform.Factors, Upstreams: s.deps.Platform.Upstreams}, s.deps.Log))
	return mux
}

// routes lists every route of the server. The browser side is wrapped in
// web.Secure (CSP, CSRF origin checks, no-store); the API side speaks JSON
// and sets no cookies.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.deps.Config.AdminAddr == "" {
		mux.Handle("GET /metrics", s.metrics()) // else on the admin listener only
	}

	// OAuth endpoints for apps' servers.
	mux.HandleFunc("GET /access_token", s.oauth.AccessToken)
	mux.HandleFunc("POST /access_token", s.oauth.AccessToken)
	mux.HandleFunc("POST /oauth/revoke", s.oauth.Revoke)
	mux.HandleFunc("POST /oauth/introspect", s.oauth.Introspect)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.oauth.Metadata)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.oauth.Discovery)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/{path...}", s.oauth.ProtectedResource)
	mux.Handle("/api/", s.gateway)
	mux.HandleFunc("/oauth/check", s.gateway.Check) // Envoy asks with the original method
	mux.HandleFunc("POST /oauth/register", s.registration.Register)
	mux.HandleFunc("/oauth/register/{client_id}", s.registration.Manage)
	mux.HandleFunc("GET /oauth/jwks", s.oauth.JWKS)
	mux.HandleFunc("POST /oauth/par", s.oauth.PAR)
	mux.HandleFunc("POST /oauth/device/code", s.oauth.DeviceAuthorization)
	mux.HandleFunc("GET /oauth/userinfo", s.oauth.UserInfo)
	mux.HandleFunc("POST /oauth/userinfo", s.oauth.UserInfo)

	// The VK ID dialect (vkid-wire.md), called by browsers cross-origin.
	mux.HandleFunc("POST /oauth2/auth", s.oauth.VKIDAuth)
	mux.HandleFunc("POST /oauth2/user_info", s.oauth.VKIDUserInfo)
	mux.HandleFunc("POST /oauth2/public_info", s.oauth.VKIDPublicInfo)
	mux.HandleFunc("POST /oauth2/logout", s.oauth.VKIDLogout)
	mux.HandleFunc("POST /oauth2/revoke", s.oauth.VKIDRevoke)
	mux.HandleFunc("OPTIONS /oauth2/{endpoint}", s.oauth.VKIDPreflight)
	mux.HandleFunc("/oauth2/", s.oauth.VKIDElse)

	// The API: JSON only, no cookies.
	mux.Handle(apiGET, s.api) // methodsFirst takes most calls before the mux
	mux.Handle(apiPOST, s.api)
	mux.Handle("GET /longpoll/{group_id}", &longpoll.Handler{Bots: s.deps.Platform.Bots, Log: s.deps.Log})

	// Browser pages.
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, web.Secure(h)) }
	page("GET /{$}", s.account.Home)
	page("GET /login", s.account.LoginForm)
	page("POST /login", s.account.Login)
	page("GET /login/factor", s.account.FactorForm)
	page("POST /login/factor", s.account.Factor)
	page("POST /login/factor/passkey/options", s.account.FactorPasskeyOptions)
	page("POST /login/factor/passkey", s.account.FactorPasskey)
	page("POST /login/passkey/options", s.account.PasskeyOptions)
	page("POST /login/passkey", s.account.Passkey)
	page("GET /login/upstream/{name}", s.account.UpstreamStart)
	page("GET /login/upstream/{name}/callback", s.account.UpstreamCallback)
	page("GET /signup", s.account.SignupForm)
	page("POST /signup", s.account.Signup)
	page("GET /logout", s.account.LogoutForm)
	page("POST /logout", s.account.Logout)
	// RP-Initiated Logout: a GET, or a POST from the app's own page
	// (another site, so outside the cross-origin protection: it signs out
	// without asking only with a valid id_token_hint of the person signed
	// in, as a GET does); the person's confirmation posts to
	// /oauth/logout/confirm, protected as every form.
	page("GET /oauth/logout", s.account.EndSession)
	mux.Handle("POST /oauth/logout", web.SecureHeaders(http.HandlerFunc(s.account.EndSession)))
	page("POST /oauth/logout/confirm", s.account.ConfirmEndSession)
	page("GET /authorize", s.authorize.Authorize)
	page("POST /authorize", s.authorize.Decide)
	page("GET /device", s.device.Form)
	page("POST /device", s.device.Submit)
	page("GET /apps", s.console.Apps)
	page("GET /apps/new", s.console.NewAppForm)
	page("POST /apps", s.console.CreateApp)
	page("GET /apps/{id}", s.console.AppSettings)
	page("POST /apps/{id}/settings", s.console.UpdateApp)
	page("GET /apps/{id}/confirm/{action}", s.console.ConfirmForm)
	page("POST /apps/{id}/{action}", s.console.AppAction)
	page("GET /apis/new", s.console.NewAPIForm)
	page("POST /apis", s.console.CreateAPI)
	page("GET /apis/{id}", s.console.APIPage)
	page("POST /apis/{id}/settings", s.console.UpdateAPI)
	page("GET /apis/{id}/confirm/{action}", s.console.ConfirmAPIForm)
	page("POST /apis/{id}/{action}", s.console.APIAction)
	page("GET /communities", s.communities.Communities)
	page("POST /communities", s.communities.CreateCommunity)
	page("GET /communities/{id}", s.communities.Community)
	page("GET /communities/{id}/api", s.communities.Community)
	page("GET /communities/{id}/write", s.communities.WritePage)
	page("POST /communities/{id}/write", s.communities.WritePage)
	page("POST /communities/{id}/admins", s.communities.Post)
	page("POST /communities/{id}/admins/{user}/remove", s.communities.Post)
	page("POST /communities/{id}/tokens", s.communities.Post)
	page("POST /communities/{id}/tokens/{token}/revoke", s.communities.Post)
	page("GET /{name}", s.embed.IFrameApp) // /app<ID>
	page("POST /{name}", s.embed.IFrameDecide)
	page("GET /widget/button", s.embed.WidgetButton)
	page("GET /widget/auth", s.embed.WidgetAuth)
	page("POST /widget/auth", s.embed.WidgetDecide)
	page("GET /settings/apps", s.account.AuthorizedApps)
	page("POST /settings/apps/{id}/remove", s.account.RemoveAccess)
	page("GET /settings/profile", s.account.Profile)
	page("POST /settings/profile", s.account.SaveProfile)
	page("GET /inbox", s.account.Inbox)
	page("GET /account/security", s.account.Security)
	page("POST /account/security/passkeys/options", s.account.PasskeyAddOptions)
	page("POST /account/security/passkeys", s.account.AddPasskey)
	page("GET /account/security/app", s.account.AddAppForm)
	page("POST /account/security/app", s.account.AddApp)
	page("POST /account/security/factors/{id}/remove", s.account.RemoveFactor)
	page("POST /account/security/recovery", s.account.NewRecoveryCodes)
	page("POST /account/security/sessions/{id}/end", s.account.EndOneSession)
	page("POST /account/security/sessions/end-others", s.account.EndOtherSessions)
	page("POST /account/security/upstreams/{name}/link", s.account.LinkUpstream)
	page("POST /account/security/upstreams/{name}/unlink", s.account.UnlinkUpstream)
	mux.HandleFunc("GET /avatar/{file}", s.account.Avatar)
	mux.HandleFunc("GET /js/widget.js", web.WidgetScript)
	page("GET /lang", s.kit.SetLang)
	page("GET "+demo.Path, s.demoCallback)
	page("GET /blank.html", s.kit.Blank)
	mux.Handle("GET /static/", web.Static())
	return methodsFirst{api: s.api, mux: mux}
}

// Patterns of the API's two routes: the mux's, and the fast path's.
const (
	apiGET  = "GET /method/{name}"
	apiPOST = "POST /method/{name}"
)

// methodsFirst sends an API call (GET or POST /method/NAME, the bulk of a
// node's traffic) straight to api, as the mux would, and everything else to
// mux. Matching a pattern in the mux costs 0.6 µs a call (and an
// allocation), a fifth of the handler's own time. Only a path the mux would
// take as it is goes this way: one with escapes, more segments, a dot
// segment or another method is the mux's, which redirects, refuses or
// routes it as before.
type methodsFirst struct {
	api interface {
		Serve(w http.ResponseWriter, r *http.Request, name string)
	}
	mux http.Handler
}

func (m methodsFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/method/")
	if ok && r.URL.RawPath == "" && name != "" && name != "." && name != ".." && !strings.Contains(name, "/") {
		switch r.Method {
		case http.MethodGet:
			r.Pattern = apiGET
		case http.MethodPost:
			r.Pattern = apiPOST
		default:
			ok = false
		}
		if ok {
			m.api.Serve(w, r, name)
			return
		}
	}
	m.mux.ServeHTTP(w, r)
}
