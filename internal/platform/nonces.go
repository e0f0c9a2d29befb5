package platform

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"

	"latchkey/internal/dpop"
	"latchkey/internal/token"
)

// DPoP nonces (RFC 9449 §8 and §9) make a bound call need no storage
// write. A proof without a nonce is remembered in storage (UseProof), so
// that no node accepts it twice: one write per call. A proof that carries a
// nonce this node gave out is remembered by this node alone, in memory: a
// nonce is this node's (its MAC is keyed by a secret the process drew at
// start, which no other node has), so the proof is refused everywhere else
// (use_dpop_nonce), and here its jti is kept as long as the nonce is
// accepted. A nonce is good for the step it was made in and the next
// (nonceStep each); every answer to a bound call carries the current one
// (the DPoP-Nonce header), which clients use for their next proof. Behind a
// load balancer that spreads one client over several nodes, a client
// holding a nonce meets use_dpop_nonce when it changes nodes and goes on
// with that node's nonce; a client that sends none is served as before.
const (
	nonceStep = 30 * time.Second
	// nonceJTIs bounds the jtis remembered per step: past it, a proof
	// with a nonce is remembered in storage, as one without.
	nonceJTIs = 1 << 20
)

// nonceLen is a nonce's length: the step (8 bytes) and a 16-byte MAC, in
// base64url.
var nonceLen = base64.RawURLEncoding.EncodedLen(8 + 16)

// ErrUseNonce refuses a proof whose nonce is not one this node accepts now
// (another node's, an old one, or made up): the client is to send the
// proof again with the nonce of the answer (DPoP-Nonce).
var ErrUseNonce = &dpop.Error{Reason: "use_dpop_nonce: the proof's nonce is not this server's (or no longer is): send it again with the nonce of this answer's DPoP-Nonce header"}

// nonces are this node's nonces and the jtis of the proofs that carried
// them.
type nonces struct {
	key [32]byte
	mu  sync.Mutex
	// at is the current step; seen[0] holds the jtis of proofs with its
	// nonce, seen[1] those with the step before's.
	at   int64
	seen [2]map[[16]byte]struct{}
	// macs are the MACs of step at and the one before; current is the
	// nonce of step at.
	macs    [2][16]byte
	current string
}

func newNonces() *nonces {
	n := &nonces{}
	rand.Read(n.key[:])
	return n
}

// mac is the MAC of step s.
func (n *nonces) mac(s int64) [16]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(s))
	m := hmac.New(sha256.New, n.key[:])
	m.Write(b[:])
	return [16]byte(m.Sum(nil))
}

// advance moves to the step of now. n.mu is held.
func (n *nonces) advance(now time.Time) {
	s := now.UnixNano() / int64(nonceStep)
	if s == n.at && n.current != "" {
		return
	}
	if s == n.at+1 && n.current != "" {
		n.seen[1], n.seen[0] = n.seen[0], nil
		n.macs[1], n.macs[0] = n.macs[0], n.mac(s)
	} else {
		n.seen = [2]map[[16]byte]struct{}{}
		n.macs = [2][16]byte{n.mac(s), n.mac(s - 1)}
	}
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s))
	copy(b[8:], n.macs[0][:])
	n.at, n.current = s, base64.RawURLEncoding.EncodeToString(b[:])
}

// Current is the nonce to give out at now.
func (n *nonces) Current(now time.Time) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.advance(now)
	return n.current
}

// use remembers the proof of key jkt and id jti, which carries nonce, at
// now. It returns ErrUseNonce for a nonce this node does not accept now,
// dpop.ErrReplay for a proof it has seen, and remembered false when it holds too
// many to remember this one (the caller remembers it in storage).
func (n *nonces) use(nonce, jkt, jti string, now time.Time) (remembered bool, err error) {
	var b [8 + 16 + 2]byte // room for DecodedLen's rounding
	if len(nonce) != nonceLen {
		return false, ErrUseNonce
	}
	if k, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil || k != 8+16 {
		return false, ErrUseNonce
	}
	s := int64(binary.BigEndian.Uint64(b[:8]))
	n.mu.Lock()
	defer n.mu.Unlock()
	n.advance(now)
	age := n.at - s
	if age != 0 && age != 1 {
		return false, ErrUseNonce
	}
	if !hmac.Equal(n.macs[age][:], b[8:8+16]) {
		return false, ErrUseNonce
	}
	id := token.HashOf(jkt + "\x00" + jti)
	k := [16]byte(id[:16])
	seen := n.seen[age]
	if _, ok := seen[k]; ok {
		return false, dpop.ErrReplay
	}
	if len(seen) >= nonceJTIs {
		return false, nil
	}
	if seen == nil {
		seen = map[[16]byte]struct{}{}
		n.seen[age] = seen
	}
	seen[k] = struct{}{}
	return true, nil
}
