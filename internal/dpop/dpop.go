// Package dpop checks DPoP proofs (RFC 9449): a JWT of type dpop+jwt,
// signed by the key in its own jwk header, naming the request's method and
// URL, recent, and (when a token is presented with it) bound to that token
// by ath. It says who signed (the key's RFC 7638 thumbprint, jkt) and which
// jti to remember; remembering jtis, to refuse replays, is the caller's.
package dpop

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms are the signature algorithms proofs may use.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// Window is how far a proof's iat may be from the server's clock.
const Window = time.Minute

// MaxLen bounds a proof: a key and a few claims.
const MaxLen = 8 << 10

// Proof is a checked proof.
type Proof struct {
	// JKT is the base64url SHA-256 thumbprint of the signing key.
	JKT string
	// JTI is the proof's unique id, to refuse a second use of.
	JTI string
	IAT time.Time
}

// Error is a refused proof, with why.
type Error struct{ Reason string }

func (e *Error) Error() string { return "DPoP proof refused: " + e.Reason }

func refuse(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

type claims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Verify checks proof for a request with method to target (the URL the
// client used, without query or fragment), at now. accessToken is the
// token presented with it ("" at the token endpoint): the proof must then
// carry its hash as ath.
func Verify(proof, method, target string, now time.Time, accessToken string) (Proof, error) {
	if proof == "" || len(proof) > MaxLen {
		return Proof{}, refuse("missing or too large")
	}
	jws, err := jose.ParseSignedCompact(proof, Algorithms)
	if err != nil {
		return Proof{}, refuse("not a signed JWT with an allowed algorithm")
	}
	if len(jws.Signatures) != 1 {
		return Proof{}, refuse("not exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return Proof{}, refuse("typ is not dpop+jwt")
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.Valid() || !h.JSONWebKey.IsPublic() {
		return Proof{}, refuse("no public jwk in the header")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return Proof{}, refuse("the signature does not verify with the header's key")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Proof{}, refuse("claims are not JSON")
	}
	switch {
	case c.JTI == "" || len(c.JTI) > 128:
		return Proof{}, refuse("jti missing or too long")
	case c.HTM != method:
		return Proof{}, refuse("htm %q is not the request's method", c.HTM)
	case !sameURL(c.HTU, target):
		return Proof{}, refuse("htu is not this URL")
	}
	iat := time.Unix(c.IAT, 0)
	if c.IAT == 0 || iat.Before(now.Add(-Window)) || iat.After(now.Add(Window)) {
		return Proof{}, refuse("iat is not within %v of now", Window)
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return Proof{}, refuse("ath is not the presented token's hash")
		}
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, refuse("the key has no thumbprint")
	}
	return Proof{JKT: base64.RawURLEncoding.EncodeToString(tp), JTI: c.JTI, IAT: iat}, nil
}

// sameURL compares htu with the request's URL as RFC 9449 §4.3 says:
// scheme and host case-insensitively, no query or fragment.
func sameURL(htu, target string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(target)
	if err1 != nil || err2 != nil || a.RawQuery != "" || a.Fragment != "" {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.EscapedPath() == b.EscapedPath()
}

// ErrReplay is a proof whose jti was seen before.
var ErrReplay = errors.New("DPoP proof refused: its jti was used before")

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
	signer, err := jose.NewSigner(s.key, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return "", err
	}
	c := claims{JTI: jti, HTM: method, HTU: target, IAT: iat.Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
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
