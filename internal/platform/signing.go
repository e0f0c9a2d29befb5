package platform

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"latchkey/internal/storage"
)

// Signing is the one owner of the keys id_tokens are signed with: RS256,
// private parts sealed in storage. The current key is the newest one not
// retired; every key not retired is in the JWKS, so tokens signed before a
// rotation verify until their key is retired. Nodes reread the keys every
// few seconds, so a rotation from the CLI reaches them soon.
type Signing struct {
	*core
	store storage.Credentials

	mu     sync.Mutex
	keys   []signingKey // published, newest first
	loaded time.Time
	// loading is held while the keys are read (and the first one made):
	// concurrent first uses make one key, not one each, and while one call
	// rereads the keys the others go on with the ones they have.
	loading sync.Mutex
}

type signingKey struct {
	storage.SigningKey
	// private is an *rsa.PrivateKey (RS256) or an *ecdsa.PrivateKey on
	// P-256 (ES256).
	private crypto.Signer
}

const keysReload = 5 * time.Second

// SigningKeyInfo is a key as `latchkey keys list` prints it.
type SigningKeyInfo struct {
	KID       string `json:"kid"`
	Algorithm string `json:"alg"`
	CreatedAt int64  `json:"created"`
	Current   bool   `json:"current"`
	Retired   bool   `json:"retired,omitempty"`
}

// List returns every key, newest first, with the current one marked.
func (s *Signing) List(ctx context.Context) ([]SigningKeyInfo, error) {
	all, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SigningKeyInfo, 0, len(all))
	current := map[string]bool{}
	for _, k := range all {
		info := SigningKeyInfo{KID: k.KID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt.Unix(), Retired: !k.RetiredAt.IsZero()}
		if !info.Retired && !current[k.Algorithm] {
			info.Current, current[k.Algorithm] = true, true
		}
		out = append(out, info)
	}
	return out, nil
}

// Rotate adds a new current RS256 key; the old ones stay published.
func (s *Signing) Rotate(ctx context.Context, actor Actor) (SigningKeyInfo, error) {
	return s.RotateAlg(ctx, actor, string(jose.RS256))
}

// ErrKeyAlgorithm refuses a key algorithm other than RS256 and ES256.
var ErrKeyAlgorithm = &Error{Kind: Invalid, Field: "alg", Message: "a signing key is RS256 or ES256"}

// RotateAlg adds a new current key of alg: RS256 (2048-bit RSA; id_tokens
// and, while there is no ES256 key, JWT access tokens) or ES256 (P-256;
// JWT access tokens, whose signing then costs a tenth as much).
func (s *Signing) RotateAlg(ctx context.Context, actor Actor, alg string) (SigningKeyInfo, error) {
	var priv crypto.Signer
	var err error
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return SigningKeyInfo{}, ErrKeyAlgorithm
	}
	if err != nil {
		return SigningKeyInfo{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKeyInfo{}, err
	}
	var id [12]byte
	rand.Read(id[:])
	// The newest key is the current one: a new key is always newer than
	// every key before it, whatever the clock says.
	created := s.Now().UTC().Truncate(time.Millisecond)
	existing, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return SigningKeyInfo{}, err
	}
	if len(existing) > 0 && !created.After(existing[0].CreatedAt) {
		created = existing[0].CreatedAt.Add(time.Millisecond)
	}
	k := storage.SigningKey{KID: base64.RawURLEncoding.EncodeToString(id[:]), Algorithm: alg, Sealed: s.Keys.Seal(der), CreatedAt: created}
	if err := s.store.CreateSigningKey(ctx, k); err != nil {
		return SigningKeyInfo{}, err
	}
	s.forget()
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditKeyRotate, Detail: k.KID})
	return SigningKeyInfo{KID: k.KID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt.Unix(), Current: true}, nil
}

// ErrCurrentKey refuses retiring the RS256 key that signs id_tokens:
// rotate first. (The current ES256 key may go: JWT access tokens are then
// signed RS256.)
var ErrCurrentKey = &Error{Kind: Conflict, Message: "this is the current signing key: rotate first (latchkey keys rotate), then retire it"}

// Retire takes a key out of the JWKS: tokens it signed stop verifying.
func (s *Signing) Retire(ctx context.Context, actor Actor, kid string) error {
	keys, err := s.List(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.KID == kid && k.Current && k.Algorithm == string(jose.RS256) {
			return ErrCurrentKey
		}
	}
	if err := s.store.RetireSigningKey(ctx, kid, s.Now()); err != nil {
		return orNotFound(err, "no published signing key %q", kid)
	}
	s.forget()
	s.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditKeyRetire, Detail: kid})
	return nil
}

