package platform

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"latchkey/internal/protocol"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Registration modes (--registration): off, by initial access token, or
// open to anyone (throttled per address at the edge).
const (
	RegistrationOff   = "off"
	RegistrationToken = "token"
	RegistrationOpen  = "open"
)

// RegistrationTTL is how long a registered app that issues no token lives.
const RegistrationTTL = 30 * 24 * time.Hour

// Token endpoint authentication methods a client may register.
const (
	AuthNone        = "none"
	AuthSecretBasic = "client_secret_basic"
	AuthSecretPost  = "client_secret_post"
	AuthPrivateKey  = "private_key_jwt"
)

// ClientMetadata is a client's metadata (RFC 7591 §2), as registered, stored
// and shown. Fields it does not know are ignored, as §2 asks.
type ClientMetadata struct {
	RedirectURIs            []string        `json:"redirect_uris"`
	ClientName              string          `json:"client_name,omitempty"`
	ClientURI               string          `json:"client_uri,omitempty"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	Scope                   string          `json:"scope,omitempty"`
	SoftwareID              string          `json:"software_id,omitempty"`
	SoftwareVersion         string          `json:"software_version,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	// PostLogoutRedirectURIs are where the client may send a person after
	// signing them out (OpenID Connect RP-Initiated Logout §3.1).
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// BackchannelLogoutURI is where the client hears of a session's end
	// (Back-Channel Logout §2.2); sid is always sent, so
	// backchannel_logout_session_required is true whenever it is set.
	BackchannelLogoutURI             string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required,omitempty"`
}

// RegisteredClient is a registration as its client reads it (RFC 7591
// §3.2.1, RFC 7592 §3): the metadata with the client's credentials.
type RegisteredClient struct {
	ClientMetadata
	ClientID         string `json:"client_id"`
	ClientIDIssuedAt int64  `json:"client_id_issued_at"`
	ClientSecret     string `json:"client_secret,omitempty"`
	// ClientSecretExpiresAt is 0, "never", for a client with a secret.
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	// RegistrationAccessToken is shown when it is made: at registration.
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
}

// ErrRegistrationToken refuses a registration whose initial access token,
// or a management request whose registration access token, is missing,
// unknown, spent, expired or revoked (invalid_token).
var ErrRegistrationToken = &Error{Kind: Forbidden, Message: "the access token is missing, unknown, spent, expired or revoked"}

// Registrations are apps their clients register (RFC 7591) and manage
// (RFC 7592), and the initial access tokens an operator hands out for it.
type Registrations struct {
	*core
	store storage.Registrations
	apps  *Apps
	// ClientURI is where a registered client is managed:
	// registration_client_uri for its client_id.
	ClientURI func(clientID string) string
}

