// Package token mints and checks Latchkey's opaque credentials: access tokens
// of the three kinds, authorization codes and client secrets, and it seals
// what the console must show again.
//
// A token is "lk" + kind letter + version digit + 16 hex digits of its ID +
// 40 hex digits of randomness + 20 hex digits of HMAC-SHA256 under the
// server secret: only digits and Latin letters, as VK's documentation
// promises, with a fixed prefix that secret scanners can match. The MAC lets
// Parse reject a forged or mistyped token without any storage access.
// Storage keeps only Hash(token), so a copy of the database yields no usable
// token.
//
// The ID is the time of minting (milliseconds, then 16 random bits), and the
// hash begins with it: storage, which keys every token by its hash, puts
// the tokens minted together on the same pages, instead of one random page
// each (see Hash). Tokens minted before IDs (the same prefix, 64
// characters, no ID) still parse, and hash as they always did.
package token

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"
)

// Kind is what a token speaks for.
type Kind byte

const (
	User      Kind = 'u'
	Community Kind = 'c'
	Service   Kind = 's'
	Code      Kind = 'a' // an authorization code
	Refresh   Kind = 'r' // a refresh token
	Device    Kind = 'd' // a device code (RFC 8628)
	Admin     Kind = 'x' // an admin API token (latchkey admin-token create)
)

// Credential reports whether k presents as an access token (user,
// community, service): codes and refresh tokens never do.
func (k Kind) Credential() bool { return k == User || k == Community || k == Service }

func (k Kind) String() string {
	switch k {
	case User:
		return "user"
	case Community:
		return "community"
	case Service:
		return "service"
	case Code:
		return "code"
	case Refresh:
		return "refresh"
	case Device:
		return "device"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("Kind(%q)", byte(k))
}

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	return k.Credential() || k == Code || k == Refresh || k == Device || k == Admin
}

const (
	version   = '1'
	headerLen = 4 // "lk" + kind + version
	idLen     = 8
	randLen   = 20
	macLen    = 10
	// Len is the length of every token minted.
	Len = headerLen + 2*idLen + 2*randLen + 2*macLen
	// legacyLen is the length of a token minted before IDs: the same
	// without the ID.
	legacyLen = Len - 2*idLen
)

// MinSecretLen is the shortest server secret accepted.
const MinSecretLen = 32

// Hash is the at-rest form of a token, code or client secret: SHA-256 of the
// string, and for a token with an ID, that ID (8 bytes) followed by the first
// 24 bytes of SHA-256, so that storage keeps tokens in the order they were
// minted. The strings carry at least 119 bits of randomness, so a fast
// unkeyed hash is enough and does not depend on the server secret, which may
// rotate.
type Hash [sha256.Size]byte

// HashOf returns the at-rest hash of s (Parse's, when s is a token).
func HashOf(s string) Hash {
	if len(s) <= Len {
		var buf [Len]byte // no allocation for tokens, codes and secrets
		n := copy(buf[:], s)
		if id, ok := idOf(s); ok {
			return keyed(id, buf[:n])
		}
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(s))
}

// HashAt is the at-rest hash of s, a credential that holds the time it was
// minted sealed inside (a code): that time's milliseconds take the ID's
// place, so that storage keeps these in minting order too.
func HashAt(minted time.Time, s string) Hash {
	return keyed(uint64(minted.UnixMilli())<<16, []byte(s))
}

// idOf is the ID of s when s has a token's shape with an ID.
func idOf(s string) (uint64, bool) {
	if len(s) != Len || s[0] != 'l' || s[1] != 'k' || s[3] != version || !Kind(s[2]).Valid() || !isLowerHex(s[headerLen:headerLen+2*idLen]) {
		return 0, false
	}
	return idIn(s), true
}

// idIn reads the ID of s, a token of Len characters whose ID is hex.
func idIn(s string) uint64 {
	var id uint64
	for i := headerLen; i < headerLen+2*idLen; i++ {
		id = id<<4 | uint64(unhex(s[i]))
	}
	return id
}

// Spread is a byte of h that differs from one token to the next, even
// among tokens minted in the same millisecond (whose hashes begin alike):
// what to spread work over shards by.
func (h Hash) Spread() byte { return h[len(h)-1] }

// keyed is the hash of a token with an ID: the ID, then SHA-256 of the
// token cut to fill the rest.
func keyed(id uint64, tok []byte) Hash {
	sum := sha256.Sum256(tok)
	var h Hash
	binary.BigEndian.PutUint64(h[:idLen], id)
	copy(h[idLen:], sum[:])
	return h
}

// newID is a token ID minted now: milliseconds since 1970 in the high 48
// bits, 16 random bits below (tokens of one millisecond share their pages
// all the same, and so do the nodes' tokens, whose clocks agree closely).
func newID() uint64 {
	var r [2]byte
	rand.Read(r[:])
	return uint64(time.Now().UnixMilli())<<16 | uint64(binary.BigEndian.Uint16(r[:]))
}

// ErrMalformed is returned for a string that is not a token this server minted.
var ErrMalformed = errors.New("token: malformed or forged")

// Keyring holds the keys derived from the server secrets. The first secret
// signs and encrypts; every secret verifies and decrypts, so secrets can be
// rotated without invalidating what was issued.
type Keyring struct {
	macs []sync.Pool // of *macer, one pool per secret
	aead []cipher.AEAD
}

