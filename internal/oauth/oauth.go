// Package oauth implements the protocol side of Latchkey's OAuth 2.0 server
// in VK's dialect: checking /authorize requests, deciding them and building
// their answers, the /access_token endpoint (a pipeline with one small type
// per grant), RFC 7009 revocation, RFC 7662 introspection and RFC 8414
// metadata.
//
// The pipeline owns the shared steps: client authentication, redirect URI
// checks and scope parsing happen once, here, never inside each grant. The
// rules behind them (consent, codes, tokens) belong to internal/platform,
// which this package asks through the small interfaces below.
package oauth

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"latchkey/internal/dpop"
	"latchkey/internal/metrics"
	"latchkey/internal/platform"
	"latchkey/internal/ratelimit"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Config holds the lifetimes and switches of the flows.
type Config struct {
	CodeTTL        time.Duration
	AllowPlainPKCE bool
	// PublicURL is the server's absolute URL (issuer, blank page).
	PublicURL *url.URL
	// Registration is the --registration mode: the metadata names the
	// registration endpoint unless it is off.
	Registration string
	// ClientDocuments: a client_id may be the URL of the client's
	// metadata document (the metadata says so).
	ClientDocuments bool
}

// Platform is what the OAuth endpoints ask of the domain layer.
type Platform interface {
	LookupApp(ctx context.Context, id int64) (storage.App, error)
	AuthenticateClient(ctx context.Context, clientID int64, secret string) (storage.App, token.Hash, error)
	MayGrantFor(ctx context.Context, userID int64, communityIDs []int64) error
	LookupCommunity(ctx context.Context, id int64) (storage.Community, error)
	User(ctx context.Context, id int64) (storage.User, error)
	CheckToken(ctx context.Context, raw string) (storage.Token, error)
	CheckAccessToken(ctx context.Context, raw string) (storage.Token, error)
	RevokeToken(ctx context.Context, actor platform.Actor, appID int64, raw string) error
	EndSignIn(ctx context.Context, actor platform.Actor, t storage.Token) error
	RemoveAppAccess(ctx context.Context, actor platform.Actor, userID, appID int64) error
	CheckProof(ctx context.Context, proof, method, target, accessToken string) (dpop.Proof, error)
	CheckBinding(ctx context.Context, t storage.Token, dpopScheme bool, proof, method, target, raw string) error
	DPoPNonce() string
	Push(ctx context.Context, appID int64, params url.Values) (string, error)
	TakePushed(ctx context.Context, appID int64, uri string, spend bool) (url.Values, error)
}

// Issuer hands out every token a grant issues (platform.Issuer).
type Issuer interface {
	Issue(ctx context.Context, in platform.Issuance) (platform.Issued, error)
	Communities(ctx context.Context, in platform.CommunityIssuance) ([]platform.CommunityToken, error)
	ClientCredentials(ctx context.Context, app storage.App, secret token.Hash, ip string, api *storage.API, m scope.Mask, jkt string) (platform.Issued, error)
	Exchange(ctx context.Context, in platform.ExchangeRequest) (platform.Issued, error)
	Claims(u storage.User, m scope.Mask) platform.UserClaims
	IDTokenOf(ctx context.Context, raw string, appID int64) (platform.IDClaims, error)
}

// APIs finds the API a request's resource names, and authenticates APIs
// at introspection (platform.APIs).
type APIs interface {
	Resource(ctx context.Context, resource string) (*storage.API, error)
	AuthenticateAPI(ctx context.Context, clientID, secret string) (storage.API, error)
	Lookup(ctx context.Context, id int64) (storage.API, error)
	BuiltinIdentifier() string
	GatewayIdentifier(slug string) string
}

