package platform

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Issuer is the one place tokens are handed out: every grant of every
// dialect ends here. It decides a token's lifetime, the grant it belongs
// to (its family) and its binding, whether a refresh token comes with it,
// how far a request may narrow its scopes, and what the id_token and the
// answer may tell of the user. The protocol layer decodes requests and
// encodes Issued; it never builds a token record.
type Issuer struct {
	*core
	apis      *APIs
	users     storage.Users
	checker   *Tokens
	refreshes *Refreshes
	signing   *Signing
	// Lifetimes are the legacy dialect's user-token lifetimes.
	Lifetimes Lifetimes
	// PublicURL is the server's URL: the id_tokens' issuer, the pictures'
	// base (nil: no id_tokens are signed).
	PublicURL *url.URL
}

// Lifetimes are how long the user tokens of the legacy and RFC endpoints
// live: those of the code and device flows (and their refreshes, token
// exchange's ceiling) and those of the implicit flow. A token with the
// offline scope never expires, and has no refresh token.
type Lifetimes struct {
	Code, Implicit time.Duration
}

// Default lifetimes, as the server's flags default them.
const (
	DefaultCodeTokenTTL     = 12 * time.Hour
	DefaultImplicitTokenTTL = 24 * time.Hour
)

// VKIDTokenTTL is a VK ID access token's lifetime (vkid-wire.md §2): always
// an hour, always with a refresh token, whatever the scopes.
const VKIDTokenTTL = time.Hour

// idTokenTTL is how long an id_token is valid: it proves a login, now.
const idTokenTTL = time.Hour

// Dialect is the family of clients a token is issued to. They share users,
// apps, consents, codes and grants, and differ in lifetimes and in what an
// answer carries.
type Dialect int

const (
	// Legacy is VK's OAuth 2.0 and the RFC endpoints: Lifetimes, offline
	// tokens, an id_token with openid, the e-mail in the answer with email.
	Legacy Dialect = iota
	// VKID is VK ID's /oauth2/auth: VKIDTokenTTL, a refresh token always,
	// an id_token at every sign-in (and on a refresh with openid).
	VKID
)

// Issuance is a user token to issue: the grant it belongs to (a zero
// Family for the implicit flow, which has none), how it was obtained, and
// for whom.
type Issuance struct {
	Grant
	Dialect Dialect
	Flow    storage.Flow
	IP      string
	// Narrow, when not 0, is the scopes the request asks for: the grant's
	// or fewer (ErrWiderScope otherwise).
	Narrow scope.Mask
	// Refresh is the grant's next refresh token when the grant already
	// rotated one (the refresh grant); "" lets Issue decide.
	Refresh string
	// Spends is the code the grant is redeemed from when its one use is
	// still to be written (Codes.Redeem's spend): it is written with the
	// tokens, in one write, and a code spent meanwhile is a replay.
	Spends *storage.Code
}

// Issued is what a grant hands out.
type Issued struct {
	// Grant is the grant with the scopes issued.
	Grant
	Access string
	// TTL is the access token's lifetime; 0 when it never expires.
	TTL time.Duration
	// Refresh is the grant's refresh token ("" when it has none).
	Refresh string
	// IDToken is the signed id_token ("" when there is none).
	IDToken string
	// Email is the user's e-mail when the answer may show it.
	Email string
	// ScopeText names the scopes of a token for an API, space-separated
	// ("": the built-in API's, which each dialect names its own way).
	ScopeText string
}

// ErrWiderScope refuses a request for scopes its grant does not have: a
// refresh or an exchange may narrow a token, never widen it.
var ErrWiderScope = &Error{Kind: Invalid, Field: "scope", Message: "scope asks for more than the grant has"}

// narrow is the scopes a request for want gets of a grant of has: want
// (every scope of has when 0), which must not be wider than has.
func narrow(has, want scope.Mask) (scope.Mask, error) {
	if want == 0 {
		return has, nil
	}
	if !has.Has(want) {
		return has, ErrWiderScope
	}
	return want, nil
}

