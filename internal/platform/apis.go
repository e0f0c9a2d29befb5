package platform

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// APIs is the one owner of APIs (resource servers): their records and who
// may change them, their scopes by name, the gateway fields only an
// operator sets, their introspection credentials, and finding one by the
// resource a request names.
type APIs struct {
	*core
	store storage.APIs
	// PublicURL is the server's: the built-in API's identifier is
	// <public-url>/method, a gateway API's <public-url>/api/<slug>.
	PublicURL *url.URL
	// builtin and gatewayBase are made of PublicURL once: every check of
	// a token for an API reads them.
	builtin, gatewayBase string

	mu     sync.Mutex
	cached map[string]cachedAPI
	// identifiers is every API's identifier, read at most every apiTTL
	// (nil: to be read): what ForURL tries a URL's prefixes against
	// without storage.
	identifiers atomic.Pointer[identifierSet]
	reading     atomic.Bool
}

type identifierSet struct {
	set  map[string]bool
	read time.Time
}

func newAPIs(c *core, store storage.APIs, public *url.URL) *APIs {
	a := &APIs{core: c, store: store, PublicURL: public}
	if public != nil { // nil for commands that name no API by its URL
		a.builtin, a.gatewayBase = public.JoinPath("/method").String(), public.JoinPath("/api").String()+"/"
	}
	return a
}

type cachedAPI struct {
	api  storage.API
	read time.Time
	ok   bool
}

// apiTTL is how long a node trusts an API it read: changes made elsewhere
// (the command line, another node) show within it, inside the second the
// contract promises; this node's own changes show at once.
const apiTTL = 500 * time.Millisecond

// Defaults and bounds of an API's settings.
const (
	DefaultOpaqueTTL = time.Hour
	DefaultJWTTTL    = 5 * time.Minute
	DefaultAPIRate   = 20
	maxAPIScopes     = 63 // bits of a token's mask, over the API's life
	maxIdentifier    = 2048
)

var (
	apiScopeName = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)
	apiSlug      = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	routeMethod  = regexp.MustCompile(`^(\*|[A-Z]{1,16})$`)
	// reservedScopes are OpenID Connect's and the refresh token's, which
	// stand beside an API's scopes in a request.
	reservedScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}
)

// ScopeSpec is a scope as its API's owner describes it.
type ScopeSpec struct {
	Name string
	EN   string
	RU   string
}

// APISettings are what an API's owner sets (and, for the gateway fields,
// an operator).
type APISettings struct {
	Name        string
	Scopes      []ScopeSpec
	TokenFormat string        // "" is opaque
	TokenTTL    time.Duration // 0 is the format's default
	Rate        int64         // 0 is DefaultAPIRate
	// Upstream, Slug and Routes make it a gateway API: operators only.
	Upstream string
	Slug     string
	Routes   []storage.APIRoute
}

// NewAPI is what `api create` asks for.
type NewAPI struct {
	OwnerID    int64
	Identifier string
	APISettings
}

// APIView is an API with its introspection credentials: the client_id
// always, the secret only when it was just made (creation, rotation).
type APIView struct {
	storage.API
	IntrospectionClientID string
	IntrospectionSecret   string
}

// IntrospectionClientID is the client_id an API introspects with: never a
// string of digits, so never an app's.
func IntrospectionClientID(apiID int64) string { return "api-" + strconv.FormatInt(apiID, 10) }

func apiView(a storage.API, secret string) APIView {
	return APIView{API: a, IntrospectionClientID: IntrospectionClientID(a.ID), IntrospectionSecret: secret}
}

// BuiltinIdentifier is the built-in API's identifier: <public-url>/method.
func (s *APIs) BuiltinIdentifier() string { return s.builtin }

// GatewayIdentifier is a gateway API's identifier: <public-url>/api/<slug>.
func (s *APIs) GatewayIdentifier(slug string) string {
	return s.gatewayBase + slug
}

