package platform

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// OldSecretGrace is how long a rotated-out client secret keeps working
// unless it is retired sooner.
const OldSecretGrace = 7 * 24 * time.Hour

// NewApp is what `app create` and the console's "Create app" ask for.
type NewApp struct {
	OwnerID      int64
	Title        string
	Description  string
	Type         storage.AppType
	RedirectURIs []string
	IFrameURL    string
	// IFrameScope: what an iframe app asks for at first launch.
	IFrameScope scope.Mask
	// Auth is how the app authenticates at the token endpoints.
	Auth ClientAuth
}

// ClientAuth is how an app authenticates at the token endpoints: Method
// (token_endpoint_auth_method; "" for its type's default) and, for
// private_key_jwt, its keys: a JWK Set or the https URL of one.
type ClientAuth struct {
	Method, JWKS, JWKSURI string
}

// Validate checks a's rules for an app of type t.
func (a *ClientAuth) Validate(t storage.AppType) error {
	switch a.Method {
	case "", AuthSecretBasic, AuthSecretPost:
	case AuthNone:
		if t != storage.Standalone {
			return invalid("token_endpoint_auth_method", "none is for standalone apps (public clients) only")
		}
	case AuthPrivateKey:
		switch {
		case (a.JWKS == "") == (a.JWKSURI == ""):
			return invalid("jwks", "private_key_jwt needs the client's keys: a JWK Set or a jwks_uri, one of them")
		case a.JWKS != "":
			if len(a.JWKS) > maxKeySet {
				return invalid("jwks", "the key set is larger than 64 KB")
			}
			if _, err := ParseKeySet([]byte(a.JWKS)); err != nil {
				return invalid("jwks", "%s", err.(*ErrBadAssertion).Reason)
			}
		default:
			u, err := url.Parse(a.JWKSURI)
			if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(a.JWKSURI) > 2048 || !validText(a.JWKSURI) {
				return invalid("jwks_uri", "must be an https URL of at most 2048 bytes")
			}
		}
		return nil
	default:
		return invalid("token_endpoint_auth_method", "%q: want client_secret_basic, client_secret_post, private_key_jwt or none", a.Method)
	}
	if a.JWKS != "" || a.JWKSURI != "" {
		return invalid("jwks", "keys are for private_key_jwt only")
	}
	return nil
}

// AppView is an app with its credentials opened, for the console and the CLI.
type AppView struct {
	storage.App
	ClientSecret    string
	OldClientSecret string // empty when there is none
	ServiceToken    string
}

const maxRedirectURIs = 20

// ValidateRedirectURI checks a URI an app registers. Registered URIs are
// matched exactly (RFC 9700 §4.1.3), so they must be absolute, without a
// fragment (RFC 6749 §3.1.2); plain http is allowed only for loopback hosts
// (RFC 8252 §7.3), and custom schemes only for standalone apps (§7.1).
func ValidateRedirectURI(raw string, t storage.AppType) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q carries credentials", raw)
	}
	if strings.Contains(u.Host, "*") {
		return fmt.Errorf("%q: a wildcard is not a host; redirect URIs are matched exactly", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", raw)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%q uses http on a non-loopback host: use https", raw)
		}
	case "javascript", "data", "file", "vbscript", "blob", "about":
		return fmt.Errorf("%q: scheme %s is not allowed", raw, u.Scheme)
	default:
		if t != storage.Standalone {
			return fmt.Errorf("%q: custom schemes are for standalone apps only", raw)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate reports the first problem with a.
func (a *NewApp) Validate() error {
	if n := utf8.RuneCountInString(a.Title); n == 0 || n > 100 || !validText(a.Title) || strings.ContainsAny(a.Title, "\r\n") {
		return invalid("title", "must be 1 to 100 characters of text on one line")
	}
	if utf8.RuneCountInString(a.Description) > 2000 || !validText(a.Description) {
		return invalid("description", "must be at most 2000 characters of text")
	}
	for _, u := range append([]string{a.IFrameURL}, a.RedirectURIs...) {
		if !validText(u) {
			return invalid("URL", "must be text: valid UTF-8 without NUL")
		}
	}
	if !a.Type.Valid() {
		return invalid("type", "%q: want standalone, web or iframe", a.Type)
	}
	if err := validateRedirectURIs(a.RedirectURIs, a.Type); err != nil {
		return err
	}
	if err := a.Auth.Validate(a.Type); err != nil {
		return err
	}
	if a.IFrameScope&^scope.Known(scope.User) != 0 {
		return invalid("iframe scope", "unknown permission bits")
	}
	if a.IFrameScope != 0 && a.Type != storage.IFrame {
		return invalid("iframe scope", "only iframe apps ask for permissions at launch")
	}
	if a.IFrameURL != "" || a.Type == storage.IFrame {
		if a.Type != storage.IFrame {
			return invalid("iframe URL", "only iframe apps have one")
		}
		u, err := url.Parse(a.IFrameURL)
		if a.IFrameURL == "" || err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return invalid("iframe URL", "an iframe app needs an https URL (http only on loopback)")
		}
	}
	return nil
}