// NewKeyring derives the keys from one or more server secrets.
func NewKeyring(secrets ...string) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("token: no server secret")
	}
	k := &Keyring{macs: make([]sync.Pool, len(secrets))}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("token: server secret %d is %d characters, want at least %d", i+1, len(s), MinSecretLen)
		}
		macKey := derive(s, "latchkey token mac v1")
		k.macs[i].New = func() any { return &macer{h: hmac.New(sha256.New, macKey)} }
		block, err := aes.NewCipher(derive(s, "latchkey seal v1"))
		if err != nil {
			return nil, err
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		k.aead = append(k.aead, gcm)
	}
	return k, nil
}

func derive(secret, label string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Mint returns a new token of the given kind and its at-rest hash.
func (k *Keyring) Mint(kind Kind) (string, Hash) {
	var r [RandomLen]byte
	rand.Read(r[:])
	return k.MintFrom(kind, newID(), r)
}

// RandomLen is how many random bytes a token carries.
const RandomLen = randLen

// MintFrom is Mint with the token's ID and randomness given. It is for a
// load tool that provisions a million tokens and rebuilds each from a seed
// when it uses it, instead of keeping them all: every real token comes from
// Mint.
func (k *Keyring) MintFrom(kind Kind, id uint64, r [RandomLen]byte) (string, Hash) {
	var b [Len]byte
	b[0], b[1], b[2], b[3] = 'l', 'k', byte(kind), version
	var idb [idLen]byte
	binary.BigEndian.PutUint64(idb[:], id)
	hex.Encode(b[headerLen:], idb[:])
	hex.Encode(b[headerLen+2*idLen:], r[:])
	body := Len - 2*macLen
	mac := k.sum(0, b[:body])
	hex.Encode(b[body:], mac[:macLen])
	return string(b[:]), keyed(id, b[:])
}

// macer is a MAC with room for what it reads and writes: a slice of the
// caller's array given to hash.Hash's methods (an interface) would move
// that array to the heap, on every token checked.
type macer struct {
	h   hash.Hash
	in  [256]byte
	out [sha256.Size]byte
}

// sum is the MAC of msg under the i-th secret.
func (k *Keyring) sum(i int, msg []byte) [sha256.Size]byte {
	m := k.macs[i].Get().(*macer)
	m.h.Reset()
	if len(msg) <= len(m.in) {
		m.h.Write(m.in[:copy(m.in[:], msg)])
	} else {
		m.h.Write(bytes.Clone(msg))
	}
	mac := [sha256.Size]byte(m.h.Sum(m.out[:0]))
	k.macs[i].Put(m)
	return mac
}

// Parse checks that s is a well-formed token of this server, with a valid MAC
// under one of the secrets, and returns its kind and at-rest hash. It touches
// no storage: whether the token is live is the caller's question.
func (k *Keyring) Parse(s string) (Kind, Hash, error) {
	if (len(s) != Len && len(s) != legacyLen) || s[0] != 'l' || s[1] != 'k' || s[3] != version || !Kind(s[2]).Valid() {
		return 0, Hash{}, ErrMalformed
	}
	if !isLowerHex(s[headerLen:]) {
		return 0, Hash{}, ErrMalformed
	}
	body := len(s) - 2*macLen
	var given [macLen]byte
	for i := range given {
		given[i] = unhex(s[body+2*i])<<4 | unhex(s[body+2*i+1])
	}
	var buf [Len]byte
	n := copy(buf[:], s)
	for i := range k.macs {
		if mac := k.sum(i, buf[:body]); hmac.Equal(mac[:macLen], given[:]) {
			if len(s) == Len { // checked above: the shape and the hex
				return Kind(s[2]), keyed(idIn(s), buf[:n]), nil
			}
			return Kind(s[2]), sha256.Sum256(buf[:n]), nil
		}
	}
	return 0, Hash{}, ErrMalformed
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewSecret returns a random client secret of 24 digits and Latin letters
// (about 142 bits), VK's shape for an app's "secure key".
func NewSecret() string {
	const n = 24
	var b [n]byte
	// Rejection sampling keeps the 62 symbols uniform.
	for i := 0; i < n; {
		var r [32]byte
		rand.Read(r[:])
		for _, c := range r {
			if c < 248 && i < n { // 248 = 4*62
				b[i] = alnum[c%62]
				i++
			}
		}
	}
	return string(b[:])
}

// Seal encrypts plaintext (AES-256-GCM, random nonce) under the first secret.
func (k *Keyring) Seal(plaintext []byte) []byte {
	g := k.aead[0]
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	rand.Read(nonce)
	return g.Seal(nonce, nonce, plaintext, nil)
}

// Open decrypts what Seal produced under any of the secrets.
func (k *Keyring) Open(sealed []byte) ([]byte, error) {
	for _, g := range k.aead {
		if len(sealed) < g.NonceSize() {
			break
		}
		if p, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], nil); err == nil {
			return p, nil
		}
	}
	return nil, errors.New("token: cannot decrypt: sealed under an unknown server secret or corrupted")
}

// Tag is a MAC over msg for one purpose (cookies, CSRF), under the first
// secret, as 32 hex digits. The purpose keeps tags of one use from passing
// for another.
func (k *Keyring) Tag(purpose, msg string) string {
	return k.tag(0, purpose, msg)
}

func (k *Keyring) tag(i int, purpose, msg string) string {
	full := make([]byte, 0, 16+len(purpose)+len(msg))
	full = append(append(append(full, "tag\x00"...), purpose...), 0)
	full = append(full, msg...)
	mac := k.sum(i, full)
	return hex.EncodeToString(mac[:16])
}

// VerifyTag checks a Tag under any of the secrets, in constant time.
func (k *Keyring) VerifyTag(purpose, msg, tag string) bool {
	for i := range k.macs {
		if hmac.Equal([]byte(k.tag(i, purpose, msg)), []byte(tag)) {
			return true
		}
	}
	return false
}