// normalize fills the defaults of RFC 7591 §2 and checks m with the rules
// of apps: the same redirect-URI function as every app and /authorize. It
// returns the kind of app m describes.
func (m *ClientMetadata) normalize() (storage.AppType, error) {
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = AuthSecretBasic
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{protocol.GrantAuthorizationCode}
	}
	if len(m.ResponseTypes) == 0 && slices.Contains(m.GrantTypes, protocol.GrantAuthorizationCode) {
		m.ResponseTypes = []string{protocol.ResponseCode}
	}
	if m.ResponseTypes == nil {
		m.ResponseTypes = []string{}
	}
	if m.RedirectURIs == nil {
		m.RedirectURIs = []string{}
	}
	m.ClientName = strings.TrimSpace(m.ClientName)
	kind := storage.Web
	switch m.TokenEndpointAuthMethod {
	case AuthNone:
		kind = storage.Standalone
	case AuthSecretBasic, AuthSecretPost, AuthPrivateKey:
	default:
		return "", invalid("token_endpoint_auth_method", "%q is not a method this server knows: none, client_secret_basic, client_secret_post or private_key_jwt", m.TokenEndpointAuthMethod)
	}
	if m.JWKS != nil && m.JWKSURI != "" {
		return "", invalid("jwks", "jwks and jwks_uri must not both be present (RFC 7591 §2)")
	}
	auth := m.auth()
	if err := auth.Validate(kind); err != nil {
		return "", err
	}
	for _, g := range m.GrantTypes {
		switch g {
		case protocol.GrantAuthorizationCode, protocol.GrantRefreshToken, protocol.GrantDeviceCode:
		case protocol.GrantClientCredentials:
			if kind == storage.Standalone {
				return "", invalid("grant_types", "client_credentials needs a confidential client, not token_endpoint_auth_method none")
			}
		default:
			return "", invalid("grant_types", "%q is not a grant type this server offers to registered clients", g)
		}
	}
	for _, r := range m.ResponseTypes {
		if r != protocol.ResponseCode {
			return "", invalid("response_types", "%q: registered clients use the code flow (response_types [\"code\"])", r)
		}
	}
	if slices.Contains(m.GrantTypes, protocol.GrantAuthorizationCode) != slices.Contains(m.ResponseTypes, protocol.ResponseCode) {
		return "", invalid("response_types", "the grant type authorization_code and the response type code go together (RFC 7591 §2.1)")
	}
	if slices.Contains(m.GrantTypes, protocol.GrantAuthorizationCode) && len(m.RedirectURIs) == 0 {
		return "", invalid("redirect_uris", "a client of the code flow needs at least one redirect URI")
	}
	for _, u := range m.RedirectURIs {
		if !validText(u) || len(u) > 2000 {
			return "", invalid("redirect_uris", "a redirect URI must be text of at most 2000 bytes")
		}
	}
	if err := validateRedirectURIs(m.RedirectURIs, kind); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Field = "redirect_uris"
		}
		return "", err
	}
	if err := validateRedirectURIs(m.PostLogoutRedirectURIs, kind); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Field = "post_logout_redirect_uris"
		}
		return "", err
	}
	if n := utf8.RuneCountInString(m.ClientName); n > 100 || !validText(m.ClientName) || strings.ContainsAny(m.ClientName, "\r\n") {
		return "", invalid("client_name", "must be at most 100 characters of text on one line")
	}
	if m.ClientURI != "" {
		u, err := url.Parse(m.ClientURI)
		if err != nil || len(m.ClientURI) > 2000 || !validText(m.ClientURI) || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return "", invalid("client_uri", "must be an https URL of at most 2000 bytes")
		}
	}
	for field, v := range map[string]string{"scope": m.Scope, "software_id": m.SoftwareID, "software_version": m.SoftwareVersion} {
		if len(v) > 1000 || !validText(v) {
			return "", invalid(field, "must be text of at most 1000 bytes")
		}
	}
	return kind, nil
}

// auth is how the client authenticates, as an app's settings.
func (m *ClientMetadata) auth() ClientAuth {
	a := ClientAuth{Method: m.TokenEndpointAuthMethod, JWKSURI: m.JWKSURI}
	if m.JWKS != nil {
		a.JWKS = string(m.JWKS)
	}
	return a
}

// applyTo sets the app's fields that the metadata describes.
func (m *ClientMetadata) applyTo(a *storage.App) {
	a.Title, a.Description, a.RedirectURIs = m.title(), m.ClientURI, m.RedirectURIs
	auth := m.auth()
	a.AuthMethod, a.JWKS, a.JWKSURI = auth.Method, auth.JWKS, auth.JWKSURI
	a.PostLogoutRedirectURIs, a.BackchannelLogoutURI = m.PostLogoutRedirectURIs, m.BackchannelLogoutURI
	a.ClientCredentials = slices.Contains(m.GrantTypes, protocol.GrantClientCredentials)
}

