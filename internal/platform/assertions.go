package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// JWTBearer is the client_assertion_type of private_key_jwt (RFC 7523 §2.2).
const JWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionAlgorithms are the algorithms a client assertion may be signed
// with: never none, never an HMAC (whose key would be the client's public
// key, which anyone has).
var AssertionAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// Limits of client assertions and the key sets they are checked with.
const (
	maxAssertionLife = time.Hour
	assertionSkew    = time.Minute
	maxKeySet        = 64 << 10
	keySetTTL        = 5 * time.Minute
	// keySetRefetch bounds how often an unknown kid fetches a key set
	// again: the work an assertion from anyone may cause.
	keySetRefetch = 30 * time.Second
)

// ErrBadAssertion refuses a client assertion; Reason says why.
type ErrBadAssertion struct{ Reason string }

func (e *ErrBadAssertion) Error() string { return "client assertion: " + e.Reason }

func badAssertion(format string, args ...any) error {
	return &ErrBadAssertion{fmt.Sprintf(format, args...)}
}

// Assertions authenticates clients by private_key_jwt (RFC 7523 §2.2):
// an assertion signed with a key of the app's JWK Set, inline or at its
// jwks_uri (fetched through the one Outbound client, kept keySetTTL,
// fetched again for an unknown kid at most every keySetRefetch).
type Assertions struct {
	*core
	apps      *Apps
	documents *ClientDocuments // for clients whose client_id is a document's URL
	out       *Outbound
	proofs    interface {
		UseProof(ctx context.Context, hash token.Hash, expires time.Time) error
	}

	mu   sync.Mutex
	sets map[string]fetchedKeySet // by jwks_uri
}

type fetchedKeySet struct {
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// Authenticate checks assertion, sent with clientID ("" when the form had
// none), for an endpoint whose URLs are audiences (the issuer, the token
// endpoint): the app it authenticates, or ErrBadAssertion,
// ErrUnknownClient.
func (s *Assertions) Authenticate(ctx context.Context, clientID, assertion string, audiences []string) (storage.App, error) {
	parsed, err := jwt.ParseSigned(assertion, AssertionAlgorithms)
	if err != nil {
		return storage.App{}, badAssertion("not a JWT signed with one of RS256, PS256, ES256, EdDSA: %v", err)
	}
	var unverified jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return storage.App{}, badAssertion("its claims are not JSON")
	}
	if unverified.Issuer == "" || unverified.Issuer != unverified.Subject {
		return storage.App{}, badAssertion("iss and sub must both be the client_id")
	}
	if clientID != "" && clientID != unverified.Issuer {
		return storage.App{}, badAssertion("iss is not the client_id sent with it")
	}
	app, err := s.client(ctx, unverified.Issuer)
	if err != nil {
		return storage.App{}, err
	}
	if app.AuthMethod != AuthPrivateKey {
		return storage.App{}, badAssertion("this client does not authenticate with private_key_jwt")
	}
	kid := parsed.Headers[0].KeyID
	keys, err := s.keys(ctx, app, kid, false)
	if err != nil {
		return storage.App{}, err
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if parsed.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified && app.JWKSURI != "" {
		// The client may have rotated its keys: read them again, once.
		if keys, err = s.keys(ctx, app, kid, true); err != nil {
			return storage.App{}, err
		}
		for _, k := range keys {
			if parsed.Claims(k.Key, &claims) == nil {
				verified = true
				break
			}
		}
	}
	if !verified {
		return storage.App{}, badAssertion("its signature is not by a key of the client's")
	}
	now := s.now()
	switch {
	case claims.Expiry == nil:
		return storage.App{}, badAssertion("exp is missing")
	case !now.Before(claims.Expiry.Time()):
		return storage.App{}, badAssertion("it has expired")
	case claims.Expiry.Time().After(now.Add(maxAssertionLife + assertionSkew)):
		return storage.App{}, badAssertion("exp is more than an hour ahead")
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionSkew)):
		return storage.App{}, badAssertion("it is not valid yet (nbf)")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionSkew)):
		return storage.App{}, badAssertion("it was issued in the future (iat)")
	case claims.ID == "" || len(claims.ID) > 256:
		return storage.App{}, badAssertion("jti is missing or longer than 256 bytes")
	}
	// aud names this server: the issuer or the endpoint, as a string or a
	// one-element array (an array naming anything else is refused).
	if len(claims.Audience) != 1 || !slices.Contains(audiences, claims.Audience[0]) {
		return storage.App{}, badAssertion("aud must be this server's issuer or the endpoint's URL, alone")
	}
	// Once across every node, until it expires.
	err = s.proofs.UseProof(ctx, token.HashOf("client assertion\x00"+unverified.Issuer+"\x00"+claims.ID), claims.Expiry.Time().Add(assertionSkew))
	if errors.Is(err, storage.ErrConflict) {
		return storage.App{}, badAssertion("its jti was used before")
	}
	if err != nil {
		return storage.App{}, err
	}
	return app, nil
}

