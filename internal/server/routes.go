package server

import (
	"net/http"

	"latchkey/internal/web"
)

// apiRoutes are the API's patterns; their access log lines are DEBUG.
var apiRoutes = []string{"GET /method/{name}", "POST /method/{name}"}

// routes lists every route of the server. The browser side is wrapped in
// web.Secure (CSP, CSRF origin checks, no-store); the API side speaks JSON
// and sets no cookies.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics())

	// OAuth endpoints for apps' servers.
	mux.HandleFunc("GET /access_token", s.oauth.AccessToken)
	mux.HandleFunc("POST /access_token", s.oauth.AccessToken)
	mux.HandleFunc("POST /oauth/revoke", s.oauth.Revoke)
	mux.HandleFunc("POST /oauth/introspect", s.oauth.Introspect)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.oauth.Metadata)

	// The API: JSON only, no cookies.
	for _, r := range apiRoutes {
		mux.Handle(r, s.api)
	}

	// Browser pages.
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, web.Secure(h)) }
	page("GET /{$}", s.web.Home)
	page("GET /login", s.web.LoginForm)
	page("POST /login", s.web.Login)
	page("GET /signup", s.web.SignupForm)
	page("POST /signup", s.web.Signup)
	page("GET /logout", s.web.LogoutForm)
	page("POST /logout", s.web.Logout)
	page("GET /authorize", s.web.Authorize)
	page("POST /authorize", s.web.Decide)
	page("GET /apps", s.web.Apps)
	page("GET /apps/new", s.web.NewAppForm)
	page("POST /apps", s.web.CreateApp)
	page("GET /apps/{id}", s.web.AppSettings)
	page("POST /apps/{id}/settings", s.web.UpdateApp)
	page("GET /apps/{id}/confirm/{action}", s.web.ConfirmForm)
	page("POST /apps/{id}/{action}", s.web.AppAction)
	page("GET /communities", s.web.Communities)
	page("POST /communities", s.web.CreateCommunity)
	page("GET /communities/{id}", s.web.Community)
	page("GET /communities/{id}/api", s.web.Community)
	page("POST /communities/{id}/admins", s.web.CommunityPost)
	page("POST /communities/{id}/admins/{user}/remove", s.web.CommunityPost)
	page("POST /communities/{id}/tokens", s.web.CommunityPost)
	page("POST /communities/{id}/tokens/{token}/revoke", s.web.CommunityPost)
	page("GET /{name}", s.web.IFrameApp) // /app<ID>
	page("POST /{name}", s.web.IFrameDecide)
	page("GET /widget/button", s.web.WidgetButton)
	page("GET /widget/auth", s.web.WidgetAuth)
	page("POST /widget/auth", s.web.WidgetDecide)
	page("GET /settings/apps", s.web.AuthorizedApps)
	page("POST /settings/apps/{id}/remove", s.web.RemoveAccess)
	page("GET /settings/profile", s.web.Profile)
	page("POST /settings/profile", s.web.SaveProfile)
	page("GET /inbox", s.web.Inbox)
	mux.HandleFunc("GET /avatar/{file}", s.web.Avatar)
	mux.HandleFunc("GET /js/widget.js", web.Widget)
	page("GET /blank.html", web.Blank)
	mux.Handle("GET /static/", web.Static())
	return mux
}
