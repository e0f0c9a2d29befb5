// Package view holds the JSON shapes of what the admin API shows (users,
// apps, communities, tokens, audit events), in one place: the command line
// prints the same shapes, and openapi.json describes them.
package view

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// User is a user as the admin API shows one (never the password hash).
type User struct {
	ID         int64  `json:"id"`
	Login      string `json:"login"`
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	Email      string `json:"email"`
	CreatedAt  int64  `json:"created_at"`
	Disabled   bool   `json:"disabled"`
	DisabledAt int64  `json:"disabled_at,omitempty"`
	RequireMFA bool   `json:"require_mfa,omitempty"`
}

// OfUser is a user as the admin API shows one.
func OfUser(u storage.User) User {
	out := User{ID: u.ID, Login: u.Login, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
		CreatedAt: u.CreatedAt.Unix(), Disabled: !u.DisabledAt.IsZero(), RequireMFA: u.RequireMFA}
	if out.Disabled {
		out.DisabledAt = u.DisabledAt.Unix()
	}
	return out
}

// Community is a community with its admins.
type Community struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	Admins    []User `json:"admins"`
}

// Token is a token as an operator sees it: its hash (hex), never the
// token.
type Token struct {
	Hash         string `json:"hash"`
	Kind         string `json:"kind"`
	AppID        int64  `json:"app_id"`
	UserID       int64  `json:"user_id"`
	CommunityID  int64  `json:"community_id,omitempty"`
	Scope        string `json:"scope"`
	Flow         string `json:"flow"`
	IssuedAt     int64  `json:"issued_at"`
	ExpiresAt    int64  `json:"expires_at,omitempty"`
	RevokedAt    int64  `json:"revoked_at,omitempty"`
	RevokeReason string `json:"revoke_reason,omitempty"`
	DPoPBound    bool   `json:"dpop_bound"`
}

// unix is t in Unix seconds, 0 for the zero time.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// Event is an audit event.
type Event struct {
	ID          int64  `json:"id"`
	At          int64  `json:"at"`
	Action      string `json:"action"`
	ActorUserID int64  `json:"actor_user_id,omitempty"`
	AppID       int64  `json:"app_id,omitempty"`
	CommunityID int64  `json:"community_id,omitempty"`
	IP          string `json:"ip"`
	Detail      string `json:"detail"`
}

// App is how an app is printed by the command line and the admin API:
// the fields of `app create` (client_id, client_secret, service_token) and
// its settings.
type App struct {
	ClientID                 int64    `json:"client_id"`
	ClientSecret             string   `json:"client_secret"`
	ServiceToken             string   `json:"service_token"`
	OwnerID                  int64    `json:"owner_id"`
	Registered               bool     `json:"registered"`
	Title                    string   `json:"title"`
	Type                     string   `json:"type"`
	Description              string   `json:"description"`
	RedirectURIs             []string `json:"redirect_uris"`
	IFrameURL                string   `json:"iframe_url,omitempty"`
	IFrameScope              string   `json:"iframe_scope,omitempty"`
	ClientCredentials        bool     `json:"client_credentials"`
	OldClientSecret          string   `json:"old_client_secret,omitempty"`
	OldClientSecretExpiresAt int64    `json:"old_client_secret_expires_at,omitempty"`
	CreatedAt                int64    `json:"created_at"`
	Deleted                  bool     `json:"deleted,omitempty"`
	// AuthMethod is token_endpoint_auth_method ("" for the default of the
	// app's type); JWKS or JWKSURI its keys for private_key_jwt.
	AuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	JWKS       json.RawMessage `json:"jwks,omitempty"`
	JWKSURI    string          `json:"jwks_uri,omitempty"`
	// PostLogoutRedirectURIs are where the app may send a person after
	// signing them out.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	// Profile is the security profile the app is held to (fapi2).
	Profile string `json:"profile,omitempty"`
	// BackchannelLogoutURI is where the app hears of a session's end.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
}

// OfApp is an app as the admin API and the command line show it.
func OfApp(v platform.AppView) App {
	out := App{
		ClientID: v.ID, ClientSecret: v.ClientSecret, ServiceToken: v.ServiceToken, OwnerID: v.OwnerID, Registered: v.OwnerID == 0,
		Title: v.Title, Type: string(v.Type), Description: v.Description, RedirectURIs: v.RedirectURIs,
		IFrameURL: v.IFrameURL, IFrameScope: v.IFrameScope.Text(scope.User), ClientCredentials: v.ClientCredentials, OldClientSecret: v.OldClientSecret,
		CreatedAt: v.CreatedAt.Unix(), AuthMethod: v.AuthMethod, JWKSURI: v.JWKSURI,
	}
	if v.JWKS != "" {
		out.JWKS = json.RawMessage(v.JWKS)
	}
	out.PostLogoutRedirectURIs, out.Profile, out.BackchannelLogoutURI = v.PostLogoutRedirectURIs, v.Profile, v.BackchannelLogoutURI
	if out.PostLogoutRedirectURIs == nil {
		out.PostLogoutRedirectURIs = []string{}
	}
	if out.RedirectURIs == nil {
		out.RedirectURIs = []string{}
	}
	if v.OldSecret != nil {
		out.OldClientSecretExpiresAt = v.OldSecret.ExpiresAt.Unix()
	}
	return out
}

