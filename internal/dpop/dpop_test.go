package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
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
	v := NewVerifier(16)
	s := signer(t)
	now := time.Unix(1_800_000_000, 0)
	const target = "https://lk.example/method/users.get"
	good, _ := s.Proof("GET", target, "tok", "j1", now)
	p, err := v.Verify(good, "GET", target, now, "tok")
	if err != nil || p.JKT != s.JKT() || p.JTI != "j1" {
		t.Fatalf("a good proof: %+v %v", p, err)
	}
	other := signer(t)
	forged, _ := other.Proof("GET", target, "tok", "j2", now)
	parts := strings.Split(good, ".")
	fparts := strings.Split(forged, ".")
	mixed := parts[0] + "." + fparts[1] + "." + parts[2] // another payload under the first key's header
	stolenSig := parts[0] + "." + parts[1] + "." + fparts[2]
	cases := []struct {
		name, proof, method, target, token string
		at                                 time.Time
	}{
		{"another method", good, "POST", target, "tok", now},
		{"another URL", good, "GET", "https://lk.example/method/users.set", "tok", now},
		{"another host", good, "GET", "https://evil.example/method/users.get", "tok", now},
		{"another token", good, "GET", target, "other", now},
		{"no ath when a token is presented", mustProof(t, s, "GET", target, "", "j4", now), "GET", target, "tok", now},
		{"too old", good, "GET", target, "tok", now.Add(2 * time.Minute)},
		{"from the future", good, "GET", target, "tok", now.Add(-2 * time.Minute)},
		{"a tampered payload under a known header", mixed, "GET", target, "tok", now},
		{"another key's signature under a known header", stolenSig, "GET", target, "tok", now},
		{"no signature", parts[0] + "." + parts[1] + ".", "GET", target, "tok", now},
		{"four parts", good + ".x", "GET", target, "tok", now},
		{"not a JWT", "abc", "GET", target, "tok", now},
		{"empty", "", "GET", target, "tok", now},
		{"too large", strings.Repeat("a", MaxLen+1), "GET", target, "tok", now},
	}
	for _, tc := range cases {
		var e *Error
		if _, err := v.Verify(tc.proof, tc.method, tc.target, tc.at, tc.token); !errors.As(err, &e) {
			t.Errorf("%s: %v, want a refusal", tc.name, err)
		}
	}
	// Scheme and host compare case-insensitively; the query is not part of htu.
	if _, err := v.Verify(good, "GET", "HTTPS://LK.EXAMPLE/method/users.get", now, "tok"); err != nil {
		t.Fatalf("case of scheme and host: %v", err)
	}
	withQuery, _ := s.Proof("GET", target+"?v=1", "tok", "j3", now)
	if _, err := v.Verify(withQuery, "GET", target+"?v=1", now, "tok"); err == nil {
		t.Fatal("an htu with a query was accepted")
	}
}