func validateRedirectURIs(uris []string, t storage.AppType) error {
	if len(uris) > maxRedirectURIs {
		return invalid("redirect URI", "at most %d", maxRedirectURIs)
	}
	seen := map[string]bool{}
	for _, u := range uris {
		if err := ValidateRedirectURI(u, t); err != nil {
			return invalid("redirect URI", "%v", err)
		}
		if seen[u] {
			return invalid("redirect URI", "%q is listed twice", u)
		}
		seen[u] = true
	}
	return nil
}

// Apps is the one owner of apps: their settings, credentials (client
// secrets, the service token) and who may manage them.
type Apps struct {
	*core
	store storage.Apps
	cache apps
	// out checks back-channel logout URIs by the outbound rules.
	out *Outbound
}

// CreateApp validates a, mints its client secret and service token, and
// stores them.
func (p *Apps) CreateApp(ctx context.Context, actor Actor, a NewApp) (AppView, error) {
	a.Title = strings.TrimSpace(a.Title)
	if err := a.Validate(); err != nil {
		return AppView{}, err
	}
	rec := storage.App{
		OwnerID: a.OwnerID, Title: a.Title, Description: a.Description, Type: a.Type,
		RedirectURIs: a.RedirectURIs, IFrameURL: a.IFrameURL, IFrameScope: a.IFrameScope,
		AuthMethod: a.Auth.Method, JWKS: a.Auth.JWKS, JWKSURI: a.Auth.JWKSURI,
	}
	secret, svc, svcRec := p.credentials(&rec)
	// The app and its service token are stored in one transaction.
	if err := p.store.CreateApp(ctx, &rec, svcRec); err != nil {
		return AppView{}, orNotFound(err, "owner: no user with id %d", a.OwnerID)
	}
	p.issued(token.Service)
	p.audit(ctx, actor, storage.AuditEvent{AppID: rec.ID, Action: storage.AuditAppCreate, Detail: rec.Title})
	return AppView{App: rec, ClientSecret: secret, ServiceToken: svc}, nil
}

// credentials mints a new app's client secret and service token: a's
// sealed fields and creation time are set, and the service token's record
// (for the app's one transaction) returned with both in the clear.
func (p *Apps) credentials(a *storage.App) (secret, svc string, svcRec storage.Token) {
	now := p.now()
	secret = token.NewSecret()
	svc, h := p.Keys.Mint(token.Service)
	a.Secret = storage.ClientSecret{Hash: token.HashOf(secret), Sealed: p.Keys.Seal([]byte(secret)), CreatedAt: now}
	a.ServiceTokenSealed, a.CreatedAt = p.Keys.Seal([]byte(svc)), now
	return secret, svc, p.serviceTokenRecord(0, h, now)
}

func (p *Apps) serviceTokenRecord(appID int64, h token.Hash, now time.Time) storage.Token {
	return storage.Token{Hash: h, Kind: token.Service, AppID: appID, IssuedAt: now, Flow: storage.FlowServiceToken}
}

// LookupApp returns the app's record, credentials sealed: what the OAuth
// endpoints, the widget and the pages that name an app need.
func (p *Apps) LookupApp(ctx context.Context, id int64) (storage.App, error) {
	return p.lookupApp(ctx, id)
}

// App returns the app with its credentials opened. When actor is not the
// CLI, only the app's owner may see it.
func (p *Apps) App(ctx context.Context, actor Actor, id int64) (AppView, error) {
	a, err := p.ownedApp(ctx, actor, id)
	if err != nil {
		return AppView{}, err
	}
	return p.view(a)
}