// CreateAPI validates a, makes its introspection secret and stores it.
// The gateway fields need an operator. A gateway API's identifier is
// derived from its slug when not given.
func (s *APIs) CreateAPI(ctx context.Context, actor Actor, a NewAPI) (APIView, error) {
	if a.Identifier == "" && a.Slug != "" {
		a.Identifier = s.GatewayIdentifier(a.Slug)
	}
	rec := storage.API{Identifier: a.Identifier, OwnerID: a.OwnerID, CreatedAt: s.now()}
	if err := s.validIdentifier(a.Identifier, a.Slug); err != nil {
		return APIView{}, err
	}
	if err := s.apply(actor, &rec, a.APISettings); err != nil {
		return APIView{}, err
	}
	secret := token.NewSecret()
	rec.SecretHash = token.HashOf(secret)
	err := s.store.CreateAPI(ctx, &rec)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return APIView{}, &Error{Kind: Conflict, Field: "identifier", Message: "another API has this identifier or slug"}
	case err != nil:
		return APIView{}, orNotFound(err, "owner: no user with id %d", a.OwnerID)
	}
	s.changed(rec.Identifier)
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditAPICreate, Detail: rec.Identifier})
	return apiView(rec, secret), nil
}

// API returns the API; only its owner (or an operator) may see it.
func (s *APIs) API(ctx context.Context, actor Actor, id int64) (APIView, error) {
	a, err := s.owned(ctx, actor, id)
	return apiView(a, ""), err
}

// APIsOf lists the APIs ownerID owns (every API for 0).
func (s *APIs) APIsOf(ctx context.Context, ownerID int64) ([]APIView, error) {
	all, err := s.store.ListAPIs(ctx, ownerID)
	out := make([]APIView, len(all))
	for i, a := range all {
		out[i] = apiView(a, "")
	}
	return out, err
}

func (s *APIs) owned(ctx context.Context, actor Actor, id int64) (storage.API, error) {
	a, err := s.store.GetAPI(ctx, id)
	if err != nil {
		return a, orNotFound(err, "no API with id %d", id)
	}
	if !actor.Operator && a.OwnerID != actor.UserID {
		return a, &Error{Kind: Forbidden, Message: "this API belongs to another developer"}
	}
	return a, nil
}

// UpdateAPI replaces the API's settings, with the rules of creation.
// Scopes not listed any more are removed (their bit stays reserved);
// changing the gateway fields needs an operator.
func (s *APIs) UpdateAPI(ctx context.Context, actor Actor, id int64, set APISettings) (APIView, error) {
	a, err := s.store.UpdateAPI(ctx, id, func(a *storage.API) error {
		if !actor.Operator && a.OwnerID != actor.UserID {
			return &Error{Kind: Forbidden, Message: "this API belongs to another developer"}
		}
		return s.apply(actor, a, set)
	})
	switch {
	case errors.Is(err, storage.ErrConflict):
		return APIView{}, &Error{Kind: Conflict, Field: "slug", Message: "another API has this slug"}
	case err != nil:
		return APIView{}, orNotFound(err, "no API with id %d", id)
	}
	s.changed(a.Identifier)
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditAPIChange, Detail: a.Identifier})
	return apiView(a, ""), nil
}

// RotateSecret makes a new introspection secret; the old one stops
// working at once.
func (s *APIs) RotateSecret(ctx context.Context, actor Actor, id int64) (APIView, error) {
	secret := token.NewSecret()
	a, err := s.store.UpdateAPI(ctx, id, func(a *storage.API) error {
		if !actor.Operator && a.OwnerID != actor.UserID {
			return &Error{Kind: Forbidden, Message: "this API belongs to another developer"}
		}
		a.SecretHash = token.HashOf(secret)
		return nil
	})
	if err != nil {
		return APIView{}, orNotFound(err, "no API with id %d", id)
	}
	s.changed(a.Identifier)
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditAPISecret, Detail: a.Identifier})
	return apiView(a, secret), nil
}

// DeleteAPI deletes the API; every token for it stops working.
func (s *APIs) DeleteAPI(ctx context.Context, actor Actor, id int64) (APIView, error) {
	a, err := s.owned(ctx, actor, id)
	if err != nil {
		return APIView{}, err
	}
	revoked, err := s.store.DeleteAPI(ctx, id, s.now())
	if err != nil {
		return APIView{}, orNotFound(err, "no API with id %d", id)
	}
	s.revoked(revoked)
	s.changed(a.Identifier)
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditAPIDelete, Detail: a.Identifier + ": tokens revoked: " + itoa(int64(len(revoked)))})
	return apiView(a, ""), nil
}

