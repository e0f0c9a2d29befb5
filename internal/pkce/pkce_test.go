package pkce

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	s256 := base64.RawURLEncoding.EncodeToString(sum[:])
	tests := []struct {
		name                        string
		challenge, method, verifier string
		want                        error
	}{
		{"no challenge, no verifier", "", "", "", nil},
		{"a verifier without a challenge is a downgrade", "", "", verifier, ErrUnexpected},
		{"a challenge needs a verifier", s256, "S256", "", ErrMissing},
		{"a short verifier is refused by shape", s256, "S256", "short", ErrShape},
		{"S256 matches", s256, "S256", verifier, nil},
		{"S256 with another verifier", s256, "S256", strings.Repeat("w", 43), ErrMismatch},
		{"plain matches itself", verifier, "plain", verifier, nil},
		{"plain does not match its hash", s256, "plain", verifier, ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.challenge, tc.method, tc.verifier); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzValid(f *testing.F) {
	f.Add(strings.Repeat("a", 43))
	f.Add("~._-")
	f.Fuzz(func(t *testing.T, s string) {
		if !Valid(s) {
			return
		}
		if len(s) < 43 || len(s) > 128 || strings.ContainsFunc(s, func(r rune) bool { return r > 127 }) {
			t.Fatalf("Valid(%q) accepted a value outside RFC 7636 §4.1", s)
		}
	})
}