// Issue issues a user token of in's grant, with what comes with it by the
// rules of its dialect and flow: a refresh token, an id_token, the e-mail.
func (s *Issuer) Issue(ctx context.Context, in Issuance) (Issued, error) {
	if in.APIID != 0 {
		return s.issueForAPI(ctx, in)
	}
	m, err := narrow(in.Scope, in.Narrow)
	if err != nil {
		return Issued{}, err
	}
	in.Scope = m
	ttl, refresh := s.lifetime(in)
	t := storage.Token{Kind: token.User, AppID: in.AppID, UserID: in.UserID, Scope: in.Scope, IP: in.IP, Flow: in.Flow, JKT: in.JKT}
	if in.Family != (token.Hash{}) {
		t.CodeHash = &in.Family
	}
	access, rec := s.mint(t, ttl, false)
	w := storage.GrantTokens{Spent: in.Spends, Access: rec}
	out := Issued{Grant: in.Grant, Access: access, TTL: ttl, Refresh: in.Refresh}
	if refresh && in.Refresh == "" {
		out.Refresh, w.Refresh = s.refreshes.mint(in.Grant)
	}
	if err := s.issueGrant(ctx, w); err != nil {
		return Issued{}, err
	}
	email, idToken := s.discloses(in)
	var u storage.User
	if email || idToken && (in.Scope.Has(scope.Profile) || in.Scope.Has(scope.Email)) {
		if u, err = s.users.GetUser(ctx, in.UserID); err != nil {
			return Issued{}, err
		}
	}
	if email {
		out.Email = u.Email
	}
	if idToken {
		nonce := in.Nonce
		if in.Flow == storage.FlowRefresh {
			nonce = "" // a refreshed id_token carries none (OpenID Connect Core §12.2)
		}
		if out.IDToken, err = s.idToken(ctx, in.Grant, u, nonce); err != nil {
			return Issued{}, err
		}
	}
	return out, nil
}

// ErrAPIGone refuses a grant whose API was deleted.
var ErrAPIGone = &Error{Kind: Invalid, Field: "resource", Message: "the API this grant is for was deleted", Err: ErrUnknownResource}

// issueForAPI issues a user token of a grant for an API: the API's
// lifetime and format, always with a refresh token (as the code flow's
// user tokens have), and an id_token when the grant's OpenID Connect
// scopes (Claims) have openid, disclosing what they ask.
func (s *Issuer) issueForAPI(ctx context.Context, in Issuance) (Issued, error) {
	api, err := s.apis.Lookup(ctx, in.APIID)
	if KindOf(err) == NotFound {
		return Issued{}, ErrAPIGone
	}
	if err != nil {
		return Issued{}, err
	}
	m, err := narrow(in.Scope, in.Narrow)
	if err != nil {
		return Issued{}, err
	}
	in.Scope = m
	t := storage.Token{Kind: token.User, AppID: in.AppID, UserID: in.UserID, Scope: m, IP: in.IP, Flow: in.Flow, JKT: in.JKT, APIID: api.ID}
	if in.Family != (token.Hash{}) {
		t.CodeHash = &in.Family
	}
	raw, rec, err := s.accessFor(ctx, t, &api, strconv.FormatInt(in.UserID, 10), in.Authn)
	if err != nil {
		return Issued{}, err
	}
	w := storage.GrantTokens{Spent: in.Spends, Access: rec}
	out := Issued{Grant: in.Grant, Access: raw, TTL: api.TokenTTL, Refresh: in.Refresh, ScopeText: strings.Join(ScopeNames(&api, m), " ")}
	if in.Refresh == "" && in.Flow != storage.FlowRefresh {
		out.Refresh, w.Refresh = s.refreshes.mint(in.Grant)
	}
	if err := s.issueGrant(ctx, w); err != nil {
		return Issued{}, err
	}
	if s.PublicURL != nil && in.Claims.Has(scope.OpenID) {
		var u storage.User
		if in.Claims.Has(scope.Profile) || in.Claims.Has(scope.Email) {
			if u, err = s.users.GetUser(ctx, in.UserID); err != nil {
				return Issued{}, err
			}
		}
		nonce := in.Nonce
		if in.Flow == storage.FlowRefresh {
			nonce = ""
		}
		g := in.Grant
		g.Scope = in.Claims // what the id_token discloses
		if out.IDToken, err = s.idToken(ctx, g, u, nonce); err != nil {
			return Issued{}, err
		}
	}
	return out, nil
}