// title is the app's name: the client's, or its first redirect URI's host.
func (m *ClientMetadata) title() string {
	if m.ClientName != "" {
		return m.ClientName
	}
	if len(m.RedirectURIs) > 0 {
		if u, err := url.Parse(m.RedirectURIs[0]); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return "Registered client"
}

// Register registers a client: initial is the initial access token
// (needed when required is set), address the client's. The answer carries
// the client secret (for a confidential client) and the registration
// access token, shown only now.
func (s *Registrations) Register(ctx context.Context, m ClientMetadata, initial string, required bool, address string) (RegisteredClient, error) {
	var initialHash token.Hash
	if required {
		if initial == "" {
			return RegisteredClient{}, ErrRegistrationToken
		}
		initialHash = token.HashOf(initial)
	}
	kind, err := m.normalize()
	if err == nil {
		err = s.apps.checkBackchannelURI(m.BackchannelLogoutURI)
		m.BackchannelLogoutSessionRequired = m.BackchannelLogoutURI != ""
	}
	if err != nil {
		return RegisteredClient{}, err
	}
	stored, err := json.Marshal(m)
	if err != nil {
		return RegisteredClient{}, err
	}
	app := storage.App{Type: kind}
	m.applyTo(&app)
	_, _, svcRec := s.apps.credentials(&app)
	now := app.CreatedAt
	access := token.NewSecret()
	reg := storage.Registration{AccessHash: token.HashOf(access), Metadata: stored, Address: address, CreatedAt: now}
	err = s.store.Register(ctx, &app, svcRec, &reg, initialHash, now)
	if errors.Is(err, storage.ErrNotFound) {
		return RegisteredClient{}, ErrRegistrationToken
	}
	if err != nil {
		return RegisteredClient{}, err
	}
	s.issued(token.Service)
	s.audit(ctx, Actor{IP: address}, storage.AuditEvent{AppID: app.ID, Action: storage.AuditAppCreate, Detail: app.Title + " (registered by its client)"})
	out := s.answer(app, m)
	out.RegistrationAccessToken = access
	return out, nil
}

func (s *Registrations) answer(app storage.App, m ClientMetadata) RegisteredClient {
	id := itoa(app.ID)
	out := RegisteredClient{ClientMetadata: m, ClientID: id, ClientIDIssuedAt: app.CreatedAt.Unix(), RegistrationClientURI: s.ClientURI(id)}
	if app.Type != storage.Standalone && app.AuthMethod != AuthPrivateKey {
		if secret, err := s.Keys.Open(app.Secret.Sealed); err == nil {
			never := int64(0)
			out.ClientSecret, out.ClientSecretExpiresAt = string(secret), &never
		}
	}
	return out
}

// registration is clientID's registration when access is its registration
// access token; ErrRegistrationToken otherwise (for a client that does not
// exist too: the answer does not tell them apart).
func (s *Registrations) registration(ctx context.Context, clientID int64, access string) (storage.Registration, error) {
	r, err := s.store.GetRegistration(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return r, ErrRegistrationToken
	}
	if err != nil {
		return r, err
	}
	h := token.HashOf(access)
	if access == "" || subtle.ConstantTimeCompare(h[:], r.AccessHash[:]) != 1 {
		return r, ErrRegistrationToken
	}
	return r, nil
}

// Read is the client's registration (RFC 7592 §2.1).
func (s *Registrations) Read(ctx context.Context, clientID int64, access string) (RegisteredClient, error) {
	r, err := s.registration(ctx, clientID, access)
	if err != nil {
		return RegisteredClient{}, err
	}
	app, err := s.apps.lookupApp(ctx, clientID)
	if err != nil {
		return RegisteredClient{}, err
	}
	var m ClientMetadata
	if err := json.Unmarshal(r.Metadata, &m); err != nil {
		return RegisteredClient{}, err
	}
	return s.answer(app, m), nil
}

// Replace replaces the client's metadata (RFC 7592 §2.2). Its
// authentication method stays what it registered with.
func (s *Registrations) Replace(ctx context.Context, clientID int64, access string, m ClientMetadata) (RegisteredClient, error) {
	if _, err := s.registration(ctx, clientID, access); err != nil {
		return RegisteredClient{}, err
	}
	kind, err := m.normalize()
	if err == nil {
		err = s.apps.checkBackchannelURI(m.BackchannelLogoutURI)
		m.BackchannelLogoutSessionRequired = m.BackchannelLogoutURI != ""
	}
	if err != nil {
		return RegisteredClient{}, err
	}
	stored, err := json.Marshal(m)
	if err != nil {
		return RegisteredClient{}, err
	}
	app, _, err := s.store.UpdateRegistration(ctx, clientID, func(a *storage.App, r *storage.Registration) error {
		h := token.HashOf(access)
		if subtle.ConstantTimeCompare(h[:], r.AccessHash[:]) != 1 {
			return ErrRegistrationToken // replaced meanwhile
		}
		if kind != a.Type || (m.TokenEndpointAuthMethod == AuthPrivateKey) != (a.AuthMethod == AuthPrivateKey) {
			return invalid("token_endpoint_auth_method", "a registered client keeps its authentication method: register anew to change it")
		}
		m.applyTo(a)
		r.Metadata = stored
		return nil
	})
	s.apps.appChanged(clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return RegisteredClient{}, ErrRegistrationToken
	}
	if err != nil {
		return RegisteredClient{}, err
	}
	s.audit(ctx, Actor{}, storage.AuditEvent{AppID: clientID, Action: storage.AuditAppSettings, Detail: "registration replaced by its client"})
	return s.answer(app, m), nil
}

// Delete deletes the client (RFC 7592 §2.3): every token of it is revoked.
func (s *Registrations) Delete(ctx context.Context, clientID int64, access string) error {
	if _, err := s.registration(ctx, clientID, access); err != nil {
		return err
	}
	hashes, err := s.apps.store.DeleteApp(ctx, clientID)
	s.apps.appChanged(clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrRegistrationToken
	}
	if err != nil {
		return err
	}
	s.revoked(hashes)
	s.audit(ctx, Actor{}, storage.AuditEvent{AppID: clientID, Action: storage.AuditAppDelete, Detail: "deleted by its client"})
	return nil
}

// Expire deletes the apps owned by no one (registered, or standing for a
// client metadata document) that have issued no token in RegistrationTTL,
// at most limit of them; it says how many.
func (s *Registrations) Expire(ctx context.Context, limit int) (int, error) {
	hashes, n, err := s.store.ExpireRegistrations(ctx, s.now().Add(-RegistrationTTL), limit)
	s.revoked(hashes)
	if n > 0 {
		s.Log.InfoContext(ctx, "registered and document clients that issued no token in 30 days deleted", "apps", n)
	}
	return n, err
}

// NewRegistrationToken is an initial access token as created: the token,
// shown only now, and its record.
type NewRegistrationToken struct {
	Token string
	storage.RegistrationToken
}

// CreateToken makes an initial access token named name, valid for ttl (0:
// forever) and maxUses registrations (0: any number).
func (s *Registrations) CreateToken(ctx context.Context, actor Actor, name string, ttl time.Duration, maxUses int) (NewRegistrationToken, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 100 || !validText(name) {
		return NewRegistrationToken{}, invalid("name", "must be 1 to 100 characters of text")
	}
	if ttl < 0 || maxUses < 0 {
		return NewRegistrationToken{}, invalid("ttl", "the lifetime and the number of uses cannot be negative")
	}
	now := s.now()
	raw := token.NewSecret() + token.NewSecret()
	t := storage.RegistrationToken{Name: name, Hash: token.HashOf(raw), MaxUses: maxUses, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := s.store.CreateRegistrationToken(ctx, &t); err != nil {
		return NewRegistrationToken{}, err
	}
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditRegistrationTokenNew, Detail: name})
	return NewRegistrationToken{Token: raw, RegistrationToken: t}, nil
}

// Tokens lists the initial access tokens.
func (s *Registrations) Tokens(ctx context.Context) ([]storage.RegistrationToken, error) {
	return s.store.ListRegistrationTokens(ctx)
}

// RevokeToken revokes an initial access token.
func (s *Registrations) RevokeToken(ctx context.Context, actor Actor, id int64) error {
	if err := s.store.RevokeRegistrationToken(ctx, id, s.now()); err != nil {
		return orNotFound(err, "no live registration token with id %d", id)
	}
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditRegistrationTokenGone, Detail: itoa(id)})
	return nil
}
