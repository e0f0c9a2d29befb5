// Package dpop checks DPoP proofs (RFC 9449): a JWT of type dpop+jwt,
// signed by the key in its own jwk header, naming the request's method and
// URL, recent, and (when a token is presented with it) bound to that token
// by ath. It says who signed (the key's RFC 7638 thumbprint, jkt) and which
// jti to remember; remembering jtis, to refuse replays, is the caller's.
//
// A client sends the same header (its key) with every proof, so a Verifier
// parses each header once, with go-jose, and remembers the key it names:
// checking a proof is then one signature verification and the claims.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms are the signature algorithms proofs may use.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// Window is how far a proof's iat may be from the server's clock.
const Window = time.Minute

// MaxLen bounds a proof: a key and a few claims.
const MaxLen = 8 << 10

// minRSABits refuses RSA keys too short to mean anything.
const minRSABits = 2048

// Proof is a checked proof.
type Proof struct {
	// JKT is the base64url SHA-256 thumbprint of the signing key.
	JKT string
	// JTI is the proof's unique id, to refuse a second use of.
	JTI string
	IAT time.Time
	// Nonce is the proof's nonce, if it has one: the server's, for the
	// caller to check (RFC 9449 §8).
	Nonce string
}

// Error is a refused proof, with why.
type Error struct{ Reason string }

func (e *Error) Error() string { return "DPoP proof refused: " + e.Reason }