func (p *Apps) ownedApp(ctx context.Context, actor Actor, id int64) (storage.App, error) {
	a, err := p.store.GetApp(ctx, id)
	if err != nil {
		return a, orNotFound(err, "no app with id %d", id)
	}
	return a, mayManage(actor, a)
}

// mayManage is the rule of who may see and change an app: its owner, and
// the CLI on the server's own machine.
func mayManage(actor Actor, a storage.App) error {
	if !actor.Operator && a.OwnerID != actor.UserID {
		return &Error{Kind: Forbidden, Message: "this app belongs to another developer"}
	}
	return nil
}

// updateApp changes the app in one read-modify-write transaction, after
// checking that actor may manage it; change sees the current record.
func (p *Apps) updateApp(ctx context.Context, actor Actor, id int64, change func(*storage.App) error) (storage.App, error) {
	a, err := p.store.UpdateApp(ctx, id, func(a *storage.App) error {
		if err := mayManage(actor, *a); err != nil {
			return err
		}
		return change(a)
	})
	p.appChanged(id)
	return a, orNotFound(err, "no app with id %d", id)
}

func (p *Apps) view(a storage.App) (AppView, error) {
	v := AppView{App: a}
	secret, err := p.Keys.Open(a.Secret.Sealed)
	if err != nil {
		return v, fmt.Errorf("app %d client secret: %w", a.ID, err)
	}
	v.ClientSecret = string(secret)
	if a.OldSecret != nil {
		old, err := p.Keys.Open(a.OldSecret.Sealed)
		if err != nil {
			return v, fmt.Errorf("app %d old client secret: %w", a.ID, err)
		}
		v.OldClientSecret = string(old)
	}
	if a.ServiceTokenSealed != nil {
		svc, err := p.Keys.Open(a.ServiceTokenSealed)
		if err != nil {
			return v, fmt.Errorf("app %d service token: %w", a.ID, err)
		}
		v.ServiceToken = string(svc)
	}
	return v, nil
}

// RotateSecret makes a new client secret current and keeps the previous one
// valid until RetireSecret or OldSecretGrace, so deployed servers can switch
// without downtime. A secret still in its grace period is replaced.
func (p *Apps) RotateSecret(ctx context.Context, actor Actor, id int64) (AppView, error) {
	now := p.now()
	secret := token.NewSecret()
	var dropped *storage.ClientSecret // a secret still in its grace period ends now
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error {
		dropped = a.OldSecret
		old := a.Secret
		old.ExpiresAt = now.Add(OldSecretGrace)
		a.OldSecret = &old
		a.Secret = storage.ClientSecret{Hash: token.HashOf(secret), Sealed: p.Keys.Seal([]byte(secret)), CreatedAt: now}
		return nil
	})
	if err != nil {
		return AppView{}, err
	}
	if dropped != nil {
		if err := p.revokeMintedWith(ctx, id, dropped.Hash); err != nil {
			return AppView{}, err
		}
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditSecretRotate, Detail: "old secret valid until " + a.OldSecret.ExpiresAt.Format(time.RFC3339)})
	return p.view(a)
}

// RetireSecret ends the rotated-out secret now.
func (p *Apps) RetireSecret(ctx context.Context, actor Actor, id int64) (AppView, error) {
	var retired token.Hash
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error {
		if a.OldSecret == nil {
			return &Error{Kind: Conflict, Message: "there is no old secret to retire: rotate the secret first"}
		}
		retired, a.OldSecret = a.OldSecret.Hash, nil
		return nil
	})
	if err != nil {
		return AppView{}, err
	}
	// Tokens obtained with the retired secret die with it: if it leaked,
	// so may they have.
	if err := p.revokeMintedWith(ctx, id, retired); err != nil {
		return AppView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditSecretRetire})
	return p.view(a)
}

// NewServiceToken mints the app's service token, revoking the previous one
// at once, in one transaction: there is exactly one live service token per
// app.
func (p *Apps) NewServiceToken(ctx context.Context, actor Actor, id int64) (AppView, error) {
	if _, err := p.ownedApp(ctx, actor, id); err != nil {
		return AppView{}, err
	}
	now := p.now()
	svc, h := p.Keys.Mint(token.Service)
	revoked, err := p.store.ReplaceServiceToken(ctx, p.serviceTokenRecord(id, h, now), p.Keys.Seal([]byte(svc)))
	p.appChanged(id)
	if err != nil {
		return AppView{}, orNotFound(err, "no app with id %d", id)
	}
	p.revoked(revoked)
	p.issued(token.Service)
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditServiceTokenNew})
	return p.App(ctx, actor, id)
}