// validIdentifier checks an API's identifier: an absolute https URI (http
// on loopback), without a fragment, query or credentials, not this
// server's built-in API; a gateway API's is <public-url>/api/<slug>.
func (s *APIs) validIdentifier(id, slug string) error {
	u, err := url.Parse(id)
	switch {
	case id == "" || len(id) > maxIdentifier || !validText(id) || err != nil || !u.IsAbs() || u.Host == "":
		return invalid("identifier", "must be an absolute https URI of at most %d characters", maxIdentifier)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return invalid("identifier", "%q must use https (http only on a loopback host)", id)
	case u.Fragment != "" || strings.Contains(id, "#") || u.User != nil || u.RawQuery != "":
		return invalid("identifier", "%q must have no fragment, query or credentials", id)
	case id == s.BuiltinIdentifier():
		return invalid("identifier", "%q is the built-in API's", id)
	case slug != "" && id != s.GatewayIdentifier(slug):
		return invalid("identifier", "a gateway API's identifier is %s: the URL its clients call", s.GatewayIdentifier(slug))
	}
	return nil
}

// apply validates set and writes it into a.
func (s *APIs) apply(actor Actor, a *storage.API, set APISettings) error {
	set.Name = strings.TrimSpace(set.Name)
	if n := utf8.RuneCountInString(set.Name); n == 0 || n > 100 || !validText(set.Name) || strings.ContainsAny(set.Name, "\r\n") {
		return invalid("name", "must be 1 to 100 characters of text on one line")
	}
	switch set.TokenFormat {
	case "":
		set.TokenFormat = storage.TokenOpaque
	case storage.TokenOpaque, storage.TokenJWT:
	default:
		return invalid("token format", "%q: want opaque or jwt", set.TokenFormat)
	}
	if set.TokenTTL == 0 {
		set.TokenTTL = map[string]time.Duration{storage.TokenOpaque: DefaultOpaqueTTL, storage.TokenJWT: DefaultJWTTTL}[set.TokenFormat]
	}
	if set.TokenTTL < time.Minute || set.TokenTTL > 24*time.Hour || set.TokenTTL%time.Second != 0 {
		return invalid("token ttl", "must be whole seconds from 1m to 24h, got %v", set.TokenTTL)
	}
	if set.Rate < 0 || set.Rate > 1_000_000 {
		return invalid("rate", "must be 0 (the default, %d a second) to 1000000 requests a second", DefaultAPIRate)
	}
	scopes, err := mergeScopes(a.Scopes, set.Scopes)
	if err != nil {
		return err
	}
	gateway := set.Upstream != a.Upstream || set.Slug != a.Slug || !slices.Equal(set.Routes, a.Routes)
	if gateway && !actor.Operator {
		return &Error{Kind: Forbidden, Field: "upstream", Message: "the gateway fields (upstream, slug, routes) are set by the server's operator"}
	}
	if err := validGateway(set, scopes); err != nil {
		return err
	}
	if set.Slug != "" && a.Identifier != s.GatewayIdentifier(set.Slug) {
		return invalid("slug", "a gateway API's identifier is <public-url>/api/<slug>: %s cannot have the slug %q", a.Identifier, set.Slug)
	}
	a.Name, a.Scopes, a.TokenFormat, a.TokenTTL, a.Rate = set.Name, scopes, set.TokenFormat, set.TokenTTL, set.Rate
	a.Upstream, a.Slug, a.Routes = set.Upstream, set.Slug, set.Routes
	return nil
}

// mergeScopes is the API's scopes after its owner lists want: a scope
// kept keeps its bit, a new one takes the next bit never used, a scope not
// listed is removed and its bit stays reserved.
func mergeScopes(had []storage.APIScope, want []ScopeSpec) ([]storage.APIScope, error) {
	seen := map[string]bool{}
	for _, sc := range want {
		switch {
		case !apiScopeName.MatchString(sc.Name):
			return nil, invalid("scope", "%q: a name is a lower-case letter, then up to 63 of a-z 0-9 _ . : -", sc.Name)
		case reservedScopes[sc.Name]:
			return nil, invalid("scope", "%q is OpenID Connect's, asked for beside an API's scopes", sc.Name)
		case seen[sc.Name]:
			return nil, invalid("scope", "%q is listed twice", sc.Name)
		}
		for _, d := range []string{sc.EN, sc.RU} {
			if n := utf8.RuneCountInString(d); n == 0 || n > 200 || !validText(d) || strings.ContainsAny(d, "\r\n") {
				return nil, invalid("scope", "%q needs an English and a Russian description, each 1 to 200 characters on one line", sc.Name)
			}
		}
		seen[sc.Name] = true
	}
	out := make([]storage.APIScope, 0, len(had)+len(want))
	next := 0
	kept := map[string]bool{}
	for _, h := range had {
		next = max(next, h.Bit+1)
		h.Removed = true
		for _, sc := range want {
			if sc.Name == h.Name {
				h.EN, h.RU, h.Removed = sc.EN, sc.RU, false
				kept[sc.Name] = true
			}
		}
		out = append(out, h)
	}
	for _, sc := range want {
		if kept[sc.Name] {
			continue
		}
		if next >= maxAPIScopes {
			return nil, invalid("scope", "an API has at most %d scopes over its life (a removed scope keeps its place)", maxAPIScopes)
		}
		out = append(out, storage.APIScope{Name: sc.Name, Bit: next, EN: sc.EN, RU: sc.RU})
		next++
	}
	return out, nil
}