// OfToken is a token as an operator sees it.
func OfToken(t storage.Token) Token {
	audience := scope.User
	if t.Kind == token.Community {
		audience = scope.Community
	}
	return Token{Hash: hex.EncodeToString(t.Hash[:]), Kind: t.Kind.String(), AppID: t.AppID, UserID: t.UserID,
		CommunityID: t.CommunityID, Scope: t.Scope.Text(audience), Flow: string(t.Flow), IssuedAt: t.IssuedAt.Unix(),
		ExpiresAt: unix(t.ExpiresAt), RevokedAt: unix(t.RevokedAt), RevokeReason: string(t.RevokeReason), DPoPBound: t.JKT != ""}
}

// OfEvent is an audit event as the admin API shows one.
func OfEvent(e storage.AuditEvent) Event {
	return Event{ID: e.ID, At: e.At.Unix(), Action: string(e.Action), ActorUserID: e.ActorUserID,
		AppID: e.AppID, CommunityID: e.CommunityID, IP: e.IP, Detail: e.Detail}
}

// OfCommunity is a community with its admins.
func OfCommunity(c storage.Community, admins []storage.User) Community {
	out := Community{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt.Unix(), Admins: []User{}}
	for _, u := range admins {
		out.Admins = append(out.Admins, OfUser(u))
	}
	return out
}

// API is an API as the command line and the admin API show it; the
// introspection secret only when it was just made.
type API struct {
	ID                    int64      `json:"id"`
	Identifier            string     `json:"identifier"`
	Name                  string     `json:"name"`
	OwnerID               int64      `json:"owner_id"`
	Scopes                []APIScope `json:"scopes"`
	TokenFormat           string     `json:"token_format"`
	TokenTTLSeconds       int64      `json:"token_ttl_seconds"`
	Rate                  int64      `json:"rate"`
	Upstream              string     `json:"upstream,omitempty"`
	Slug                  string     `json:"slug,omitempty"`
	Routes                []APIRoute `json:"routes,omitempty"`
	IntrospectionClientID string     `json:"introspection_client_id"`
	IntrospectionSecret   string     `json:"introspection_secret,omitempty"`
	CreatedAt             int64      `json:"created_at"`
	Deleted               bool       `json:"deleted,omitempty"`
}

// APIScope is one of an API's scopes with its descriptions.
type APIScope struct {
	Name        string            `json:"name"`
	Description map[string]string `json:"description"`
}

// APIRoute is a gateway route rule.
type APIRoute struct {
	Method string `json:"method"`
	Prefix string `json:"prefix"`
	Scope  string `json:"scope"`
}

// OfAPI is an API as the admin API and the command line show it.
func OfAPI(v platform.APIView) API {
	out := API{ID: v.ID, Identifier: v.Identifier, Name: v.Name, OwnerID: v.OwnerID, Scopes: []APIScope{}, TokenFormat: v.TokenFormat,
		TokenTTLSeconds: int64(v.TokenTTL / time.Second), Rate: v.Rate, Upstream: v.Upstream, Slug: v.Slug,
		IntrospectionClientID: v.IntrospectionClientID, IntrospectionSecret: v.IntrospectionSecret, CreatedAt: v.CreatedAt.Unix()}
	if out.Rate == 0 {
		out.Rate = platform.DefaultAPIRate
	}
	for _, sc := range v.Scopes {
		if !sc.Removed {
			out.Scopes = append(out.Scopes, APIScope{Name: sc.Name, Description: map[string]string{"en": sc.EN, "ru": sc.RU}})
		}
	}
	for _, r := range v.Routes {
		out.Routes = append(out.Routes, APIRoute(r))
	}
	return out
}

// Factor is a second factor as the admin API shows one.
type Factor struct {
	ID         int64  `json:"id"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	CreatedAt  int64  `json:"created_at"`
	LastUsedAt int64  `json:"last_used_at,omitempty"`
}

// OfFactor is f as the admin API shows it: never its key or secret.
func OfFactor(f storage.Factor) Factor {
	out := Factor{ID: f.ID, Kind: string(f.Kind), Name: f.Name, CreatedAt: f.CreatedAt.Unix()}
	if !f.LastUsedAt.IsZero() {
		out.LastUsedAt = f.LastUsedAt.Unix()
	}
	return out
}