// client is the app a client_id names: an app's id, or the URL of a client
// metadata document.
func (s *Assertions) client(ctx context.Context, clientID string) (storage.App, error) {
	if IsDocumentURL(clientID) && s.documents != nil {
		app, err := s.documents.App(ctx, clientID)
		var de *ErrClientDocument
		if errors.As(err, &de) {
			return app, badAssertion("%s", de.Error())
		}
		return app, err
	}
	id, err := strconv.ParseInt(clientID, 10, 64)
	if err != nil || id <= 0 {
		return storage.App{}, ErrUnknownClient
	}
	app, err := s.apps.lookupApp(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.App{}, ErrUnknownClient
	}
	return app, err
}

// keys are the app's public keys for kid (every key when kid is ""):
// inline, or from its jwks_uri (fetched when not kept, stale, or, with
// again, when kid is not among them and they were fetched long enough ago).
func (s *Assertions) keys(ctx context.Context, app storage.App, kid string, again bool) ([]jose.JSONWebKey, error) {
	if app.JWKS != "" {
		set, err := ParseKeySet([]byte(app.JWKS))
		if err != nil {
			return nil, err
		}
		return pick(set, kid), nil
	}
	if app.JWKSURI == "" {
		return nil, badAssertion("the client has no keys")
	}
	s.mu.Lock()
	kept, ok := s.sets[app.JWKSURI]
	s.mu.Unlock()
	now := s.now()
	stale := !ok || now.Sub(kept.fetched) > keySetTTL
	if again && ok && now.Sub(kept.fetched) < keySetRefetch {
		return pick(kept.keys, kid), nil
	}
	if stale || again {
		set, err := s.fetch(ctx, app.JWKSURI)
		if err != nil {
			return nil, err
		}
		kept = fetchedKeySet{keys: set, fetched: now}
		s.mu.Lock()
		if s.sets == nil || len(s.sets) > 10_000 {
			s.sets = map[string]fetchedKeySet{}
		}
		s.sets[app.JWKSURI] = kept
		s.mu.Unlock()
	}
	return pick(kept.keys, kid), nil
}

func pick(set jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

// fetch reads the key set at uri.
func (s *Assertions) fetch(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	if err := s.out.CheckURL(uri); err != nil {
		return jose.JSONWebKeySet{}, badAssertion("the client's jwks_uri is not reachable from this server")
	}
	ctx, cancel := context.WithTimeout(ctx, documentTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", uri, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, badAssertion("the client's jwks_uri is not a URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.out.Client().Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, badAssertion("the client's jwks_uri could not be fetched: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, badAssertion("the client's jwks_uri answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySet+1))
	if err != nil || len(body) > maxKeySet {
		return jose.JSONWebKeySet{}, badAssertion("the client's key set could not be read within 64 KB")
	}
	return ParseKeySet(body)
}

// ParseKeySet reads a JWK Set of public signing keys: RSA, EC or OKP,
// never a private or symmetric key.
func ParseKeySet(raw []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return set, badAssertion("the key set is not a JWK Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return set, badAssertion("the key set has no keys")
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			return set, badAssertion("a key of the set is not a public key (RSA, EC or Ed25519)")
		}
		if k.Use != "" && k.Use != "sig" {
			return set, badAssertion("a key of the set is not for signatures (use %q)", k.Use)
		}
	}
	return set, nil
}