// lifetime is the access token's lifetime and whether the grant gets a
// refresh token (when it does not already have one).
func (s *Issuer) lifetime(in Issuance) (time.Duration, bool) {
	if in.Dialect == VKID {
		return VKIDTokenTTL, true
	}
	switch {
	case in.Flow == storage.FlowRefresh:
		// Only expiring grants have refresh tokens: a refreshed token expires.
		return s.Lifetimes.Code, false
	case in.Scope.Has(scope.Offline):
		return 0, false
	case in.Flow == storage.FlowImplicit:
		return s.Lifetimes.Implicit, false
	}
	return s.Lifetimes.Code, true
}

// discloses says whether the answer carries the user's e-mail and an
// id_token.
func (s *Issuer) discloses(in Issuance) (email, idToken bool) {
	signs := s.PublicURL != nil
	if in.Dialect == VKID {
		// A sign-in always has an id_token; a refresh only for OpenID
		// Connect clients (vkid-wire.md §3: it may be omitted), since
		// signing one is the costliest step of the answer.
		return false, signs && (in.Flow != storage.FlowRefresh || in.Scope.Has(scope.OpenID))
	}
	email = in.Scope.Has(scope.Email) && in.Flow != storage.FlowRefresh
	idToken = signs && in.Scope.Has(scope.OpenID) && in.Flow != storage.FlowImplicit
	return email, idToken
}

// IDClaims are an id_token's claims (OpenID Connect Core §2, with VK ID's
// iis and app, vkid-wire.md §9).
type IDClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	// ACR, AMR and SID are the sign-in's level, methods and session.
	ACR string   `json:"acr,omitempty"`
	AMR []string `json:"amr,omitempty"`
	SID string   `json:"sid,omitempty"`
	IIS string   `json:"iis"`
	App int64    `json:"app"`
	UserClaims
}