// ProfileFAPI2 holds an app to FAPI 2.0's security profile: pushed
// authorization requests only, PKCE S256, private_key_jwt, DPoP-bound
// tokens, codes of FAPI2CodeTTL at most, and refresh tokens that stay
// bound to their key instead of rotating.
const ProfileFAPI2 = "fapi2"

// FAPI2CodeTTL bounds the life of a FAPI 2.0 app's codes.
const FAPI2CodeTTL = time.Minute

// SetProfile holds the app to a security profile ("" for none).
func (p *Apps) SetProfile(ctx context.Context, actor Actor, id int64, profile string) (AppView, error) {
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error {
		switch profile {
		case "":
		case ProfileFAPI2:
			if a.Type != storage.Web || a.AuthMethod != AuthPrivateKey {
				return invalid("profile", "FAPI 2.0 is for a web app authenticating with private_key_jwt: set its keys first")
			}
		default:
			return invalid("profile", "%q: want fapi2 or nothing", profile)
		}
		a.Profile = profile
		return nil
	})
	if err != nil {
		return AppView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditAppSettings, Detail: "profile " + profile})
	return p.view(a)
}

// SetPostLogoutRedirectURIs sets where the app may send a person after
// signing them out, by the rules of its redirect URIs.
func (p *Apps) SetPostLogoutRedirectURIs(ctx context.Context, actor Actor, id int64, uris []string) (AppView, error) {
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error {
		if err := validateRedirectURIs(uris, a.Type); err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Field = "post_logout_redirect_uri"
			}
			return err
		}
		a.PostLogoutRedirectURIs = uris
		return nil
	})
	if err != nil {
		return AppView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditAppSettings, Detail: "post-logout redirect URIs"})
	return p.view(a)
}

// SetBackchannelLogoutURI sets where the app is told of the end of a
// session that signed in to it ("" for nowhere): an absolute http or https
// URL without a fragment, at an address the server may reach.
func (p *Apps) SetBackchannelLogoutURI(ctx context.Context, actor Actor, id int64, uri string) (AppView, error) {
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error {
		if err := p.checkBackchannelURI(uri); err != nil {
			return err
		}
		a.BackchannelLogoutURI = uri
		return nil
	})
	if err != nil {
		return AppView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditAppSettings, Detail: "back-channel logout URI"})
	return p.view(a)
}

func (p *Apps) checkBackchannelURI(uri string) error {
	if uri == "" {
		return nil
	}
	u, err := url.Parse(uri)
	if err == nil && u.Fragment == "" && p.out != nil {
		err = p.out.CheckURL(uri)
	}
	if err != nil || u.Fragment != "" {
		return invalid("backchannel_logout_uri", "must be an absolute http or https URL without a fragment, at an address the server may reach")
	}
	return nil
}

// SetAuth sets how the app authenticates at the token endpoints.
func (p *Apps) SetAuth(ctx context.Context, actor Actor, id int64, auth ClientAuth) (AppView, error) {
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error {
		if err := auth.Validate(a.Type); err != nil {
			return err
		}
		if a.Profile == ProfileFAPI2 && auth.Method != AuthPrivateKey {
			return invalid("token_endpoint_auth_method", "a FAPI 2.0 app authenticates with private_key_jwt: leave the profile first")
		}
		a.AuthMethod, a.JWKS, a.JWKSURI = auth.Method, auth.JWKS, auth.JWKSURI
		return nil
	})
	if err != nil {
		return AppView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditAppSettings, Detail: "token_endpoint_auth_method " + auth.Method})
	return p.view(a)
}

// SetClientCredentials turns the obsolete client credentials flow on or off.
func (p *Apps) SetClientCredentials(ctx context.Context, actor Actor, id int64, on bool) (AppView, error) {
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error { a.ClientCredentials = on; return nil })
	if err != nil {
		return AppView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: map[bool]storage.AuditAction{true: storage.AuditClientCredsOn, false: storage.AuditClientCredsOff}[on]})
	return p.view(a)
}