func (s *Signing) forget() {
	s.mu.Lock()
	s.loaded = time.Time{}
	s.mu.Unlock()
}

// published returns the published keys, newest first, making the first
// key when there is none.
func (s *Signing) published(ctx context.Context) ([]signingKey, error) {
	keys, fresh := s.cached()
	if fresh {
		return keys, nil
	}
	if keys == nil {
		s.loading.Lock()
	} else if !s.loading.TryLock() {
		return keys, nil // another call is rereading them
	}
	defer s.loading.Unlock()
	if keys, fresh := s.cached(); fresh {
		return keys, nil // read while this call waited
	}
	keys, err := s.load(ctx)
	if err == nil && !hasAlg(keys, jose.RS256) {
		if _, err = s.Rotate(ctx, Actor{IP: "first use"}); err == nil {
			keys, err = s.load(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.keys, s.loaded = keys, time.Now()
	s.mu.Unlock()
	return keys, nil
}

// cached returns the keys last read (nil before the first read), and
// whether they are recent enough not to be read again.
func (s *Signing) cached() ([]signingKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys, s.keys != nil && time.Since(s.loaded) < keysReload
}

// load reads and opens the published keys.
func (s *Signing) load(ctx context.Context) ([]signingKey, error) {
	all, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	var keys []signingKey
	for _, k := range all {
		if !k.RetiredAt.IsZero() {
			continue
		}
		der, err := s.Keys.Open(k.Sealed)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		signer, ok := priv.(crypto.Signer)
		_, isRSA := priv.(*rsa.PrivateKey)
		ec, isEC := priv.(*ecdsa.PrivateKey)
		if err != nil || !ok || k.Algorithm == string(jose.RS256) && !isRSA ||
			k.Algorithm == string(jose.ES256) && (!isEC || ec.Curve != elliptic.P256()) {
			return nil, fmt.Errorf("signing key %s: not a %s key", k.KID, k.Algorithm)
		}
		keys = append(keys, signingKey{SigningKey: k, private: signer})
	}
	return keys, nil
}

// JWKS is the public half of every published key.
func (s *Signing) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	keys, err := s.published(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = jose.JSONWebKey{Key: k.private.Public(), KeyID: k.KID, Algorithm: k.Algorithm, Use: "sig"}
	}
	return set, nil
}

// Sign signs claims as a JWT (typ JWT: an id_token) with the current key.
func (s *Signing) Sign(ctx context.Context, claims any) (string, error) {
	return s.sign(ctx, "JWT", claims)
}

// sign signs claims with the current key of the first of algs that has
// one, with typ in the header (RFC 9068 access tokens are at+jwt).
func (s *Signing) sign(ctx context.Context, typ jose.ContentType, claims any, algs ...jose.SignatureAlgorithm) (string, error) {
	keys, err := s.published(ctx)
	if err != nil {
		return "", err
	}
	if len(algs) == 0 {
		algs = []jose.SignatureAlgorithm{jose.RS256}
	}
	var k *signingKey
	for _, alg := range algs {
		for i := range keys {
			if keys[i].Algorithm == string(alg) {
				k = &keys[i]
				break
			}
		}
		if k != nil {
			break
		}
	}
	if k == nil {
		return "", errors.New("no signing key")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jose.JSONWebKey{Key: k.private, KeyID: k.KID}},
		(&jose.SignerOptions{}).WithType(typ))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// ErrBadJWT refuses a JWT that is not one of ours: malformed, signed by
// no published key, or tampered with.
var ErrBadJWT = errors.New("not a JWT signed by this server")

// Verify checks that raw is a JWT signed by one of the published keys and
// decodes its claims into out. What the claims must say is the caller's.
func (s *Signing) Verify(ctx context.Context, raw string, out any) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return ErrBadJWT
	}
	keys, err := s.published(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.KID == tok.Headers[0].KeyID && k.Algorithm == tok.Headers[0].Algorithm {
			if tok.Claims(k.private.Public(), out) != nil {
				return ErrBadJWT
			}
			return nil
		}
	}
	return ErrBadJWT
}

// hasAlg reports whether one of keys is of alg.
func hasAlg(keys []signingKey, alg jose.SignatureAlgorithm) bool {
	for _, k := range keys {
		if k.Algorithm == string(alg) {
			return true
		}
	}
	return false
}