// Consents decides and records consent (platform.Consents).
type Consents interface {
	Check(ctx context.Context, userID, appID int64, want scope.Mask, ask bool) (platform.Decision, error)
	Grant(ctx context.Context, userID, appID int64, m scope.Mask, d *platform.Decision, refresh bool) error
	CheckAPI(ctx context.Context, userID, appID, apiID int64, want, claims scope.Mask, ask bool) (platform.Decision, error)
	GrantAPI(ctx context.Context, userID, appID, apiID int64, m, claims scope.Mask) error
}

// apiID is the id of api, 0 for the built-in API.
func apiID(api *storage.API) int64 {
	if api == nil {
		return 0
	}
	return api.ID
}

// Codes mints and redeems authorization codes (platform.Codes).
type Codes interface {
	Issue(ctx context.Context, r platform.CodeRequest, ttl time.Duration) (string, error)
	Redeem(ctx context.Context, raw string, r platform.Redemption) (code storage.Code, spend *storage.Code, err error)
	Spend(ctx context.Context, spend storage.Code) error
}

// Refreshes rotates and reads refresh tokens (platform.Refreshes); the
// issuer issues them with their grant's access token.
type Refreshes interface {
	Rotate(ctx context.Context, raw string, appID int64, by storage.Holder) (platform.Grant, string, error)
	Peek(ctx context.Context, raw string, appID int64) (platform.Grant, error)
	Keep(ctx context.Context, raw string, appID int64, jkt string) (platform.Grant, error)
}

// Devices runs the device authorization grant (platform.Devices).
type Devices interface {
	Start(ctx context.Context, appID int64, m scope.Mask, apiID int64, claims scope.Mask) (deviceCode, userCode string, err error)
	Poll(ctx context.Context, raw string, appID int64) (storage.DeviceCode, error)
}

// Deps are what a Provider is built from.
type Deps struct {
	Platform  Platform
	Issuer    Issuer
	APIs      APIs
	Consents  Consents
	Codes     Codes
	Refreshes Refreshes
	Signer    Signer
	Devices   Devices
	// Documents finds the clients whose client_id is the URL of their
	// metadata document (nil: none are).
	Documents Documents
	// Assertions authenticates clients by private_key_jwt (nil: none
	// do).
	Assertions Assertions
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Config Config
	Log    *slog.Logger
}

// Assertions checks private_key_jwt client assertions
// (platform.Assertions).
type Assertions interface {
	Authenticate(ctx context.Context, clientID, assertion string, audiences []string) (storage.App, error)
}

// Documents are clients known by a client ID metadata document
// (platform.ClientDocuments).
type Documents interface {
	App(ctx context.Context, url string) (storage.App, error)
}

// Provider answers the OAuth endpoints.
type Provider struct {
	p          Platform
	issuer     Issuer
	apis       APIs
	consents   Consents
	codes      Codes
	refreshes  Refreshes
	signer     Signer
	devices    Devices
	documents  Documents
	assertions Assertions
	now        func() time.Time
	Cfg        Config
	log        *slog.Logger
	grants     map[string]grant
	// limits holds the VK ID endpoints' rate limits.
	limits *ratelimit.Limiter
	// Metrics counts refusals (nil: none).
	Metrics *metrics.Metrics
}

// New builds the provider with every grant it serves.
func New(d Deps) *Provider {
	if d.Now == nil {
		d.Now = time.Now
	}
	p := &Provider{p: d.Platform, issuer: d.Issuer, apis: d.APIs, consents: d.Consents, codes: d.Codes, refreshes: d.Refreshes, signer: d.Signer, devices: d.Devices, documents: d.Documents, assertions: d.Assertions, now: d.Now, Cfg: d.Config, log: d.Log, limits: ratelimit.New(1 << 14)}
	p.grants = grants(p)
	return p
}

// Issuer is the server's issuer identifier: its public URL, without a
// trailing slash (RFC 8414 §2).
func (p *Provider) Issuer() string { return strings.TrimSuffix(p.Cfg.PublicURL.String(), "/") }

// BlankURL is <public-url>/blank.html.
func (p *Provider) BlankURL() string { return p.Cfg.PublicURL.JoinPath("/blank.html").String() }