// validGateway checks the gateway fields: an upstream and a slug
// together, route rules naming the API's scopes.
func validGateway(set APISettings, scopes []storage.APIScope) error {
	if (set.Upstream == "") != (set.Slug == "") {
		return invalid("upstream", "a gateway API needs both an upstream and a slug")
	}
	if set.Slug != "" && !apiSlug.MatchString(set.Slug) {
		return invalid("slug", "%q: 1 to 32 of a-z 0-9 -", set.Slug)
	}
	if set.Upstream != "" {
		u, err := url.Parse(set.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || !validText(set.Upstream) {
			return invalid("upstream", "%q must be an absolute http or https URL", set.Upstream)
		}
	}
	for _, r := range set.Routes {
		if !routeMethod.MatchString(r.Method) || !strings.HasPrefix(r.Prefix, "/") || !validText(r.Prefix) || len(r.Prefix) > 1024 {
			return invalid("route", "%q %q: want a method (or *) and a path prefix starting with /", r.Method, r.Prefix)
		}
		if _, ok := scopeBit(scopes, r.Scope); !ok {
			return invalid("route", "%q is not one of the API's scopes", r.Scope)
		}
	}
	return nil
}

func scopeBit(scopes []storage.APIScope, name string) (int, bool) {
	for _, sc := range scopes {
		if sc.Name == name && !sc.Removed {
			return sc.Bit, true
		}
	}
	return 0, false
}

// ErrUnknownResource refuses a resource that names no API (invalid_target).
var ErrUnknownResource = &Error{Kind: Invalid, Field: "resource", Message: "resource names no API of this server"}

// ErrUndefinedScope refuses a scope the API does not define (invalid_scope).
var ErrUndefinedScope = &Error{Kind: Invalid, Field: "scope", Message: "a scope the API does not define"}

// Resource is the API a request's resource names: nil for the built-in
// API (no resource, or <public-url>/method), ErrUnknownResource for none.
// Records are read through a cache of apiTTL.
func (s *APIs) Resource(ctx context.Context, resource string) (*storage.API, error) {
	if resource == "" || resource == s.BuiltinIdentifier() {
		return nil, nil
	}
	if len(resource) > maxIdentifier || !validText(resource) {
		return nil, ErrUnknownResource
	}
	now := time.Now()
	s.mu.Lock()
	c, hit := s.cached[resource]
	s.mu.Unlock()
	if !hit || now.Sub(c.read) > apiTTL {
		a, err := s.store.APIByIdentifier(ctx, resource)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		c = cachedAPI{api: a, read: now, ok: err == nil}
		s.mu.Lock()
		if s.cached == nil || len(s.cached) >= 10_000 {
			s.cached = map[string]cachedAPI{}
		}
		s.cached[resource] = c
		s.mu.Unlock()
	}
	if !c.ok {
		return nil, ErrUnknownResource
	}
	a := c.api
	return &a, nil
}

// changed drops an API from this node's cache.
func (s *APIs) changed(identifier string) {
	s.mu.Lock()
	delete(s.cached, identifier)
	s.mu.Unlock()
	s.identifiers.Store(nil)
}

// MaxURLSegments bounds the prefixes of a URL's path ForURL tries: the
// work of one request.
const MaxURLSegments = 16

// ForURL is the API whose identifier is u's longest prefix ending at a
// path segment (its scheme, host and at most MaxURLSegments segments), nil
// when none is. The prefixes are tried against every API's identifier in
// memory, read at most every apiTTL, so a URL that names no API costs no
// storage read.
func (s *APIs) ForURL(ctx context.Context, u *url.URL) (*storage.API, error) {
	ids, err := s.identifierSet(ctx)
	if err != nil {
		return nil, err
	}
	base := u.Scheme + "://" + u.Host
	segments := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segments) > MaxURLSegments {
		segments = segments[:MaxURLSegments]
	}
	for n := len(segments); n >= 0; n-- {
		candidate := base
		if n > 0 {
			candidate += "/" + strings.Join(segments[:n], "/")
		}
		if !ids.set[candidate] {
			continue
		}
		a, err := s.Resource(ctx, candidate)
		if errors.Is(err, ErrUnknownResource) {
			continue // deleted since the set was read
		}
		return a, err
	}
	return nil, nil
}

