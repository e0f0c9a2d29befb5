// Package storage defines Latchkey's records and the Storage interface every
// backend implements. Backends translate driver errors into ErrNotFound and
// ErrConflict once, so nothing above this layer looks at driver errors.
//
// The conformance suite in storagetest runs the same behaviours against every
// backend.
package storage

import (
	"context"
	"errors"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/token"
)

var (
	// ErrNotFound: the record, or a record it refers to, does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: the write would break a uniqueness rule (a taken login, a
	// code used twice, the last admin of a community removed).
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable: the storage cannot be reached now (connection refused
	// or lost, server shutting down); the same call may work later.
	ErrUnavailable = errors.New("storage: unavailable")
	// ErrUserDisabled: a token or refresh token was not stored because the
	// user it speaks for is disabled. The check and the insert are one
	// statement, so a token stored while the user is being disabled is
	// either refused or stored before the disable, and then revoked by it.
	ErrUserDisabled = errors.New("storage: the user is disabled")
	// ErrGrantRevoked: a token or refresh token was not stored because the
	// grant it belongs to (its CodeHash, a refresh token's Family) was
	// revoked (RevokeGrant), in the same way.
	ErrGrantRevoked = errors.New("storage: the grant was revoked")
)

// User is a person who signs in.
type User struct {
	ID           int64
	Login        string
	PasswordHash string
	FirstName    string
	LastName     string
	Email        string
	CreatedAt    time.Time
	// SessionsAfter ends every browser session issued before it (logout).
	SessionsAfter time.Time
	// DisabledAt is when an operator disabled the account (zero: never).
	DisabledAt time.Time
	// RequireMFA: this person must sign in with a second factor.
	RequireMFA bool
}

// SessionLifetime is how long a browser session lasts at most.
const SessionLifetime = 30 * 24 * time.Hour

// Session is a person signed in on one browser. The cookie holds a secret
// whose SHA-256 is Hash; SID is the session's id as apps see it.
type Session struct {
	ID     int64
	Hash   token.Hash
	UserID int64
	SID    string
	// AuthTime and AMR are when and how the person last proved who they
	// are in this session (the login, or a later step-up).
	AuthTime time.Time
	AMR      []string
	// Device is the browser's User-Agent, cut short; Address the client's
	// address at its last use.
	Device     string
	Address    string
	CreatedAt  time.Time
	LastSeenAt time.Time
	EndedAt    time.Time
}

// UpstreamKind is a kind of upstream identity provider.
type UpstreamKind string

// The upstreams people sign in through.
const (
	UpstreamOIDC UpstreamKind = "oidc" // an OpenID Provider
	UpstreamLDAP UpstreamKind = "ldap" // an LDAP directory
)

// Upstream is an identity provider people sign in through. Config is its
// settings (JSON, the platform's); SecretSealed its client secret or bind
// password, sealed.
type Upstream struct {
	ID           int64
	Name         string
	Kind         UpstreamKind
	Config       []byte
	SecretSealed []byte
	CreatedAt    time.Time
}

// UserLink links a local user to a person of an upstream.
type UserLink struct {
	UpstreamID int64
	Subject    string
	UserID     int64
	CreatedAt  time.Time
}

// FactorKind is a kind of second factor.
type FactorKind string

// The second factors.
const (
	FactorPasskey FactorKind = "passkey" // a WebAuthn credential
	FactorTOTP    FactorKind = "totp"    // an authenticator app (RFC 6238)
)

// Factor is one of a person's second factors.
type Factor struct {
	ID     int64
	UserID int64
	Kind   FactorKind
	Name   string
	// CredentialID is a passkey's WebAuthn credential id; an authenticator
	// app's is "totp:<user id>", so that a person has at most one.
	CredentialID []byte
	// Data is a passkey's credential (public key, sign counter, backup
	// flags; JSON) or an authenticator app's secret, sealed.
	Data []byte
	// Step is the last time step an authenticator app's code was accepted
	// for: each code is accepted once.
	Step       int64
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// CommunityEvent is an event of a community's bots (vk-wire.md §7):
// Seq numbers the community's events and never goes back.
type CommunityEvent struct {
	CommunityID int64
	Seq         int64
	Type        string
	// Object is the event's object, JSON.
	Object    string
	CreatedAt time.Time
}

// DefaultLongPollVersion is the API version of a community's Long Poll
// and Callback API events until its admins choose another.
const DefaultLongPollVersion = "5.199"

// LongPollSettings are a community's Bots Long Poll settings.
type LongPollSettings struct {
	CommunityID int64
	Enabled     bool
	APIVersion  string
	// Events are the event types delivered.
	Events []string
}

// CallbackServer is a community's Callback API server.
type CallbackServer struct {
	ID           int64
	CommunityID  int64
	URL          string
	Title        string
	SecretSealed []byte // the secret_key, sealed: events carry it
	CreatorID    int64
	// Status is CallbackUnconfirmed until the server answers the
	// confirmation with the community's code, then CallbackOK; CallbackFailed
	// when it never did.
	Status     string
	APIVersion string
	Events     []string
	CreatedAt  time.Time
}

// The states of a callback server and of a delivery.
const (
	CallbackUnconfirmed = "unconfirmed"
	CallbackOK          = "ok"
	CallbackFailed      = "failed"
	DeliveryPending     = "pending"
)

// Delivery is one POST the Callback API owes a server: the confirmation
// (Type "confirmation", Seq 0) or the event Seq of its community.
type Delivery struct {
	ID int64
	// ServerID is the community's server a Callback API delivery goes to
	// (CommunityID's event Seq); AppID the app a back-channel logout
	// delivery (Type "logout", its logout token the Payload) goes to, at URL.
	ServerID    int64
	AppID       int64
	CommunityID int64
	Seq         int64
	Type        string
	URL         string
	Payload     string
	Status      string // DeliveryPending, CallbackOK (delivered) or CallbackFailed
	Attempts    int
	NextAt      time.Time
	LastError   string
	UpdatedAt   time.Time
}

// AdminToken is a credential of the admin API, stored hashed.
type AdminToken struct {
	Name      string
	Hash      token.Hash
	CreatedAt time.Time
}

// AppType is how an app is run: on the user's device, on a web server, or in
// an iframe inside the platform.
type AppType string

const (
	Standalone AppType = "standalone"
	Web        AppType = "web"
	IFrame     AppType = "iframe"
)

// Valid reports whether t is one of the three app types.
func (t AppType) Valid() bool { return t == Standalone || t == Web || t == IFrame }

// ClientSecret is an app's "secure key": hashed for checking, sealed for
// showing again in the console.
type ClientSecret struct {
	Hash      token.Hash
	Sealed    []byte
	CreatedAt time.Time
	// ExpiresAt is when a rotated-out secret stops working; zero for the
	// current secret.
	ExpiresAt time.Time
}

// App is a third-party application.
type App struct {
	ID           int64
	OwnerID      int64
	Title        string
	Description  string
	Type         AppType
	RedirectURIs []string
	IFrameURL    string
	// IFrameScope is what an iframe app asks for when a user first opens it.
	IFrameScope scope.Mask
	Secret      ClientSecret
	// OldSecret is the secret replaced by the last rotation, still accepted
	// until it is retired or expires; nil when there is none.
	OldSecret *ClientSecret
	// ServiceTokenSealed is the live service token, sealed.
	ServiceTokenSealed []byte
	ClientCredentials  bool
	CreatedAt          time.Time
	// AuthMethod is how the app authenticates at the token endpoints
	// (token_endpoint_auth_method; "" for its type's default: a secret,
	// or none for a standalone app); JWKS (a JWK Set) or JWKSURI holds its
	// keys for private_key_jwt.
	AuthMethod    string
	JWKS, JWKSURI string
	// BackchannelLogoutURI is where the app is told of the end of a
	// session that signed in to it ("" for nowhere).
	BackchannelLogoutURI string
	// PostLogoutRedirectURIs are where the app may send a person after
	// signing them out (RP-Initiated Logout), matched exactly.
	PostLogoutRedirectURIs []string
	// Profile is the security profile the app is held to: "" or "fapi2".
	Profile string
}

// Community is a group, event or public page.
type Community struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Consent is what a user granted an app, remembered so that a later request
// for a subset skips the dialog.
type Consent struct {
	UserID int64
	AppID  int64
	// APIID is the API consented to (0: the built-in API); Scope is then
	// a mask of its scopes.
	APIID     int64
	Scope     scope.Mask
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Code is an authorization code: one use, short-lived.
type Code struct {
	Hash token.Hash
	// AppID, UserID: the app it was issued to and the user who approved.
	AppID  int64
	UserID int64
	// CommunityIDs is set when the code is for community tokens.
	CommunityIDs        []int64
	Scope               scope.Mask
	RedirectURI         string
	CodeChallenge       string
	CodeChallengeMethod string
	IP                  string
	// Nonce is OpenID Connect's, echoed in the id_token.
	Nonce string
	// DeviceID is the VK ID device the code was issued to ("" for none).
	DeviceID string
	// APIID is the API the code's tokens are for (0: the built-in API),
	// Scope then a mask of its scopes; Claims are the OpenID Connect
	// scopes asked beside them (bits of the built-in mask).
	APIID     int64
	Claims    scope.Mask
	IssuedAt  time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
	// Authn is the sign-in that approved the code.
	Authn
}

// Authn is what a sign-in proved, carried from the browser session through
// codes and refresh tokens into id_tokens: when the person last
// authenticated, by which methods (RFC 8176 amr values), and the session's
// id as apps see it (OpenID Connect's sid). Zero when not known.
type Authn struct {
	AuthTime time.Time
	AMR      []string
	SID      string
}

// DeviceStatus is where a device authorization stands.
type DeviceStatus string

// The statuses of a device code.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	DeviceUsed     DeviceStatus = "used" // its tokens were issued
)

// DeviceCode is a device authorization (RFC 8628).
type DeviceCode struct {
	Hash token.Hash
	// UserCode is the hash of the normalized user code.
	UserCode   token.Hash
	AppID      int64
	Scope      scope.Mask
	Status     DeviceStatus
	UserID     int64 // who approved or denied
	Interval   time.Duration
	LastPollAt time.Time
	IssuedAt   time.Time
	ExpiresAt  time.Time
	// APIID and Claims: the API asked for and the OpenID Connect scopes
	// beside its own (as Code's).
	APIID  int64
	Claims scope.Mask
}

// SigningKey is a key id_tokens are signed with, its private part sealed.
type SigningKey struct {
	KID       string
	Algorithm string
	Sealed    []byte
	CreatedAt time.Time
	// RetiredAt is when it left the JWKS; zero while it is published.
	RetiredAt time.Time
}

// Flow names how a token was issued.
type Flow string

const (
	FlowImplicit          Flow = "implicit"
	FlowCode              Flow = "code"
	FlowConsole           Flow = "console"
	FlowServiceToken      Flow = "service"
	FlowClientCredentials Flow = "client_credentials"
	FlowIFrame            Flow = "iframe"
	FlowRefresh           Flow = "refresh"
	FlowDevice            Flow = "device"
	FlowExchange          Flow = "token_exchange"
)

// Token is the at-rest record of an access token.
type Token struct {
	Hash token.Hash
	Kind token.Kind
	// AppID is the app it was issued to; zero for a community token created
	// on the community's page for no app.
	AppID int64
	// UserID is the user a user token speaks for, or the admin who granted a
	// community token; zero for service tokens.
	UserID      int64
	CommunityID int64
	Scope       scope.Mask
	IssuedAt    time.Time
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time
	IP        string
	Flow      Flow
	// CodeHash is the authorization code the token came from, if any.
	CodeHash *token.Hash
	// SecretHash is the client secret a client-credentials token was
	// minted with: retiring that secret revokes the token.
	SecretHash *token.Hash
	RevokedAt  time.Time
	// RevokeReason says why it was revoked.
	RevokeReason RevokeReason
	// LastUsedAt is when the API last accepted it, to the minute (tracked
	// for community tokens).
	LastUsedAt time.Time
	// JKT is the thumbprint of the key a DPoP-bound token is bound to
	// (RFC 9449); "" for a bearer token.
	JKT string
	// Sealed, set at creation, keeps the token sealed under the server
	// secret so that it can be handed out again (iframe launches reuse a
	// live token). Only ReusableToken reads it back.
	Sealed []byte
	// Parent is the token this one was exchanged from (RFC 8693), so that
	// revoking it revokes this one. Stored, not read back: TokenFilter's
	// DerivedFrom follows it.
	Parent *token.Hash
	// APIID is the API the token is for (its audience); 0 for the built-in
	// API. Scope is then a mask of that API's scopes (APIScope.Bit).
	APIID int64
}

// API is a resource server registered in Latchkey: apps get tokens whose
// audience is its Identifier.
type API struct {
	ID int64
	// Identifier is the RFC 8707 resource value and the tokens' aud.
	Identifier string
	Name       string
	OwnerID    int64
	// Scopes are the API's scopes, each at a bit of the tokens' mask that
	// it keeps for life (a removed scope's bit is never given to another).
	Scopes []APIScope
	// TokenFormat is TokenOpaque or TokenJWT.
	TokenFormat string
	TokenTTL    time.Duration
	// Rate is the per-token limit at the gateway, requests a second (0:
	// the default).
	Rate int64
	// Upstream, Slug and Routes are the gateway's, set by operators only.
	Upstream string
	Slug     string
	Routes   []APIRoute
	// SecretHash is the hash of the introspection secret.
	SecretHash token.Hash
	CreatedAt  time.Time
}

// The formats of an API's access tokens.
const (
	TokenOpaque = "opaque"
	TokenJWT    = "jwt"
)

// APIScope is one scope of an API.
type APIScope struct {
	Name string `json:"name"`
	// Bit is its bit in a token's scope mask.
	Bit int `json:"bit"`
	// EN and RU describe it in the consent dialog.
	EN string `json:"en"`
	RU string `json:"ru"`
	// Removed: no longer offered; its bit stays reserved.
	Removed bool `json:"removed,omitempty"`
}

// APIRoute is a gateway route rule: requests with Method ("*" for any) to
// paths under Prefix need Scope (the longest prefix wins).
type APIRoute struct {
	Method string `json:"method"`
	Prefix string `json:"prefix"`
	Scope  string `json:"scope"`
}

// UnixSeconds is how storage keeps a time: Unix seconds, 0 for none.
// FromUnixSeconds reads it back, in UTC. Whatever holds a record in this
// form (a backend, the token cache) converts with these two.
func UnixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// FromUnixSeconds is the time UnixSeconds kept: zero for 0.
func FromUnixSeconds(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// RevokeReason says why a token was revoked. The API tells a user's "remove
// access" apart from other revocations (vk-wire.md §4, error 5).
type RevokeReason string

// The reasons, as stored.
const (
	RevokedByUser     RevokeReason = "user"        // the user removed the app's access
	RevokedByApp      RevokeReason = "app"         // the app revoked it (RFC 7009)
	RevokedReplaced   RevokeReason = "replaced"    // a new service token was generated
	RevokedCodeReplay RevokeReason = "code_replay" // its authorization code was used again
	RevokedByAdmin    RevokeReason = "admin"       // a community admin revoked it
	RevokedSecret     RevokeReason = "secret"      // the client secret it was minted with was retired
	// RevokedRefreshReuse: a spent refresh token of its grant was used again.
	RevokedRefreshReuse RevokeReason = "refresh_reuse"
	RevokedLogout       RevokeReason = "logout"      // the user signed out of the app (VK ID /oauth2/logout)
	RevokedAPIDeleted   RevokeReason = "api_deleted" // the API it was for was deleted
)

// Expired reports whether the token has expired at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// AppFilter selects apps: each field set narrows the list.
type AppFilter struct {
	OwnerID int64
	// Registered lists only the apps their clients registered (owned by
	// no one).
	Type       AppType
	Registered bool
	// After lists the apps with ids above it (a page's last).
	After int64
	// Limit bounds the list (0: no bound).
	Limit int
}

// TokenFilter selects tokens; zero fields match anything. At least one field
// must be set.
type TokenFilter struct {
	Hash        *token.Hash
	Kind        token.Kind
	AppID       int64
	UserID      int64
	CommunityID int64
	CodeHash    *token.Hash
	SecretHash  *token.Hash
	// DerivedFrom matches the tokens exchanged from this one, and those
	// exchanged from them, at any depth (not the token itself).
	DerivedFrom *token.Hash
	Flow        Flow
	// APIID matches the tokens for that API.
	APIID int64
	// LiveOnly leaves out revoked tokens.
	LiveOnly bool
	// Limit bounds what ListTokens returns, newest first (0: no bound).
	Limit int
}

// RefreshToken is the at-rest record of a refresh token: one use, then
// replaced by the next of its family.
type RefreshToken struct {
	Hash token.Hash
	// Family is the grant the token belongs to: the hash of the code the
	// grant began with, which its access tokens carry as CodeHash.
	Family token.Hash
	AppID  int64
	UserID int64
	Scope  scope.Mask
	// Authn is the sign-in the grant began with, for id_tokens.
	Authn
	Nonce    string
	IssuedAt time.Time
	// ExpiresAt: refresh tokens always expire.
	ExpiresAt time.Time
	// UsedAt is when it was spent (exchanged for the next pair).
	UsedAt    time.Time
	RevokedAt time.Time
	// Holder is who may present it: the DPoP key and VK ID device it is
	// bound to.
	Holder
	// APIID and Claims are the code's (Code.APIID, Code.Claims).
	APIID  int64
	Claims scope.Mask
}

// Holder is what a refresh token is bound to: a DPoP key's thumbprint and a
// VK ID device_id, each "" for none.
type Holder struct {
	JKT      string
	DeviceID string
}

// Notification is a message an app sent to a user (secure.sendNotification).
type Notification struct {
	ID        int64
	AppID     int64
	UserID    int64
	Message   string
	CreatedAt time.Time
	ReadAt    time.Time
}

// AppEvent is a game or app activity (secure.addAppEvent).
type AppEvent struct {
	ID         int64
	AppID      int64
	UserID     int64
	ActivityID int64
	Value      int64
	CreatedAt  time.Time
}

// Message is sent by a user or a community (messages.send) to a peer.
type Message struct {
	ID              int64
	AppID           int64
	FromUserID      int64
	FromCommunityID int64
	PeerID          int64
	Text            string
	// RandomID deduplicates: a second message from the same sender with the
	// same non-zero RandomID is the first one.
	RandomID  int64
	CreatedAt time.Time
	ReadAt    time.Time
	// Duplicate is set by CreateMessage when the message was sent before
	// (the same sender and RandomID): m is then that first message.
	Duplicate bool
}

// AuditEvent records a security-relevant action: who, what, when, from where.
type AuditEvent struct {
	ID          int64
	At          time.Time
	ActorUserID int64
	AppID       int64
	CommunityID int64
	Action      AuditAction
	IP          string
	Detail      string
}

// AuditAction is what an audit event records. Labels for people are looked
// up from these constants (internal/web), never keyed on strings.
type AuditAction string

// The actions, as stored.
const (
	AuditAppCreate          AuditAction = "app.create"
	AuditAppSettings        AuditAction = "app.settings"
	AuditAppDelete          AuditAction = "app.delete"
	AuditSecretRotate       AuditAction = "secret.rotate"
	AuditSecretRetire       AuditAction = "secret.retire"
	AuditServiceTokenNew    AuditAction = "service_token.new"
	AuditClientCredsOn      AuditAction = "client_credentials.on"
	AuditClientCredsOff     AuditAction = "client_credentials.off"
	AuditTokenRevoke        AuditAction = "token.revoke"
	AuditCodeReplay         AuditAction = "code.replay"
	AuditRefreshReuse       AuditAction = "refresh.reuse"
	AuditKeyRotate          AuditAction = "signing_key.rotate"
	AuditTokenExchange      AuditAction = "token.exchange"
	AuditKeyRetire          AuditAction = "signing_key.retire"
	AuditAccessRemoved      AuditAction = "app.access_removed"
	AuditCommunityCreate    AuditAction = "community.create"
	AuditAdminAdd           AuditAction = "community.admin_add"
	AuditAdminRemove        AuditAction = "community.admin_remove"
	AuditCommunityTokenNew  AuditAction = "community.token_create"
	AuditCommunityTokenGone AuditAction = "community.token_revoke"
	AuditAdminTokenNew      AuditAction = "admin.token_create"
	AuditAdminTokenGone     AuditAction = "admin.token_revoke"
	AuditUserDisabled       AuditAction = "user.disable"
	AuditPasswordSet        AuditAction = "user.password_set"
	AuditAPICreate          AuditAction = "api.create"
	AuditAPIChange          AuditAction = "api.settings"
	AuditAPISecret          AuditAction = "api.secret_rotate"
	AuditAPIDelete          AuditAction = "api.delete"
	// AuditRegistrationTokenNew and Gone: initial access tokens of
	// registration (RFC 7591 §3) created and revoked.
	AuditRegistrationTokenNew  AuditAction = "registration_token.create"
	AuditRegistrationTokenGone AuditAction = "registration_token.revoke"
	// Second factors: added, removed (by their owner, or all of them by
	// an operator), used to sign in; recovery codes made and used.
	AuditFactorAdd       AuditAction = "factor.add"
	AuditFactorRemove    AuditAction = "factor.remove"
	AuditFactorUse       AuditAction = "factor.use"
	AuditFactorsReset    AuditAction = "factor.reset"
	AuditRecoveryCodes   AuditAction = "recovery_codes.create"
	AuditRecoveryCodeUse AuditAction = "recovery_code.use"
	AuditRequireMFA      AuditAction = "user.require_mfa"
	AuditSessionEnd      AuditAction = "session.end"
	// Upstreams added and removed, users made from their people, links.
	AuditUpstreamAdd    AuditAction = "upstream.add"
	AuditUpstreamRemove AuditAction = "upstream.remove"
	AuditUpstreamUser   AuditAction = "upstream.user_create"
	AuditUpstreamLink   AuditAction = "upstream.link"
	AuditUpstreamUnlink AuditAction = "upstream.unlink"
)

// AuditFilter selects audit events; zero fields match anything.
type AuditFilter struct {
	AppID       int64
	CommunityID int64
	Limit       int
}

// Storage is everything Latchkey keeps, by concern. A backend implements it
// all; a consumer holds the concerns it uses. Methods that create a record
// set its ID. Every method is safe for concurrent use.
type Storage interface {
	Users
	Apps
	APIs
	Communities
	Consents
	Grants
	Tokens
	Credentials
	Messages
	Bots
	Callbacks
	Registrations
	Sessions
	Factors
	Upstreams
	Audit
	Cluster
	Upkeep
}

// Users are the people who sign in, and their browser sessions.
type Users interface {
	CreateUser(ctx context.Context, u *User) error // ErrConflict: login taken
	GetUser(ctx context.Context, id int64) (User, error)
	GetUserByLogin(ctx context.Context, login string) (User, error)
	// GetUsers returns the users that exist among ids, in the order of ids.
	GetUsers(ctx context.Context, ids []int64) ([]User, error)
	// ListUsers lists up to limit users with ids above afterID, by id.
	ListUsers(ctx context.Context, afterID int64, limit int) ([]User, error)
	// UpdateUserName changes a user's first and last name.
	UpdateUserName(ctx context.Context, id int64, first, last string) error
	// SetPassword replaces the password hash and ends the sessions issued
	// before sessionsAfter; ErrNotFound for no such user.
	SetPassword(ctx context.Context, id int64, hash string, sessionsAfter time.Time) error
	// DisableUser marks the user disabled at at and ends their sessions.
	DisableUser(ctx context.Context, id int64, at time.Time) error
	// EndSessions logs the user out of every browser session issued before
	// at, and ends their recorded sessions.
	EndSessions(ctx context.Context, userID int64, at time.Time) error
	// SetRequireMFA sets whether the user must sign in with a second factor.
	SetRequireMFA(ctx context.Context, userID int64, on bool) error
}

// Sessions are the recorded browser sessions. SetPassword, DisableUser
// and EndSessions end a user's sessions too.
type Sessions interface {
	// CreateSession stores s and sets its ID.
	CreateSession(ctx context.Context, s *Session) error
	// SessionUser returns the session whose cookie secret hashes to hash,
	// ended or not, with its user.
	SessionUser(ctx context.Context, hash token.Hash) (Session, User, error)
	// TouchSession records a use of the session at at, from address.
	TouchSession(ctx context.Context, id int64, at time.Time, address string) error
	// RaiseSession records a new proof of who the person is in a live
	// session: its time and methods. ErrNotFound: no such live session.
	RaiseSession(ctx context.Context, id int64, authTime time.Time, amr []string) error
	// ListSessions lists the user's live sessions, the last used first.
	ListSessions(ctx context.Context, userID int64) ([]Session, error)
	// EndSession ends the user's live session id. ErrNotFound: no such live
	// session of theirs.
	EndSession(ctx context.Context, userID, id int64, at time.Time) error
	// EndOtherSessions ends every live session of the user but keepID and
	// says how many it ended.
	EndOtherSessions(ctx context.Context, userID, keepID int64, at time.Time) (int, error)
	// AddSessionApp records that the session sid signed in to the app
	// (once; again is no error).
	AddSessionApp(ctx context.Context, sid string, appID int64) error
	// SessionApps are the apps the session sid signed in to, by id.
	SessionApps(ctx context.Context, sid string) ([]int64, error)
}

// Upstreams are the identity providers people sign in through, and the
// links of local users to their people.
type Upstreams interface {
	// CreateUpstream stores u and sets its ID. ErrConflict: the name is taken.
	CreateUpstream(ctx context.Context, u *Upstream) error
	// ListUpstreams lists the upstreams by name.
	ListUpstreams(ctx context.Context) ([]Upstream, error)
	UpstreamByName(ctx context.Context, name string) (Upstream, error)
	// DeleteUpstream removes the upstream and its links; the users stay.
	DeleteUpstream(ctx context.Context, name string) error
	// LinkUser links the user to the upstream's subject. ErrConflict: that
	// subject is linked already.
	LinkUser(ctx context.Context, l UserLink) error
	// LinkedUser is the user linked to the upstream's subject.
	LinkedUser(ctx context.Context, upstreamID int64, subject string) (User, error)
	// UserLinks are the user's links, by upstream.
	UserLinks(ctx context.Context, userID int64) ([]UserLink, error)
	// Unlink removes the user's link to the upstream. ErrNotFound: none.
	Unlink(ctx context.Context, userID, upstreamID int64) error
	// CreateLinkedUser stores u and links it to the subject, in one
	// transaction. ErrConflict: the login is taken, or the subject linked.
	CreateLinkedUser(ctx context.Context, u *User, l UserLink) error
}

// Factors are people's second factors and recovery codes.
type Factors interface {
	// AddFactor stores f and sets its ID. ErrConflict: the credential id
	// is taken (a second authenticator app, a passkey registered twice).
	AddFactor(ctx context.Context, f *Factor) error
	// ListFactors lists the user's factors, oldest first.
	ListFactors(ctx context.Context, userID int64) ([]Factor, error)
	// FactorByCredential is the factor with that credential id.
	FactorByCredential(ctx context.Context, credentialID []byte) (Factor, error)
	// UseFactor records a use of the factor at at, checked and written in
	// one statement: a step above zero must be above the stored one (and
	// replaces it), data, when not nil, replaces the stored data. False
	// when the step was not above the stored one (a code used before).
	UseFactor(ctx context.Context, id, step int64, data []byte, at time.Time) (bool, error)
	// RemoveFactor removes the user's factor id and returns it.
	// ErrNotFound: no such factor of theirs.
	RemoveFactor(ctx context.Context, userID, id int64) (Factor, error)
	// ResetFactors removes every factor and recovery code of the user and
	// returns the factors removed.
	ResetFactors(ctx context.Context, userID int64) ([]Factor, error)
	// SetRecoveryCodes replaces the user's recovery codes with hashes.
	SetRecoveryCodes(ctx context.Context, userID int64, hashes []token.Hash) error
	// UseRecoveryCode spends the user's unused recovery code hash at at:
	// false when there is no such unused code.
	UseRecoveryCode(ctx context.Context, userID int64, hash token.Hash, at time.Time) (bool, error)
	// RecoveryCodesLeft counts the user's unused recovery codes.
	RecoveryCodesLeft(ctx context.Context, userID int64) (int, error)
}

// Apps are the third-party apps, each with its client secret and service token.
type Apps interface {
	// CreateApp stores a with its first service token, in one transaction
	// (the token's AppID is set to the new app's). ErrNotFound: no such owner.
	CreateApp(ctx context.Context, a *App, serviceToken Token) error
	GetApp(ctx context.Context, id int64) (App, error)
	// UpdateApp reads the app, lets update change it, and writes every
	// mutable field back, in one transaction: two concurrent updates never
	// lose one. An error from update leaves the app as it was and is
	// returned as is.
	UpdateApp(ctx context.Context, id int64, update func(*App) error) (App, error)
	// ReplaceServiceToken revokes the app's live service tokens (flow
	// FlowServiceToken), stores t and sets the app's sealed service token,
	// in one transaction, and returns the hashes it revoked: there is never
	// more or less than one live service token.
	ReplaceServiceToken(ctx context.Context, t Token, sealed []byte) ([]token.Hash, error)
	// ListApps lists the apps f matches, by id.
	ListApps(ctx context.Context, f AppFilter) ([]App, error)
	// DeleteApp deletes the app with its tokens, codes and consents, and
	// returns the hashes of the tokens that were live.
	DeleteApp(ctx context.Context, id int64) ([]token.Hash, error)
}

// APIs are the resource servers registered to get tokens for.
type APIs interface {
	// CreateAPI stores a and sets its ID. ErrConflict: the identifier or
	// the slug is another API's; ErrNotFound: no such owner.
	CreateAPI(ctx context.Context, a *API) error
	GetAPI(ctx context.Context, id int64) (API, error)
	// APIByIdentifier is the API whose identifier (RFC 8707 resource) is
	// exactly identifier.
	APIByIdentifier(ctx context.Context, identifier string) (API, error)
	// ListAPIs lists the APIs of ownerID (every API when 0), by id.
	ListAPIs(ctx context.Context, ownerID int64) ([]API, error)
	// UpdateAPI reads the API, lets update change it, and writes every
	// mutable field back, in one transaction (as UpdateApp). ErrConflict:
	// the new slug is another API's.
	UpdateAPI(ctx context.Context, id int64, update func(*API) error) (API, error)
	// DeleteAPI deletes the API and revokes every token for it, in one
	// transaction, and returns the hashes it revoked (logged as
	// revocations for the other nodes).
	DeleteAPI(ctx context.Context, id int64, now time.Time) ([]token.Hash, error)
}

// Communities are groups, events and public pages, and their admins.
type Communities interface {
	// CreateCommunity creates the community with ownerID as its first admin.
	CreateCommunity(ctx context.Context, c *Community, ownerID int64) error
	GetCommunity(ctx context.Context, id int64) (Community, error)
	// AddCommunityAdmin is idempotent.
	AddCommunityAdmin(ctx context.Context, communityID, userID int64, at time.Time) error
	// RemoveCommunityAdmin fails with ErrConflict for the last admin.
	RemoveCommunityAdmin(ctx context.Context, communityID, userID int64) error
	ListCommunityAdmins(ctx context.Context, communityID int64) ([]User, error)
	ListAdminCommunities(ctx context.Context, userID int64) ([]Community, error)
	IsCommunityAdmin(ctx context.Context, communityID, userID int64) (bool, error)
}

// Consents are what each user granted each app.
type Consents interface {
	// MergeConsent adds c.Scope to what (UserID, AppID) has granted (to
	// c.APIID, 0 for the built-in API), in one
	// statement (concurrent grants never lose a scope): a new consent gets
	// c.CreatedAt, and every merge sets UpdatedAt to c.UpdatedAt.
	MergeConsent(ctx context.Context, c Consent) error
	GetConsent(ctx context.Context, userID, appID int64) (Consent, error)
	// GetAPIConsent is the consent of (userID, appID) to the API apiID.
	GetAPIConsent(ctx context.Context, userID, appID, apiID int64) (Consent, error)
	// ListConsentsByUser lists the user's consents to the built-in API.
	ListConsentsByUser(ctx context.Context, userID int64) ([]Consent, error)
	// DeleteConsent forgets what (userID, appID) granted, to every API
	// (ErrNotFound: nothing was).
	DeleteConsent(ctx context.Context, userID, appID int64) error
	// CountAppUsers is how many users have authorized the app.
	CountAppUsers(ctx context.Context, appID int64) (int64, error)
}

// Grants are what tokens are issued from: authorization codes, pushed
// requests, device codes, refresh tokens, and the revocation of a whole
// grant.
type Grants interface {
	CreateCode(ctx context.Context, c Code) error
	// GetCode returns the code whose hash is hash, used or not.
	GetCode(ctx context.Context, hash token.Hash) (Code, error)
	// UseCode marks the code used at now and returns it. A code already used
	// is returned with ErrConflict, so the caller can revoke what it issued.
	UseCode(ctx context.Context, hash token.Hash, now time.Time) (Code, error)
	// CreatePushedRequest stores a pushed authorization request's
	// parameters (URL-encoded) under hash, for the app, until expires.
	CreatePushedRequest(ctx context.Context, hash token.Hash, appID int64, params string, expires time.Time) error
	// UsePushedRequest returns the app's live pushed request, and spends it
	// when spend is set; ErrNotFound when there is none (unknown, another
	// app's, spent, expired).
	UsePushedRequest(ctx context.Context, hash token.Hash, appID int64, now time.Time, spend bool) (string, error)
	// CreateDeviceCode stores d; ErrConflict when its user code is taken.
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	// DeviceCodeByUserCode returns the device code with that user code.
	DeviceCodeByUserCode(ctx context.Context, userCode token.Hash) (DeviceCode, error)
	// UpdateDeviceCode reads the device code (of the app, when appID is not
	// zero), lets update change it, and writes it back, in one transaction.
	UpdateDeviceCode(ctx context.Context, hash token.Hash, appID int64, update func(*DeviceCode) error) (DeviceCode, error)
	// CreateRefreshToken stores r; ErrUserDisabled when its user is
	// disabled, ErrGrantRevoked when its family was revoked.
	CreateRefreshToken(ctx context.Context, r RefreshToken) error
	// IssueGrant stores what a grant hands out at once, all or none, in
	// one transaction: the spent code's row when g.Spent is set (its one
	// use: ErrConflict when the code has a row already, and nothing is
	// stored), then the access token and, when g.Refresh is set, the
	// refresh token, each refused as CreateToken and CreateRefreshToken
	// say.
	IssueGrant(ctx context.Context, g GrantTokens) error
	// GetRefreshToken returns the app's refresh token whose hash is hash;
	// ErrNotFound when it is not the app's.
	GetRefreshToken(ctx context.Context, hash token.Hash, appID int64) (RefreshToken, error)
	// UseRefreshToken spends the app's live refresh token at now and
	// returns it, if its Holder is one of holders (the caller's rule says
	// which). ErrNotFound: no such token of this app. A token already spent
	// or revoked, or held otherwise, is returned with ErrConflict,
	// untouched: what that means is the caller's rule. Of concurrent uses
	// exactly one wins.
	UseRefreshToken(ctx context.Context, hash token.Hash, appID int64, now time.Time, holders []Holder) (RefreshToken, error)
	// RevokeRefreshTokens revokes the live refresh tokens of a family, or
	// (family nil) of an app and user, or (family nil, appID 0) of a user
	// in every app, and says how many.
	RevokeRefreshTokens(ctx context.Context, family *token.Hash, appID, userID int64, now time.Time) (int64, error)
	// RevokeGrant revokes a grant, in one transaction: it records the
	// family revoked (no token or refresh token is stored into it
	// afterwards), revokes its refresh tokens and its access tokens (those
	// whose CodeHash is family) for reason, and returns the access tokens'
	// hashes.
	RevokeGrant(ctx context.Context, family token.Hash, reason RevokeReason, now time.Time) ([]token.Hash, error)
}

// GrantTokens is what a grant hands out at once (Grants.IssueGrant).
type GrantTokens struct {
	// Spent is the row of the code the tokens are issued for, with its
	// UsedAt set (nil: none to write).
	Spent   *Code
	Access  Token
	Refresh *RefreshToken
}

// Tokens are the access tokens (stored hashed), the log of their
// revocations that other nodes follow, and the DPoP proofs seen.
type Tokens interface {
	// CreateToken stores t; ErrUserDisabled when t.UserID names a disabled
	// user, ErrGrantRevoked when t.CodeHash names a revoked grant.
	CreateToken(ctx context.Context, t Token) error
	// CreateTokens stores many tokens at once, all or none (provisioning,
	// imports): many rows per statement, one transaction.
	CreateTokens(ctx context.Context, ts []Token) error
	GetToken(ctx context.Context, hash token.Hash) (Token, error)
	ListTokens(ctx context.Context, f TokenFilter) ([]Token, error)
	// RevokeTokens marks the live tokens that match f revoked at now for
	// reason, and returns their hashes.
	RevokeTokens(ctx context.Context, f TokenFilter, reason RevokeReason, now time.Time) ([]token.Hash, error)
	// ReusableToken finds a live token of the user for the app, from flow,
	// with exactly scope m, that was stored Sealed and does not expire
	// before validUntil; it returns the record and the sealed token, or
	// ErrNotFound.
	ReusableToken(ctx context.Context, appID, userID int64, flow Flow, m scope.Mask, validUntil time.Time) (Token, []byte, error)
	// TouchTokens records when tokens were last used; a later time wins.
	TouchTokens(ctx context.Context, used map[token.Hash]time.Time) error
	// RevocationsAfter returns, oldest first, at most limit hashes that the
	// revocation log holds after seq, and the seq of the last one returned
	// (seq itself when there is none). Every method that revokes or deletes
	// live tokens appends their hashes to the log in its own transaction.
	RevocationsAfter(ctx context.Context, seq int64, limit int) ([]token.Hash, int64, error)
	// LastRevocation is the seq of the newest log entry (0 for none).
	LastRevocation(ctx context.Context) (int64, error)
	// PruneRevocations deletes log entries made before before.
	PruneRevocations(ctx context.Context, before time.Time) (int64, error)
	// UseProof records a DPoP proof (the hash of its key and jti) until
	// expires; ErrConflict when it was recorded before: a replay.
	UseProof(ctx context.Context, hash token.Hash, expires time.Time) error
}

// Credentials are the server's own: id_token signing keys and admin
// tokens.
type Credentials interface {
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys lists every key, newest first, retired ones included.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey retires a published key; ErrNotFound otherwise.
	RetireSigningKey(ctx context.Context, kid string, now time.Time) error
	// CreateAdminToken stores an admin token; ErrConflict when its name is
	// taken.
	CreateAdminToken(ctx context.Context, t AdminToken) error
	// DeleteAdminToken removes the admin token named name; ErrNotFound if
	// there is none.
	DeleteAdminToken(ctx context.Context, name string) error
	// AdminToken finds an admin token by its hash; ErrNotFound otherwise.
	AdminToken(ctx context.Context, hash token.Hash) (AdminToken, error)
}

// Messages are what users and communities write to each other, and the
// notifications and events apps send.
type Messages interface {
	// CreateMessage stores m (a duplicate RandomID yields the first message,
	// Duplicate set) and, for a new message, the event event returns for it
	// (nil: none), in one transaction: no message without its event.
	CreateMessage(ctx context.Context, m *Message, event func(Message) *CommunityEvent) error
	ListMessages(ctx context.Context, peerID int64) ([]Message, error)
	// ListSentToCommunities lists the user's messages to communities,
	// newest first: their side of those conversations.
	ListSentToCommunities(ctx context.Context, userID int64, limit int) ([]Message, error)
	// ListCommunityMessages lists the messages users sent the community and
	// it sent them, newest first.
	ListCommunityMessages(ctx context.Context, communityID int64, limit int) ([]Message, error)
	MarkMessagesRead(ctx context.Context, peerID int64, at time.Time) error
	CreateNotification(ctx context.Context, n *Notification) error
	ListNotifications(ctx context.Context, userID int64) ([]Notification, error)
	MarkNotificationsRead(ctx context.Context, userID int64, at time.Time) error
	CreateAppEvent(ctx context.Context, e *AppEvent) error
	ListAppEvents(ctx context.Context, appID int64) ([]AppEvent, error)
}

// Bots are what a community's bots read: its numbered events, Long Poll
// settings, members and who allows its messages.
type Bots interface {
	// CommunityEvents lists up to limit of the community's events from
	// sequence number from on, in order.
	CommunityEvents(ctx context.Context, communityID, from int64, limit int) ([]CommunityEvent, error)
	// LastEventSeq is the sequence number of the community's last event (0
	// before the first).
	LastEventSeq(ctx context.Context, communityID int64) (int64, error)
	// DeleteCommunityEvents deletes up to limit events created before
	// before (the sequence numbers stay), and says how many.
	DeleteCommunityEvents(ctx context.Context, before time.Time, limit int) (int64, error)
	// LongPollSettings are the community's (disabled, no events, when never
	// set).
	LongPollSettings(ctx context.Context, communityID int64) (LongPollSettings, error)
	// UpdateLongPollSettings changes the community's settings with update
	// in one transaction (an error from update changes nothing).
	UpdateLongPollSettings(ctx context.Context, communityID int64, update func(*LongPollSettings) error) (LongPollSettings, error)
	// SetMembership makes the user a member of the community or not, and
	// reports whether that changed; when it did, event (if any) is stored
	// in the same write.
	SetMembership(ctx context.Context, communityID, userID int64, member bool, at time.Time, event *CommunityEvent) (bool, error)
	// SetMessagesAllowed records whether the user lets the community write
	// to them, and stores the event that event returns for whether that
	// changed anything (nil: none) in the same write; it reports whether an
	// event was stored.
	SetMessagesAllowed(ctx context.Context, communityID, userID int64, allowed bool, at time.Time, event func(changed bool) *CommunityEvent) (bool, error)
	// MessagesAllowed reports whether the community may write to the user
	// (true unless the user denied it).
	MessagesAllowed(ctx context.Context, communityID, userID int64) (bool, error)
}

// Callbacks are a community's Callback API servers and the queue of
// deliveries to them.
type Callbacks interface {
	// CreateCallbackServer stores s (setting its ID) with its confirmation
	// queued.
	CreateCallbackServer(ctx context.Context, s *CallbackServer, now time.Time) error
	CallbackServers(ctx context.Context, communityID int64) ([]CallbackServer, error)
	// UpdateCallbackServer changes the community's server in one
	// transaction; ErrNotFound when it has none of that id.
	UpdateCallbackServer(ctx context.Context, communityID, id int64, update func(*CallbackServer) error) (CallbackServer, error)
	DeleteCallbackServer(ctx context.Context, communityID, id int64) error
	// NextDeliveries claims, for up to limit servers, the first pending
	// delivery that is due at now (one per server: deliveries go in order),
	// by moving its next attempt to lease: another node will not take it.
	NextDeliveries(ctx context.Context, now, lease time.Time, limit int) ([]Delivery, error)
	// FinishDelivery records an attempt's outcome: d's Status, Attempts,
	// NextAt and LastError; a delivered confirmation confirms its server,
	// a failed one fails it.
	FinishDelivery(ctx context.Context, d Delivery) error
	// Deliveries lists the community's latest deliveries, newest first.
	Deliveries(ctx context.Context, communityID int64, limit int) ([]Delivery, error)
	// QueueDeliveries queues deliveries to apps (AppID, Type, URL, Payload,
	// NextAt), in one transaction.
	QueueDeliveries(ctx context.Context, ds []Delivery) error
	// AppDeliveries lists the app's latest deliveries, newest first.
	AppDeliveries(ctx context.Context, appID int64, limit int) ([]Delivery, error)
}

// Audit is the log of security events.
type Audit interface {
	AddAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// Cluster is what the nodes sharing a storage coordinate through: their
// heartbeats, the throttles every node counts in, and exclusive jobs.
type Cluster interface {
	// Heartbeat records that node is serving at now, forgets the nodes last
	// seen before forgetBefore, and returns how many were seen since
	// liveSince (node included).
	Heartbeat(ctx context.Context, node string, now, liveSince, forgetBefore time.Time) (int, error)
	// ForgetNode removes node at once (it stops serving).
	ForgetNode(ctx context.Context, node string) error
	// TakeAttempt counts an attempt against key, atomically, in a window
	// that began after since (a new window begins at now otherwise), if
	// fewer than limit were counted in it: ok then. It returns when the
	// window began.
	TakeAttempt(ctx context.Context, key token.Hash, limit int, since, now time.Time) (ok bool, started time.Time, err error)
	// RefundAttempt gives back one attempt of key's window, if it began
	// after since.
	RefundAttempt(ctx context.Context, key token.Hash, since time.Time) error
	// ResetAttempts forgets key's attempts.
	ResetAttempts(ctx context.Context, key token.Hash) error
	// PruneAttempts deletes the windows that began before before.
	PruneAttempts(ctx context.Context, before time.Time) (int64, error)
	// RunExclusive runs fn unless another process sharing this storage is
	// running a function under the same name; ran reports whether fn ran.
	RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (ran bool, err error)
}

// Upkeep is the storage's own: reachability, closing, and deleting what
// expired.
type Upkeep interface {
	// Ping reports whether the storage is reachable.
	Ping(ctx context.Context) error
	Close() error
	// DeleteExpired deletes at most limit codes that expired before
	// codesBefore, at most limit tokens that expired before tokensBefore,
	// and at most limit tokens revoked before revokedBefore, and says how
	// many codes and tokens it deleted. Tokens neither expired nor revoked
	// are never deleted.
	DeleteExpired(ctx context.Context, codesBefore, tokensBefore, revokedBefore time.Time, limit int) (codes, tokens int64, err error)
}

// Registration is how an app registered itself (RFC 7591): the app is
// owned by no one (OwnerID 0).
type Registration struct {
	AppID int64
	// AccessHash is the hash of the registration access token (RFC 7592).
	AccessHash token.Hash
	// Metadata is the client metadata as stored, in JSON.
	Metadata  []byte
	Address   string // the client address it came from
	CreatedAt time.Time
}

// RegistrationToken is an initial access token an operator hands out:
// whoever holds it may register up to MaxUses apps (0: any number) until
// ExpiresAt (zero: never).
type RegistrationToken struct {
	ID                              int64
	Name                            string
	Hash                            token.Hash
	MaxUses, Uses                   int
	ExpiresAt, RevokedAt, CreatedAt time.Time
}

// Registrations are apps registered by their clients and the initial
// access tokens of registration.
type Registrations interface {
	// Register stores the app (and its service token, as CreateApp) and
	// its registration in one transaction. When initial is not zero it
	// first spends a use of that initial access token: ErrNotFound, and
	// nothing stored, when no live token (not revoked, expired or used
	// up) has that hash.
	Register(ctx context.Context, a *App, serviceToken Token, r *Registration, initial token.Hash, now time.Time) error
	GetRegistration(ctx context.Context, appID int64) (Registration, error)
	// UpdateRegistration changes the app and its registration in one
	// read-modify-write transaction.
	UpdateRegistration(ctx context.Context, appID int64, update func(*App, *Registration) error) (App, Registration, error)
	// ExpireRegistrations deletes, as DeleteApp, at most limit apps owned
	// by no one (registered by their clients, or standing for a client
	// metadata document) created before cutoff that have issued no token
	// (other than their service token) since; it returns the hashes it
	// revoked.
	ExpireRegistrations(ctx context.Context, cutoff time.Time, limit int) ([]token.Hash, int, error)
	CreateRegistrationToken(ctx context.Context, t *RegistrationToken) error
	ListRegistrationTokens(ctx context.Context) ([]RegistrationToken, error)
	// RevokeRegistrationToken: ErrNotFound for no such live token.
	RevokeRegistrationToken(ctx context.Context, id int64, now time.Time) error

	// GetClientDocument is the client whose client_id is the metadata
	// document at url.
	GetClientDocument(ctx context.Context, url string) (ClientDocument, error)
	// CreateClientDocument stores the app standing for the document (as
	// CreateApp) and the document, in one transaction; ErrConflict when
	// the URL is known already.
	CreateClientDocument(ctx context.Context, d *ClientDocument, a *App, serviceToken Token) error
	// RefreshClientDocument changes the document's app (as UpdateApp) and
	// its freshness, in one transaction.
	RefreshClientDocument(ctx context.Context, url string, expires time.Time, update func(*App) error) (App, error)
}

// ClientDocument is a client known by its client ID metadata document:
// the URL is its client_id, the app stands for it in storage.
type ClientDocument struct {
	URL       string
	AppID     int64
	ExpiresAt time.Time
}
