package platform

import (
	"context"
	"errors"

	"latchkey/internal/dpop"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// proofKeys is how many DPoP clients' keys a node keeps parsed: a client
// sends the same header with every proof.
const proofKeys = 4096

// CheckProof checks a DPoP proof (RFC 9449) for a request with method to
// target, bound to accessToken when one is presented, and remembers its jti
// so that no node accepts it twice: in this node's memory when it carries
// this node's nonce (nonces.go), else in storage. Refusals are *dpop.Error
// (ErrUseNonce among them) or dpop.ErrReplay.
func (p *Tokens) CheckProof(ctx context.Context, proof, method, target, accessToken string) (dpop.Proof, error) {
	now := p.Now()
	pr, err := p.proofs.Verify(proof, method, target, now, accessToken)
	if err != nil {
		return pr, err
	}
	if pr.Nonce != "" {
		if remembered, err := p.nonces.use(pr.Nonce, pr.JKT, pr.JTI, now); err != nil || remembered {
			return pr, err
		}
	}
	// A proof is unique by its key and jti; it cannot be accepted after
	// the window, so it is remembered a little longer than that.
	err = p.tokens.UseProof(ctx, token.HashOf(pr.JKT+"\x00"+pr.JTI), pr.IAT.Add(2*dpop.Window))
	if errors.Is(err, storage.ErrConflict) {
		return pr, dpop.ErrReplay
	}
	return pr, err
}

// DPoPNonce is the nonce for the next proofs a client sends this node
// (the DPoP-Nonce header of an answer to a DPoP request).
func (p *Tokens) DPoPNonce() string { return p.nonces.Current(p.Now()) }

// ProofRefused reports whether err is a refused proof rather than a failure
// to check it.
func ProofRefused(err error) bool {
	var e *dpop.Error
	return errors.As(err, &e) || errors.Is(err, dpop.ErrReplay)
}

// ErrBinding refuses how a token was presented: a DPoP-bound token
// without its proof, a proof of another key, or a bearer token presented
// as DPoP. Reason says which, for the client.
type ErrBinding struct {
	Reason string
	// UseNonce: the proof's nonce is not this node's now (ErrUseNonce);
	// the answer's DPoP-Nonce is the one to use.
	UseNonce bool
}

func (e *ErrBinding) Error() string { return "DPoP: " + e.Reason }

// CheckBinding is the one rule of presenting a token (RFC 9449 §7): a
// bound token only with the DPoP scheme and a fresh proof of its key bound
// to it by ath; an unbound one only as a bearer token. dpopScheme says the
// token came as "Authorization: DPoP".
func (p *Tokens) CheckBinding(ctx context.Context, t storage.Token, dpopScheme bool, proof, method, target, raw string) error {
	switch {
	case t.JKT == "" && !dpopScheme:
		return nil
	case t.JKT == "":
		return &ErrBinding{Reason: "the token is not DPoP-bound: present it as a Bearer token"}
	case !dpopScheme:
		return &ErrBinding{Reason: "the token is DPoP-bound: present it with Authorization: DPoP and a DPoP proof"}
	}
	pr, err := p.CheckProof(ctx, proof, method, target, raw)
	if ProofRefused(err) {
		return &ErrBinding{Reason: err.Error(), UseNonce: errors.Is(err, ErrUseNonce)}
	}
	if err != nil {
		return err
	}
	if pr.JKT != t.JKT {
		return &ErrBinding{Reason: "the DPoP proof is signed by another key than the token is bound to"}
	}
	return nil
}