func refuse(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

// ErrReplay is a proof whose jti was seen before.
var ErrReplay = errors.New("DPoP proof refused: its jti was used before")

type claims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// key is what a checked header says: how to verify, and who signed.
type key struct {
	alg jose.SignatureAlgorithm
	pub crypto.PublicKey
	jkt string
}

// Verifier checks proofs. Its zero value is not usable; make one with
// NewVerifier. It is safe for concurrent use.
type Verifier struct {
	mu       sync.Mutex
	size     int
	cur, old map[string]*key // two generations: at most 2×size headers
}

// NewVerifier remembers the keys of up to about size recent headers
// (at least one).
func NewVerifier(size int) *Verifier {
	size = max(size, 1)
	return &Verifier{size: size, cur: map[string]*key{}} // grown as clients come: an idle node holds none
}

// Verify checks proof for a request with method to target (the URL the
// client used, without query or fragment), at now. accessToken is the
// token presented with it ("" at the token endpoint): the proof must then
// carry its hash as ath.
func (v *Verifier) Verify(proof, method, target string, now time.Time, accessToken string) (Proof, error) {
	if proof == "" || len(proof) > MaxLen {
		return Proof{}, refuse("missing or too large")
	}
	header, rest, ok1 := strings.Cut(proof, ".")
	payload, sig64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig64, ".") {
		return Proof{}, refuse("not a signed JWT with an allowed algorithm")
	}
	k, err := v.key(header, proof)
	if err != nil {
		return Proof{}, err
	}
	// The claims first: they cost a microsecond, the signature sixty.
	c, err := checkClaims(payload, method, target, now, accessToken)
	if err != nil {
		return Proof{}, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil || !k.verify(proof[:len(header)+1+len(payload)], sig) {
		return Proof{}, refuse("the signature does not verify with the header's key")
	}
	return Proof{JKT: k.jkt, JTI: c.JTI, IAT: time.Unix(c.IAT, 0), Nonce: c.Nonce}, nil
}

// checkClaims decodes a proof's claims and checks them against the
// request (RFC 9449 §4.3, steps 9 to 12).
func checkClaims(payload, method, target string, now time.Time, accessToken string) (claims, error) {
	var buf [1 << 10]byte
	if base64.RawURLEncoding.DecodedLen(len(payload)) > len(buf) {
		return claims{}, refuse("claims are too large")
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(payload))
	if err != nil {
		return claims{}, refuse("claims are not base64url")
	}
	c, err := parseClaims(buf[:n])
	if err != nil {
		return c, refuse("claims are not JSON")
	}
	switch {
	case c.JTI == "" || len(c.JTI) > 128:
		return c, refuse("jti missing or too long")
	case c.HTM != method:
		return c, refuse("htm %q is not the request's method", c.HTM)
	case !sameURL(c.HTU, target):
		return c, refuse("htu is not this URL")
	}
	iat := time.Unix(c.IAT, 0)
	if c.IAT == 0 || iat.Before(now.Add(-Window)) || iat.After(now.Add(Window)) {
		return c, refuse("iat is not within %v of now", Window)
	}
	if accessToken != "" && !athMatches(c.ATH, accessToken) {
		return c, refuse("ath is not the presented token's hash")
	}
	return c, nil
}

// athMatches reports whether ath is the base64url SHA-256 of accessToken.
func athMatches(ath, accessToken string) bool {
	var got [sha256.Size + 1]byte
	n, err := base64.RawURLEncoding.Decode(got[:], []byte(ath))
	return err == nil && n == sha256.Size && [sha256.Size]byte(got[:sha256.Size]) == sha256.Sum256([]byte(accessToken))
}

// TokenHash is a token's ath: the base64url SHA-256 of it.
func TokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// key returns the key header names, from memory when it was seen before.
// Only headers that passed every check are remembered.
func (v *Verifier) key(header, proof string) (*key, error) {
	v.mu.Lock()
	k, ok := v.cur[header]
	if !ok {
		if k, ok = v.old[header]; ok {
			v.remember(header, k)
		}
	}
	v.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := parseHeader(proof)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.remember(header, k)
	v.mu.Unlock()
	return k, nil
}

// remember puts k in the current generation, which, when full, becomes
// the old one. v.mu is held.
func (v *Verifier) remember(header string, k *key) {
	if len(v.cur) >= v.size {
		v.old, v.cur = v.cur, make(map[string]*key, v.size)
	}
	v.cur[header] = k
}

// parseHeader reads a proof's protected header with go-jose and checks it:
// typ dpop+jwt, an allowed algorithm, and a public key for that algorithm.
func parseHeader(proof string) (*key, error) {
	jws, err := jose.ParseSignedCompact(proof, Algorithms)
	if err != nil {
		return nil, refuse("not a signed JWT with an allowed algorithm")
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse("not exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, refuse("typ is not dpop+jwt")
	}
	// An unencoded payload (RFC 7797) would sign other bytes than the
	// compact form; no proof needs one, or any critical extension.
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, refuse("critical header extensions are not supported")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, refuse("no public jwk in the header")
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if !fits(alg, jwk.Key) {
		return nil, refuse("the header's key is not one for %s", alg)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, refuse("the key has no thumbprint")
	}
	return &key{alg: alg, pub: jwk.Key, jkt: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// fits reports whether pub is a key alg signs with.
func fits(alg jose.SignatureAlgorithm, pub crypto.PublicKey) bool {
	switch alg {
	case jose.ES256, jose.ES384:
		ec, ok := pub.(*ecdsa.PublicKey)
		want := elliptic.P256()
		if alg == jose.ES384 {
			want = elliptic.P384()
		}
		return ok && ec.Curve == want
	case jose.RS256, jose.PS256:
		r, ok := pub.(*rsa.PublicKey)
		return ok && r.N.BitLen() >= minRSABits
	case jose.EdDSA:
		_, ok := pub.(ed25519.PublicKey)
		return ok
	}
	return false
}

// verify checks sig over signed (RFC 7515 §5.2, with the algorithms of
// RFC 7518 §3 and RFC 8037 §3.1).
func (k *key) verify(signed string, sig []byte) bool {
	switch k.alg {
	case jose.ES256:
		h := sha256.Sum256([]byte(signed))
		return verifyEC(k.pub.(*ecdsa.PublicKey), h[:], sig, 32)
	case jose.ES384:
		h := sha512.Sum384([]byte(signed))
		return verifyEC(k.pub.(*ecdsa.PublicKey), h[:], sig, 48)
	case jose.RS256:
		h := sha256.Sum256([]byte(signed))
		return rsa.VerifyPKCS1v15(k.pub.(*rsa.PublicKey), crypto.SHA256, h[:], sig) == nil
	case jose.PS256:
		h := sha256.Sum256([]byte(signed))
		return rsa.VerifyPSS(k.pub.(*rsa.PublicKey), crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case jose.EdDSA:
		return ed25519.Verify(k.pub.(ed25519.PublicKey), []byte(signed), sig)
	}
	return false
}

// verifyEC checks a JWS ECDSA signature: R and S, each size bytes.
func verifyEC(pub *ecdsa.PublicKey, hash, sig []byte, size int) bool {
	if len(sig) != 2*size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	return ecdsa.Verify(pub, hash, r, s)
}

// sameURL compares htu with the request's URL as RFC 9449 §4.3 says:
// scheme and host case-insensitively, no query or fragment.
func sameURL(htu, target string) bool {
	if htu == target && !strings.ContainsAny(htu, "?#") {
		return true
	}
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(target)
	if err1 != nil || err2 != nil || a.RawQuery != "" || a.Fragment != "" {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.EscapedPath() == b.EscapedPath()
}

// Signer makes proofs with one key, as a DPoP client does.
type Signer struct {
	key jose.SigningKey
	jwk jose.JSONWebKey
}

// NewSigner uses key (an *ecdsa.PrivateKey, *rsa.PrivateKey or
// ed25519.PrivateKey) with alg.
func NewSigner(key crypto.Signer, alg jose.SignatureAlgorithm) *Signer {
	return &Signer{key: jose.SigningKey{Algorithm: alg, Key: key}, jwk: jose.JSONWebKey{Key: key.Public()}}
}

// JKT is the thumbprint of the signer's key: what bound tokens carry.
func (s *Signer) JKT() string {
	tp, _ := s.jwk.Thumbprint(crypto.SHA256)
	return base64.RawURLEncoding.EncodeToString(tp)
}

// Proof signs a proof for method and target at iat with jti, bound to
// accessToken when it is not "".
func (s *Signer) Proof(method, target, accessToken, jti string, iat time.Time) (string, error) {
	return s.ProofWithNonce(method, target, accessToken, jti, "", iat)
}

// ProofWithNonce is Proof carrying the server's nonce, when it is not "".
func (s *Signer) ProofWithNonce(method, target, accessToken, jti, nonce string, iat time.Time) (string, error) {
	signer, err := jose.NewSigner(s.key, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return "", err
	}
	c := claims{JTI: jti, HTM: method, HTU: target, IAT: iat.Unix(), Nonce: nonce}
	if accessToken != "" {
		c.ATH = TokenHash(accessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