// DeleteApp deletes the app; every token of it stops working.
func (p *Apps) DeleteApp(ctx context.Context, actor Actor, id int64) (AppView, error) {
	a, err := p.ownedApp(ctx, actor, id)
	if err != nil {
		return AppView{}, err
	}
	v, err := p.view(a)
	if err != nil {
		return v, err
	}
	hashes, err := p.store.DeleteApp(ctx, id)
	p.appChanged(id)
	if err != nil {
		return v, orNotFound(err, "no app with id %d", id)
	}
	p.revoked(hashes)
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditAppDelete, Detail: a.Title})
	return v, nil
}

// ErrUnknownClient and ErrBadSecret answer a wrong client_id or
// client_secret at the OAuth endpoints, saying which.
var (
	ErrUnknownClient = &Error{Kind: Invalid, Field: "client_id", Message: "client_id is incorrect"}
	ErrBadSecret     = &Error{Kind: Invalid, Field: "client_secret", Message: "client_secret is incorrect"}
)

// AuthenticateClient checks an app's client secret: the current one, or the
// rotated-out one while it is in its grace period, and returns the hash of
// the one that matched. Secrets are random, so a SHA-256 compared in
// constant time is enough: no slow KDF on this path.
func (p *Apps) AuthenticateClient(ctx context.Context, clientID int64, secret string) (storage.App, token.Hash, error) {
	a, err := p.lookupApp(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return a, token.Hash{}, ErrUnknownClient
	}
	if err != nil {
		return a, token.Hash{}, err
	}
	h := token.HashOf(secret)
	if subtle.ConstantTimeCompare(h[:], a.Secret.Hash[:]) == 1 {
		return a, h, nil
	}
	if o := a.OldSecret; o != nil && p.now().Before(o.ExpiresAt) && subtle.ConstantTimeCompare(h[:], o.Hash[:]) == 1 {
		return a, h, nil
	}
	return a, token.Hash{}, ErrBadSecret
}

// revokeMintedWith revokes the client-credentials tokens minted with a
// secret that no longer works.
func (p *Apps) revokeMintedWith(ctx context.Context, appID int64, secret token.Hash) error {
	revoked, err := p.tokens.RevokeTokens(ctx, storage.TokenFilter{AppID: appID, SecretHash: &secret}, storage.RevokedSecret, p.now())
	p.revoked(revoked)
	return err
}

// AppSettings are what the console edits after creation.
type AppSettings struct {
	Title        string
	Description  string
	RedirectURIs []string
	IFrameURL    string
	IFrameScope  scope.Mask
}

// UpdateAppSettings changes the app's title, description, redirect URIs and
// iframe URL, with the rules of creation.
func (p *Apps) UpdateAppSettings(ctx context.Context, actor Actor, id int64, s AppSettings) (AppView, error) {
	a, err := p.updateApp(ctx, actor, id, func(a *storage.App) error {
		check := NewApp{OwnerID: a.OwnerID, Title: strings.TrimSpace(s.Title), Description: s.Description, Type: a.Type,
			RedirectURIs: s.RedirectURIs, IFrameURL: s.IFrameURL, IFrameScope: s.IFrameScope}
		if err := check.Validate(); err != nil {
			return err
		}
		a.Title, a.Description, a.RedirectURIs, a.IFrameURL, a.IFrameScope = check.Title, check.Description, check.RedirectURIs, check.IFrameURL, check.IFrameScope
		return nil
	})
	if err != nil {
		return AppView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: id, Action: storage.AuditAppSettings, Detail: strings.Join(a.RedirectURIs, " ")})
	return p.view(a)
}

// AppsOf lists the apps the user owns.
func (p *Apps) AppsOf(ctx context.Context, ownerID int64) ([]storage.App, error) {
	return p.store.ListApps(ctx, storage.AppFilter{OwnerID: ownerID})
}

// AuditOf returns the app's recent security events, newest first; only its
// owner may see them.
func (p *Apps) AuditOf(ctx context.Context, actor Actor, appID int64, limit int) ([]storage.AuditEvent, error) {
	if _, err := p.ownedApp(ctx, actor, appID); err != nil {
		return nil, err
	}
	return p.auditLog.ListAudit(ctx, storage.AuditFilter{AppID: appID, Limit: limit})
}
