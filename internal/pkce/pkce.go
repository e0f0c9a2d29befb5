// Package pkce checks Proof Key for Code Exchange values (RFC 7636): the
// shape of challenges and verifiers, and a verifier against its challenge.
// It imports nothing of Latchkey's but the protocol vocabulary.
package pkce

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"

	"latchkey/internal/protocol"
)

// Valid reports whether s has the RFC 7636 §4.1 shape that both verifiers
// and challenges share: 43 to 128 characters of [A-Za-z0-9-._~].
func Valid(s string) bool { return len(s) >= 43 && len(s) <= 128 && validChars(s) }

// MaxVerifier is the longest verifier taken. RFC 7636 §4.1 says 128; VK
// ID takes 256 and its Android SDK sends 171 (vkid-wire.md §2). A longer
// verifier is no weaker, and challenges stay 43 to 128 characters.
const MaxVerifier = 256

// ValidVerifier reports whether s has a verifier's shape: 43 to MaxVerifier
// characters of [A-Za-z0-9-._~].
func ValidVerifier(s string) bool { return len(s) >= 43 && len(s) <= MaxVerifier && validChars(s) }

func validChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// Why a verifier is refused; each message is fit to show the client.
var (
	ErrUnexpected = errors.New("code_verifier given, but the authorization request had no code_challenge")
	ErrMissing    = errors.New("code_verifier is missing")
	ErrShape      = errors.New("code_verifier must be 43 to 256 characters of [A-Za-z0-9-._~]")
	ErrMismatch   = errors.New("code_verifier does not match the code_challenge")
)

// Verify checks verifier against the challenge stored with a code (RFC 7636
// §4.6), in constant time. A code issued without a challenge must be
// redeemed without a verifier (RFC 9700 §4.8.2: PKCE downgrade).
func Verify(challenge, method, verifier string) error {
	if challenge == "" {
		if verifier != "" {
			return ErrUnexpected
		}
		return nil
	}
	if verifier == "" {
		return ErrMissing
	}
	if !ValidVerifier(verifier) {
		return ErrShape
	}
	want := verifier
	if method == protocol.PKCES256 {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) != 1 {
		return ErrMismatch
	}
	return nil
}
