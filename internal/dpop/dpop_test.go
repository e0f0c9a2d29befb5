package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func signer(t testing.TB) *Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigner(k, jose.ES256)
}

func TestVerify(t *testing.T) {
	s := signer(t)
	now := time.Unix(1_800_000_000, 0)
	const target = "https://lk.example/method/users.get"
	good, _ := s.Proof("GET", target, "tok", "j1", now)
	p, err := Verify(good, "GET", target, now, "tok")
	if err != nil || p.JKT != s.JKT() || p.JTI != "j1" {
		t.Fatalf("a good proof: %+v %v", p, err)
	}
	other := signer(t)
	forged, _ := other.Proof("GET", target, "tok", "j2", now)
	parts := strings.Split(good, ".")
	fparts := strings.Split(forged, ".")
	mixed := parts[0] + "." + fparts[1] + "." + parts[2] // another payload under the first key's header
	cases := []struct {
		name, proof, method, target, token string
		at                                 time.Time
	}{
		{"another method", good, "POST", target, "tok", now},
		{"another URL", good, "GET", "https://lk.example/method/users.set", "tok", now},
		{"another host", good, "GET", "https://evil.example/method/users.get", "tok", now},
		{"another token", good, "GET", target, "other", now},
		{"too old", good, "GET", target, "tok", now.Add(2 * time.Minute)},
		{"from the future", good, "GET", target, "tok", now.Add(-2 * time.Minute)},
		{"a tampered payload", mixed, "GET", target, "tok", now},
		{"not a JWT", "abc", "GET", target, "tok", now},
		{"empty", "", "GET", target, "tok", now},
		{"too large", strings.Repeat("a", MaxLen+1), "GET", target, "tok", now},
	}
	for _, tc := range cases {
		var e *Error
		if _, err := Verify(tc.proof, tc.method, tc.target, tc.at, tc.token); !errors.As(err, &e) {
			t.Errorf("%s: %v, want a refusal", tc.name, err)
		}
	}
	// Scheme and host compare case-insensitively; the query is not part of htu.
	if _, err := Verify(good, "GET", "HTTPS://LK.EXAMPLE/method/users.get", now, "tok"); err != nil {
		t.Fatalf("case of scheme and host: %v", err)
	}
	withQuery, _ := s.Proof("GET", target+"?v=1", "tok", "j3", now)
	if _, err := Verify(withQuery, "GET", target, now, "tok"); err == nil {
		t.Fatal("an htu with a query was accepted")
	}
}

// The cost of checking a proof: one ES256 verification and a thumbprint.
func BenchmarkVerify(b *testing.B) {
	s := signer(b)
	now := time.Now()
	proof, _ := s.Proof("GET", "https://lk.example/method/users.get", "tok", "j", now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(proof, "GET", "https://lk.example/method/users.get", now, "tok"); err != nil {
			b.Fatal(err)
		}
	}
}
