package token

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

const (
	secretA = "0123456789abcdef0123456789abcdef-A"
	secretB = "0123456789abcdef0123456789abcdef-B"
)

func mustKeyring(t testing.TB, secrets ...string) *Keyring {
	t.Helper()
	k, err := NewKeyring(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMintParse(t *testing.T) {
	k := mustKeyring(t, secretA)
	for _, kind := range []Kind{User, Community, Service, Code} {
		tok, h := k.Mint(kind)
		if len(tok) != Len || !isAlnum(tok) {
			t.Fatalf("minted %q: want %d digits and Latin letters", tok, Len)
		}
		if !strings.HasPrefix(tok, "lk"+string(kind)+"1") {
			t.Fatalf("minted %q: want prefix lk%c1", tok, kind)
		}
		gotKind, gotHash, err := k.Parse(tok)
		if err != nil || gotKind != kind || gotHash != h {
			t.Fatalf("Parse(%q) = %v, %x, %v", tok, gotKind, gotHash, err)
		}
	}
}

func isAlnum(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune(alnum, c) {
			return false
		}
	}
	return true
}

func TestParseRejects(t *testing.T) {
	k := mustKeyring(t, secretA)
	good, _ := k.Mint(User)
	other, _ := mustKeyring(t, secretB).Mint(User)
	flip := []byte(good)
	flip[10] ^= 1 // still hex, wrong MAC
	cases := map[string]string{
		"empty":                      "",
		"truncated":                  good[:Len-1],
		"one character changed":      string(flip),
		"kind changed":               good[:2] + "s" + good[3:],
		"unknown kind":               good[:2] + "x" + good[3:],
		"signed by another secret":   other,
		"upper-case hex":             good[:4] + strings.ToUpper(good[4:]),
		"not hex":                    good[:4] + strings.Repeat("z", Len-4),
		"wrong version":              good[:3] + "2" + good[4:],
		"trailing garbage":           good + "0",
		"vk-looking token":           strings.Repeat("a", 85),
		"wrong prefix, right length": "xx" + good[2:],
	}
	for name, s := range cases {
		if _, _, err := k.Parse(s); err != ErrMalformed {
			t.Errorf("%s: Parse(%q) err = %v, want ErrMalformed", name, s, err)
		}
	}
}

func TestRotation(t *testing.T) {
	oldRing := mustKeyring(t, secretA)
	tok, _ := oldRing.Mint(Service)
	sealed := oldRing.Seal([]byte("shown again"))
	rotated := mustKeyring(t, secretB, secretA)
	if _, _, err := rotated.Parse(tok); err != nil {
		t.Fatalf("token signed by the old secret rejected after rotation: %v", err)
	}
	p, err := rotated.Open(sealed)
	if err != nil || string(p) != "shown again" {
		t.Fatalf("Open after rotation = %q, %v", p, err)
	}
	newTok, _ := rotated.Mint(Service)
	if _, _, err := oldRing.Parse(newTok); err == nil {
		t.Fatal("new token verifies under the old secret alone: first secret must sign")
	}
}

func TestSeal(t *testing.T) {
	k := mustKeyring(t, secretA)
	a, b := k.Seal([]byte("x")), k.Seal([]byte("x"))
	if bytes.Equal(a, b) {
		t.Fatal("Seal is deterministic: nonce reused")
	}
	if bytes.Contains(a, []byte("x")) && len(a) < 5 {
		t.Fatal("sealed text contains the plaintext")
	}
	a[len(a)-1] ^= 1
	if _, err := k.Open(a); err == nil {
		t.Fatal("Open accepted a tampered ciphertext")
	}
	if _, err := k.Open([]byte{1, 2}); err == nil {
		t.Fatal("Open accepted a short ciphertext")
	}
}

func TestShortSecretRejected(t *testing.T) {
	if _, err := NewKeyring("short"); err == nil {
		t.Fatal("NewKeyring accepted a 5-character secret")
	}
	if _, err := NewKeyring(); err == nil {
		t.Fatal("NewKeyring accepted no secret")
	}
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := NewSecret()
		if len(s) != 24 || !isAlnum(s) || seen[s] {
			t.Fatalf("NewSecret() = %q", s)
		}
		seen[s] = true
	}
}

// mintFixed is Mint with fixed randomness, so that every fuzzing worker
// (a process of its own) knows the same genuine token.
func mintFixed(k *Keyring, kind Kind) string {
	var b [Len]byte
	b[0], b[1], b[2], b[3] = 'l', 'k', byte(kind), version
	hex.Encode(b[headerLen:], bytes.Repeat([]byte{0x5a}, randLen))
	body := headerLen + 2*randLen
	mac := k.sum(0, b[:body])
	hex.Encode(b[body:], mac[:macLen])
	return string(b[:])
}

func FuzzParse(f *testing.F) {
	k := mustKeyring(f, secretA)
	good := mintFixed(k, User)
	if _, _, err := k.Parse(good); err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add(good[:Len-1] + "g")
	f.Add(strings.Repeat("a", Len))
	f.Fuzz(func(t *testing.T, s string) {
		kind, h, err := k.Parse(s)
		if err != nil {
			return
		}
		if !kind.Valid() || h != HashOf(s) || len(s) != Len {
			t.Fatalf("Parse(%q) accepted with kind %v", s, kind)
		}
		if s != good {
			// Any accepted string other than a minted one is a forgery.
			t.Fatalf("Parse accepted a string that was never minted: %q", s)
		}
	})
}

func BenchmarkParseValid(b *testing.B) {
	k := mustKeyring(b, secretA)
	tok, _ := k.Mint(User)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseForged(b *testing.B) {
	k := mustKeyring(b, secretA)
	tok, _ := mustKeyring(b, secretB).Mint(User)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Parse(tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

func TestTag(t *testing.T) {
	k := mustKeyring(t, secretA)
	tag := k.Tag("session", "42.1700000000")
	if !k.VerifyTag("session", "42.1700000000", tag) {
		t.Fatal("own tag rejected")
	}
	if k.VerifyTag("csrf", "42.1700000000", tag) {
		t.Fatal("tag of one purpose accepted for another")
	}
	if k.VerifyTag("session", "43.1700000000", tag) {
		t.Fatal("tag accepted for another message")
	}
	if !mustKeyring(t, secretB, secretA).VerifyTag("session", "42.1700000000", tag) {
		t.Fatal("tag rejected after rotation")
	}
}