// UserClaims are what the profile and email scopes disclose of a user, in
// the id_token and at UserInfo.
type UserClaims struct {
	Name       string `json:"name,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	Picture    string `json:"picture,omitempty"`
	Email      string `json:"email,omitempty"`
}

// URL is the issuer identifier: the public URL without a trailing slash
// (RFC 8414 §2).
func (s *Issuer) URL() string { return strings.TrimSuffix(s.PublicURL.String(), "/") }

// Claims are what the scopes m disclose of u.
func (s *Issuer) Claims(u storage.User, m scope.Mask) UserClaims {
	var c UserClaims
	if m.Has(scope.Profile) {
		c.GivenName, c.FamilyName = u.FirstName, u.LastName
		c.Name = strings.TrimSpace(u.FirstName + " " + u.LastName)
		c.Picture = AvatarURL(s.PublicURL, u.ID, 200)
	}
	if m.Has(scope.Email) {
		c.Email = u.Email
	}
	return c
}

// idToken signs the id_token of grant g for its user u (read only when the
// scopes disclose something of them).
func (s *Issuer) idToken(ctx context.Context, g Grant, u storage.User, nonce string) (string, error) {
	now := s.Now()
	c := IDClaims{Issuer: s.URL(), Subject: strconv.FormatInt(g.UserID, 10), Audience: strconv.FormatInt(g.AppID, 10),
		Expiry: now.Add(idTokenTTL).Unix(), IssuedAt: now.Unix(), Nonce: nonce, IIS: s.URL(), App: g.AppID,
		UserClaims: s.Claims(u, g.Scope)}
	if !g.AuthTime.IsZero() {
		c.AuthTime = g.AuthTime.Unix()
	}
	c.ACR, c.AMR, c.SID = ACROf(g.AMR), g.AMR, g.SID
	return s.signing.Sign(ctx, c)
}

// ErrBadIDToken refuses an id_token that is not a live one of ours for the
// app.
var ErrBadIDToken = &Error{Kind: Invalid, Field: "id_token", Message: "id_token is missing, invalid or expired"}

// IDTokenOf checks that raw is a live id_token of ours issued to appID and
// returns its claims (ErrBadIDToken otherwise).
func (s *Issuer) IDTokenOf(ctx context.Context, raw string, appID int64) (IDClaims, error) {
	c, err := s.IDTokenHint(ctx, raw)
	if err == nil && (c.Audience != strconv.FormatInt(appID, 10) || !s.Now().Before(time.Unix(c.Expiry, 0))) {
		err = ErrBadIDToken
	}
	return c, err
}

// IDTokenHint reads an id_token of ours given back as a hint (RP-Initiated
// Logout's id_token_hint): its signature, issuer, subject and audience are
// checked, not its expiry, since a hint may well outlive its token
// (ErrBadIDToken otherwise).
func (s *Issuer) IDTokenHint(ctx context.Context, raw string) (IDClaims, error) {
	var c IDClaims
	err := s.signing.Verify(ctx, raw, &c)
	switch {
	case errors.Is(err, ErrBadJWT):
		return c, ErrBadIDToken
	case err != nil:
		return c, err
	}
	_, errSub := strconv.ParseInt(c.Subject, 10, 64)
	_, errAud := strconv.ParseInt(c.Audience, 10, 64)
	if errSub != nil || errAud != nil || c.Issuer != s.URL() {
		return c, ErrBadIDToken
	}
	return c, nil
}

// CommunityIssuance is the community tokens of one approved request: one
// per community, never expiring.
type CommunityIssuance struct {
	AppID, UserID int64
	CommunityIDs  []int64
	Scope         scope.Mask
	Flow          storage.Flow
	// Family is the code the tokens came from (zero for the implicit
	// flow): a replay of it revokes them.
	Family token.Hash
	IP     string
}

// CommunityToken is one community's token.
type CommunityToken struct {
	CommunityID int64
	Access      string
}

// Communities issues the community tokens of in, in the order of its
// communities.
func (s *Issuer) Communities(ctx context.Context, in CommunityIssuance) ([]CommunityToken, error) {
	out := make([]CommunityToken, 0, len(in.CommunityIDs))
	for _, id := range in.CommunityIDs {
		t := storage.Token{Kind: token.Community, AppID: in.AppID, UserID: in.UserID, CommunityID: id, Scope: in.Scope, IP: in.IP, Flow: in.Flow}
		if in.Family != (token.Hash{}) {
			t.CodeHash = &in.Family
		}
		raw, _, err := s.issue(ctx, t, 0, false)
		if err != nil {
			return nil, err
		}
		out = append(out, CommunityToken{CommunityID: id, Access: raw})
	}
	return out, nil
}

// ErrClientCredentialsOff refuses the client credentials flow of an app
// that has not turned it on.
var ErrClientCredentialsOff = &Error{Kind: Forbidden, Field: "grant_type", Message: "the client credentials flow is obsolete and off for this app: " +
	"use the service token from the app's settings, or turn the flow on in the app's settings"}

// ClientCredentials issues the app a service token by the client
// credentials flow (RFC 6749 §4.4), when the app has turned it on: for the
// built-in API (api nil) a token that never expires — the flow is obsolete
// there, the app's service token does the same; for an API, a token whose
// audience it is, with the scopes m of it, living the API's TokenTTL, in
// the API's format. Either is bound to the secret it was obtained with:
// retiring that secret revokes it. A token for an API is bound to the DPoP
// key jkt when the request proved one (RFC 9449 §5).
func (s *Issuer) ClientCredentials(ctx context.Context, app storage.App, secret token.Hash, ip string, api *storage.API, m scope.Mask, jkt string) (Issued, error) {
	if !app.ClientCredentials {
		return Issued{}, ErrClientCredentialsOff
	}
	t := storage.Token{Kind: token.Service, AppID: app.ID, IP: ip, Flow: storage.FlowClientCredentials, SecretHash: &secret}
	if api == nil {
		raw, _, err := s.issue(ctx, t, 0, false)
		return Issued{Grant: Grant{AppID: app.ID}, Access: raw}, err
	}
	t.APIID, t.Scope, t.JKT = api.ID, m, jkt
	raw, err := s.forAPI(ctx, t, api, strconv.FormatInt(app.ID, 10), storage.Authn{})
	return Issued{Grant: Grant{AppID: app.ID, Scope: m, JKT: jkt}, Access: raw, TTL: api.TokenTTL}, err
}

// AccessClaims are an RFC 9068 JWT access token's claims.
type AccessClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	JTI      string   `json:"jti"`
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	CNF      *CNF     `json:"cnf,omitempty"`
}

// CNF is a token's confirmation (RFC 9449 §6): the DPoP key it is bound to.
type CNF struct {
	JKT string `json:"jkt"`
}

// forAPI stores t, a token for api living the API's TokenTTL, and returns
// it in the API's format (accessFor).
func (s *Issuer) forAPI(ctx context.Context, t storage.Token, api *storage.API, sub string, authn storage.Authn) (string, error) {
	raw, t, err := s.accessFor(ctx, t, api, sub, authn)
	if err != nil {
		return "", err
	}
	return raw, s.issueGrant(ctx, storage.GrantTokens{Access: t})
}

// accessFor makes t, a token for api living the API's TokenTTL, in the
// API's format: opaque (minted as every token) or an RFC 9068 JWT signed
// with the id_token keys, stored by its hash so that it is revoked and
// introspected as every token is. sub is the token's subject. The token is
// returned with its record, not yet stored.
func (s *Issuer) accessFor(ctx context.Context, t storage.Token, api *storage.API, sub string, authn storage.Authn) (string, storage.Token, error) {
	if api.TokenFormat != storage.TokenJWT {
		raw, t := s.mint(t, api.TokenTTL, false)
		return raw, t, nil
	}
	now := s.now()
	c := AccessClaims{Issuer: s.URL(), Subject: sub, Audience: api.Identifier, ClientID: strconv.FormatInt(t.AppID, 10),
		Scope: strings.Join(ScopeNames(api, t.Scope), " "), IssuedAt: now.Unix(), Expiry: now.Add(api.TokenTTL).Unix(), JTI: rand.Text()}
	if !authn.AuthTime.IsZero() {
		c.AuthTime = authn.AuthTime.Unix()
	}
	c.ACR, c.AMR = ACROf(authn.AMR), authn.AMR
	if t.JKT != "" {
		c.CNF = &CNF{JKT: t.JKT}
	}
	// ES256 when the server has such a key (ten times cheaper to sign),
	// RS256 otherwise: the JWKS publishes both.
	raw, err := s.signing.sign(ctx, "at+jwt", c, jose.ES256, jose.RS256)
	if err != nil {
		return "", t, err
	}
	t.Hash, t.IssuedAt, t.ExpiresAt = token.HashOf(raw), now, now.Add(api.TokenTTL)
	return raw, t, nil
}

// ErrSubjectInvalid refuses a token exchange whose subject is not a live
// user token of the app.
var ErrSubjectInvalid = &Error{Kind: Invalid, Field: "subject_token", Message: "subject_token is not a live user token of this app"}

// ErrSubjectExpiring refuses a token exchange whose subject has less than
// a second to live.
var ErrSubjectExpiring = &Error{Kind: Invalid, Field: "subject_token", Message: "subject_token is about to expire"}

// ExchangeRequest is a token exchange (RFC 8693) by the app AppID.
type ExchangeRequest struct {
	Actor   Actor
	AppID   int64
	Subject string
	// Scope names the scopes asked, by the subject's API's names (VK's for
	// the built-in API); "" asks for the subject's.
	Scope string
	// Resource is the API the request names (nil: the built-in API);
	// Named, whether it named one (RFC 8707): none means the subject's.
	Resource *storage.API
	Named    bool
}

// ErrOtherResource refuses an exchange for another API than its subject's.
var ErrOtherResource = &Error{Kind: Invalid, Field: "resource", Message: "a token is exchanged for a narrower one of its own API, never another's"}

// Exchange trades the app's user token for a narrower one (RFC 8693): the
// scopes asked (the subject's when none), never more; a lifetime no
// longer than the subject's remaining one, nor than a code-flow token's
// (or its API's); for the subject's API only, in the API's format. The
// new token belongs to the subject's grant (its code, or the subject
// itself) and records the subject as its parent, so that it is revoked
// with either; the exchange is audited.
func (s *Issuer) Exchange(ctx context.Context, in ExchangeRequest) (Issued, error) {
	sub, err := s.checker.CheckAccessToken(ctx, in.Subject)
	if Refused(err) || err == nil && (sub.Kind != token.User || sub.AppID != in.AppID) {
		return Issued{}, ErrSubjectInvalid
	}
	if err != nil {
		return Issued{}, err
	}
	var api *storage.API
	if sub.APIID != 0 {
		a, err := s.apis.Lookup(ctx, sub.APIID)
		if err != nil {
			return Issued{}, ErrSubjectInvalid // its API is gone, and the token with it
		}
		api = &a
	}
	if in.Named && (in.Resource == nil) != (api == nil) || in.Named && api != nil && in.Resource.ID != api.ID {
		return Issued{}, ErrOtherResource
	}
	var want scope.Mask
	if in.Scope != "" {
		if api != nil {
			want, err = Scopes(api, strings.Fields(in.Scope))
		} else if want, err = scope.Parse(scope.User, in.Scope); err != nil {
			err = &Error{Kind: Invalid, Field: "scope", Message: err.Error(), Err: ErrUndefinedScope}
		}
		if err != nil {
			return Issued{}, err
		}
	}
	m, err := narrow(sub.Scope, want)
	if err != nil {
		return Issued{}, err
	}
	ttl := s.Lifetimes.Code
	if api != nil {
		ttl = api.TokenTTL
	}
	if !sub.ExpiresAt.IsZero() {
		ttl = min(ttl, sub.ExpiresAt.Sub(s.Now()))
	}
	ttl = ttl.Truncate(time.Second)
	if ttl < time.Second {
		return Issued{}, ErrSubjectExpiring
	}
	family := sub.CodeHash
	if family == nil {
		family = &sub.Hash
	}
	t := storage.Token{Kind: token.User, AppID: sub.AppID, UserID: sub.UserID, Scope: m,
		IP: in.Actor.IP, Flow: storage.FlowExchange, CodeHash: family, Parent: &sub.Hash}
	var raw, text string
	if api == nil {
		raw, _, err = s.issueToken(ctx, t, ttl)
		text = m.Text(scope.User)
	} else {
		t.APIID = api.ID
		exchanged := *api
		exchanged.TokenTTL = ttl
		raw, err = s.forAPI(ctx, t, &exchanged, strconv.FormatInt(sub.UserID, 10), storage.Authn{})
		text = strings.Join(ScopeNames(api, m), " ")
	}
	if err != nil {
		return Issued{}, err
	}
	actor := in.Actor
	actor.UserID = sub.UserID
	s.audit(ctx, actor, storage.AuditEvent{AppID: sub.AppID, Action: storage.AuditTokenExchange, Detail: text})
	return Issued{Grant: Grant{Family: *family, AppID: sub.AppID, UserID: sub.UserID, Scope: m, APIID: sub.APIID}, Access: raw, TTL: ttl, ScopeText: text}, nil
}
