package token

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"
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
		if err != nil || gotKind != kind || gotHash != h || HashOf(tok) != h {
			t.Fatalf("Parse(%q) = %v, %x, %v; minted with hash %x, HashOf %x", tok, gotKind, gotHash, err, h, HashOf(tok))
		}
	}
}

// TestHashesInMintingOrder: a token's hash begins with its ID, the time it
// was minted, so that storage keeps tokens in the order they were minted;
// the rest is SHA-256 of the token.
func TestHashesInMintingOrder(t *testing.T) {
	k := mustKeyring(t, secretA)
	before := uint64(time.Now().UnixMilli())
	tok, h := k.Mint(User)
	after := uint64(time.Now().UnixMilli())
	if ms := binary.BigEndian.Uint64(h[:8]) >> 16; ms < before || ms > after {
		t.Fatalf("minted between %d and %d ms, the hash says %d", before, after, ms)
	}
	if sum := sha256.Sum256([]byte(tok)); !bytes.Equal(h[8:], sum[:24]) {
		t.Fatalf("hash %x does not end with SHA-256 of the token %x", h, sum)
	}
	var r [RandomLen]byte
	var last Hash
	for id := uint64(1); id < 100; id++ {
		rand.Read(r[:])
		_, h := k.MintFrom(Service, id<<16, r)
		if bytes.Compare(h[:], last[:]) <= 0 {
			t.Fatalf("token %d hashes to %x, before its predecessor's %x", id, h, last)
		}
		last = h
	}
}

// TestSpreadWithinABurst: the tokens of one burst, whose hashes begin
// alike, still differ in the byte the token cache and the rate limiter
// pick their shard by.
func TestSpreadWithinABurst(t *testing.T) {
	k := mustKeyring(t, secretA)
	const shards, n = 64, 512
	first, used := map[byte]bool{}, map[byte]bool{}
	for range n {
		_, h := k.Mint(User)
		first[h[0]] = true
		used[h.Spread()%shards] = true
	}
	if len(first) != 1 {
		t.Fatalf("a burst's hashes begin with %d different bytes, want 1 (the time)", len(first))
	}
	if len(used) < shards*3/4 {
		t.Fatalf("%d tokens minted at once spread over %d of %d shards", n, len(used), shards)
	}
}

// TestTokensWithoutIDs: a token minted before IDs still parses, and hashes
// as it did then (SHA-256 of the string), so that storage still finds it.
func TestTokensWithoutIDs(t *testing.T) {
	k := mustKeyring(t, secretA)
	for _, kind := range []Kind{User, Service, Refresh} {
		tok := mintLegacy(k, kind, 0x3c)
		if len(tok) != 64 {
			t.Fatalf("a token of the old layout is %d characters, want 64", len(tok))
		}
		gotKind, h, err := k.Parse(tok)
		if err != nil || gotKind != kind || h != sha256.Sum256([]byte(tok)) || HashOf(tok) != h {
			t.Fatalf("Parse(%q) = %v, %x, %v; want %v and SHA-256 %x", tok, gotKind, h, err, kind, sha256.Sum256([]byte(tok)))
		}
	}
	// Its MAC covers no ID: one with an ID spliced in is a forgery.
	old := mintLegacy(k, User, 0x3c)
	if _, _, err := k.Parse(old[:4] + strings.Repeat("0", 16) + old[4:]); err != ErrMalformed {
		t.Fatalf("an old token with an ID added: err = %v, want ErrMalformed", err)
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
		"its ID cut out":             good[:4] + good[20:],
		"old length, not old MAC":    good[:64],
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

// mintFixed is Mint with a fixed ID and randomness, so that every fuzzing
// worker (a process of its own) knows the same genuine token.
func mintFixed(k *Keyring, kind Kind) string {
	var r [RandomLen]byte
	copy(r[:], bytes.Repeat([]byte{0x5a}, randLen))
	tok, _ := k.MintFrom(kind, 0x0123456789abcdef, r)
	return tok
}

// mintLegacy makes a token of the layout before IDs, its randomness every
// byte fill: header, 40 hex digits of randomness, 20 of MAC.
func mintLegacy(k *Keyring, kind Kind, fill byte) string {
	var b [legacyLen]byte
	b[0], b[1], b[2], b[3] = 'l', 'k', byte(kind), version
	hex.Encode(b[headerLen:], bytes.Repeat([]byte{fill}, randLen))
	body := headerLen + 2*randLen
	mac := k.sum(0, b[:body])
	hex.Encode(b[body:], mac[:macLen])
	return string(b[:])
}

func FuzzParse(f *testing.F) {
	k := mustKeyring(f, secretA)
	good, old := mintFixed(k, User), mintLegacy(k, User, 0x5a)
	for _, g := range []string{good, old} {
		if _, _, err := k.Parse(g); err != nil {
			f.Fatal(err)
		}
		f.Add(g)
	}
	f.Add("")
	f.Add(good[:Len-1] + "g")
	f.Add(strings.Repeat("a", Len))
	f.Fuzz(func(t *testing.T, s string) {
		kind, h, err := k.Parse(s)
		if err != nil {
			return
		}
		if !kind.Valid() || h != HashOf(s) || (len(s) != Len && len(s) != legacyLen) {
			t.Fatalf("Parse(%q) accepted with kind %v", s, kind)
		}
		if s != good && s != old {
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