func mustProof(t *testing.T, s *Signer, method, target, tok, jti string, at time.Time) string {
	t.Helper()
	p, err := s.Proof(method, target, tok, jti, at)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every algorithm the metadata lists verifies, and the key a proof names
// is its thumbprint whether its header was seen before or not.
func TestVerifyEveryAlgorithm(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	signers := map[jose.SignatureAlgorithm]crypto.Signer{
		jose.ES256: p256, jose.ES384: p384, jose.RS256: rsaKey, jose.PS256: rsaKey, jose.EdDSA: edKey,
	}
	if len(signers) != len(Algorithms) {
		t.Fatalf("the test covers %d algorithms, Algorithms lists %d", len(signers), len(Algorithms))
	}
	now := time.Unix(1_800_000_000, 0)
	const target = "https://lk.example/access_token"
	v := NewVerifier(2) // small: the third key pushes out the first
	for round := range 2 {
		for alg, key := range signers {
			s := NewSigner(key, alg)
			proof := mustProof(t, s, "POST", target, "", "j", now)
			p, err := v.Verify(proof, "POST", target, now, "")
			if err != nil || p.JKT != s.JKT() {
				t.Errorf("%s (round %d): %+v %v", alg, round, p, err)
			}
			parts := strings.Split(proof, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 1
			bad := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			if _, err := v.Verify(bad, "POST", target, now, ""); err == nil {
				t.Errorf("%s (round %d): a flipped signature bit was accepted", alg, round)
			}
		}
	}
}

// handMade signs header and claims as given, with ES256.
func handMade(t *testing.T, key *ecdsa.PrivateKey, header, claims string) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Headers a client might send and that must not pass.
func TestVerifyRefusesHeaders(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: key.Public()}
	pubJSON, _ := pub.MarshalJSON()
	priv := jose.JSONWebKey{Key: key}
	privJSON, _ := priv.MarshalJSON()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaJSON, _ := (&jose.JSONWebKey{Key: rsaKey.Public()}).MarshalJSON()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJSON, _ := (&jose.JSONWebKey{Key: small.Public()}).MarshalJSON()
	now := time.Unix(1_800_000_000, 0)
	const target = "https://lk.example/access_token"
	claims := `{"jti":"j","htm":"POST","htu":"` + target + `","iat":1800000000}`
	cases := map[string]string{
		"no typ":                        `{"alg":"ES256","jwk":` + string(pubJSON) + `}`,
		"typ JWT":                       `{"typ":"JWT","alg":"ES256","jwk":` + string(pubJSON) + `}`,
		"alg none":                      `{"typ":"dpop+jwt","alg":"none","jwk":` + string(pubJSON) + `}`,
		"alg HS256":                     `{"typ":"dpop+jwt","alg":"HS256","jwk":` + string(pubJSON) + `}`,
		"no jwk":                        `{"typ":"dpop+jwt","alg":"ES256"}`,
		"a private key":                 `{"typ":"dpop+jwt","alg":"ES256","jwk":` + string(privJSON) + `}`,
		"an RSA key named ES256":        `{"typ":"dpop+jwt","alg":"ES256","jwk":` + string(rsaJSON) + `}`,
		"a P-256 key named ES384":       `{"typ":"dpop+jwt","alg":"ES384","jwk":` + string(pubJSON) + `}`,
		"a 1024-bit RSA key":            `{"typ":"dpop+jwt","alg":"RS256","jwk":` + string(smallJSON) + `}`,
		"an unencoded payload":          `{"typ":"dpop+jwt","alg":"ES256","b64":false,"crit":["b64"],"jwk":` + string(pubJSON) + `}`,
		"an unknown critical extension": `{"typ":"dpop+jwt","alg":"ES256","crit":["x"],"x":1,"jwk":` + string(pubJSON) + `}`,
	}
	v := NewVerifier(16)
	for name, header := range cases {
		var e *Error
		if _, err := v.Verify(handMade(t, key, header, claims), "POST", target, now, ""); !errors.As(err, &e) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
	// The same hand-made route with a good header passes, so the refusals
	// above are the headers'.
	good := handMade(t, key, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+string(pubJSON)+`}`, claims)
	if _, err := v.Verify(good, "POST", target, now, ""); err != nil {
		t.Fatalf("the hand-made good proof: %v", err)
	}
	for name, c := range map[string]string{
		"claims that are not JSON": `{"jti":`,
		"no jti":                   `{"htm":"POST","htu":"` + target + `","iat":1800000000}`,
		"no iat":                   `{"jti":"j","htm":"POST","htu":"` + target + `"}`,
		"a jti of 129 bytes":       `{"jti":"` + strings.Repeat("j", 129) + `","htm":"POST","htu":"` + target + `","iat":1800000000}`,
	} {
		p := handMade(t, key, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+string(pubJSON)+`}`, c)
		if _, err := v.Verify(p, "POST", target, now, ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// An ECDSA signature's halves are fixed-size: a short or long one is not
// padded into shape.
func TestVerifyECSignatureSize(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("x"))
	r, s, _ := ecdsa.Sign(rand.Reader, key, h[:])
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	if !verifyEC(&key.PublicKey, h[:], sig, 32) {
		t.Fatal("a good signature")
	}
	if verifyEC(&key.PublicKey, h[:], sig[1:], 32) || verifyEC(&key.PublicKey, h[:], append([]byte{0}, sig...), 32) {
		t.Fatal("a signature of the wrong size was accepted")
	}
	zero := make([]byte, 64)
	if verifyEC(&key.PublicKey, h[:], zero, 32) || new(big.Int).SetBytes(zero).Sign() != 0 {
		t.Fatal("an all-zero signature was accepted")
	}
}

// The cost of checking a proof whose key was seen before (every proof of
// a client after its first): one ES256 verification and the claims.
// BenchmarkSignature is that verification alone, for comparison.
func BenchmarkVerify(b *testing.B) {
	s := signer(b)
	now := time.Now()
	proof, _ := s.Proof("GET", "https://lk.example/method/users.get", "tok", "j", now)
	v := NewVerifier(16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(proof, "GET", "https://lk.example/method/users.get", now, "tok"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyNewKey is a client's first proof: its header parsed too.
func BenchmarkVerifyNewKey(b *testing.B) {
	s := signer(b)
	now := time.Now()
	proof, _ := s.Proof("GET", "https://lk.example/method/users.get", "tok", "j", now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewVerifier(1).Verify(proof, "GET", "https://lk.example/method/users.get", now, "tok"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWithoutSignature is everything Verify does but the signature's
// arithmetic: the header lookup, the claims, and the signature's decoding.
func BenchmarkWithoutSignature(b *testing.B) {
	s := signer(b)
	now := time.Now()
	const target = "https://lk.example/method/users.get"
	proof, _ := s.Proof("GET", target, "tok", "j", now)
	parts := strings.Split(proof, ".")
	v := NewVerifier(16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.key(parts[0], proof); err != nil {
			b.Fatal(err)
		}
		if _, err := checkClaims(parts[1], "GET", target, now, "tok"); err != nil {
			b.Fatal(err)
		}
		if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignature(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("x"))
	r, s, _ := ecdsa.Sign(rand.Reader, key, h[:])
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(&key.PublicKey, h[:], r, s) {
			b.Fatal("verify")
		}
	}
}