// identifierSet is every API's identifier, read again when older than
// apiTTL by one caller while the others use what was read before.
func (s *APIs) identifierSet(ctx context.Context) (*identifierSet, error) {
	ids := s.identifiers.Load()
	if ids != nil && (time.Since(ids.read) <= apiTTL || !s.reading.CompareAndSwap(false, true)) {
		return ids, nil
	}
	if ids != nil {
		defer s.reading.Store(false)
	}
	read := time.Now()
	list, err := s.store.ListAPIs(ctx, 0)
	if err != nil {
		if ids != nil {
			return ids, nil // the last set, until storage answers again
		}
		return nil, err
	}
	fresh := &identifierSet{set: make(map[string]bool, len(list)), read: read}
	for _, a := range list {
		fresh.set[a.Identifier] = true
	}
	s.identifiers.Store(fresh)
	return fresh, nil
}

// Scopes is the mask of the API's scopes named in names (space-separated),
// ErrUndefinedScope when one is not the API's.
func Scopes(a *storage.API, names []string) (scope.Mask, error) {
	var m scope.Mask
	for _, n := range names {
		bit, ok := scopeBit(a.Scopes, n)
		if !ok {
			return 0, &Error{Kind: Invalid, Field: "scope", Message: fmt.Sprintf("%q is not a scope of %s", n, a.Identifier), Err: ErrUndefinedScope}
		}
		m |= 1 << bit
	}
	return m, nil
}

// ScopeNames are the names of the API's scopes in m, in the API's order;
// a removed scope grants nothing, and is not named.
func ScopeNames(a *storage.API, m scope.Mask) []string {
	var out []string
	for _, sc := range a.Scopes {
		if m&(1<<sc.Bit) != 0 && !sc.Removed {
			out = append(out, sc.Name)
		}
	}
	return out
}

// ErrBadAPICredentials refuses an introspection by an API with a wrong
// client_id or secret.
var ErrBadAPICredentials = &Error{Kind: Invalid, Field: "client_id", Message: "the API's introspection credentials are wrong"}

// AuthenticateAPI checks an API's introspection credentials: clientID is
// IntrospectionClientID's, secret its current secret (compared in
// constant time, as a hash: secrets are random).
func (s *APIs) AuthenticateAPI(ctx context.Context, clientID, secret string) (storage.API, error) {
	rest, ok := strings.CutPrefix(clientID, "api-")
	id, err := strconv.ParseInt(rest, 10, 64)
	if !ok || err != nil || id <= 0 {
		return storage.API{}, ErrBadAPICredentials
	}
	a, err := s.store.GetAPI(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return a, ErrBadAPICredentials
	case err != nil:
		return a, err
	}
	h := token.HashOf(secret)
	if subtle.ConstantTimeCompare(h[:], a.SecretHash[:]) != 1 {
		return a, ErrBadAPICredentials
	}
	return a, nil
}

// Lookup is the API with that id, for the token endpoints (no actor).
func (s *APIs) Lookup(ctx context.Context, id int64) (storage.API, error) {
	a, err := s.store.GetAPI(ctx, id)
	return a, orNotFound(err, "no API with id %d", id)
}

// maxCounted bounds LiveTokens: a page says "1000 or more".
const maxCounted = 1000

// LiveTokens counts the live tokens for the API, up to maxCounted (more
// reads as maxCounted); only its owner (or an operator) may.
func (s *APIs) LiveTokens(ctx context.Context, actor Actor, id int64) (int, error) {
	if _, err := s.owned(ctx, actor, id); err != nil {
		return 0, err
	}
	live, err := s.tokens.ListTokens(ctx, storage.TokenFilter{APIID: id, LiveOnly: true, Limit: maxCounted})
	n := 0
	for _, t := range live {
		if !t.Expired(s.Now()) {
			n++
		}
	}
	return n, err
}
