package platform

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"latchkey/internal/pkce"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Codes is the one owner of authorization codes: it mints them, redeems
// them once, and revokes what a replayed code issued (RFC 6749 §4.1.2).
//
// A code is its own record, sealed (AES-GCM under the server secret): the
// approval writes nothing. Its one use is a row written when it is redeemed
// (CreateCode, which a second redemption finds taken, on every node), so a
// code flow writes the code once instead of twice. Codes minted before
// codes were sealed (lka1, a row from the start) are redeemed from their row
// for the minutes they live across an upgrade, and the sealed ones of before
// (lka2) keep the hash they had.
type Codes struct {
	*core
	store storage.Grants
}

// CodeRequest is what an approved code-flow request binds its code to.
type CodeRequest struct {
	AppID  int64
	UserID int64
	// CommunityIDs is set when the code is for community tokens.
	CommunityIDs        []int64
	Scope               scope.Mask
	RedirectURI         string
	CodeChallenge       string
	CodeChallengeMethod string
	IP                  string
	Nonce               string
	// DeviceID is the VK ID device_id the redirect names ("" for none).
	DeviceID string
	// APIID and Claims: the API the code is for and the OpenID Connect
	// scopes asked beside its own (Grant.APIID, Grant.Claims).
	APIID  int64
	Claims scope.Mask
	// Authn is the sign-in that approved it.
	Authn storage.Authn
}

// Issue mints a code for r, valid for ttl, and returns it: the code's
// record, sealed; nothing is stored.
func (c *Codes) Issue(ctx context.Context, r CodeRequest, ttl time.Duration) (string, error) {
	now := c.Now().UTC()
	b, err := json.Marshal(sealedCode{AppID: r.AppID, UserID: r.UserID, CommunityIDs: r.CommunityIDs, Scope: r.Scope,
		RedirectURI: r.RedirectURI, Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod, IP: r.IP, Nonce: r.Nonce,
		DeviceID: r.DeviceID, APIID: r.APIID, Claims: r.Claims, IssuedAt: storage.UnixSeconds(now), ExpiresAt: storage.UnixSeconds(now.Add(ttl)),
		AuthTime: storage.UnixSeconds(r.Authn.AuthTime), AMR: r.Authn.AMR, SID: r.Authn.SID})
	if err != nil {
		return "", err
	}
	return sealedPrefix + codeEncoding.EncodeToString(c.Keys.Seal(append([]byte(codePurpose), b...))), nil
}

// A sealed code is sealedPrefix and, in lower-case base32 (digits and
// Latin letters only, as every token), its record sealed with codePurpose
// before it (so that nothing else sealed passes for a code). Its hash
// begins with the time it was minted (token.HashAt), as a token's does.
//
// The codes sealed before (lka2, their own purpose) hash as any string
// does (token.HashOf), and are redeemed so for the minutes they live
// across an upgrade. Each prefix has its own purpose, so that one cannot be
// turned into the other and so given a hash not yet spent.
const (
	sealedPrefix = "lka3"
	codePurpose  = "latchkey code v3\x00"
	oldPrefix    = "lka2"
	oldPurpose   = "latchkey code v2\x00"
	// maxCodeLen bounds what is unsealed: ours are a few hundred bytes.
	maxCodeLen = 4 << 10
)

var codeEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// sealedCode is a code's record inside it, in short names.
type sealedCode struct {
	AppID        int64      `json:"a"`
	UserID       int64      `json:"u,omitempty"`
	CommunityIDs []int64    `json:"g,omitempty"`
	Scope        scope.Mask `json:"s,omitempty"`
	RedirectURI  string     `json:"r,omitempty"`
	Challenge    string     `json:"c,omitempty"`
	Method       string     `json:"m,omitempty"`
	IP           string     `json:"ip,omitempty"`
	Nonce        string     `json:"n,omitempty"`
	DeviceID     string     `json:"d,omitempty"`
	APIID        int64      `json:"api,omitempty"`
	Claims       scope.Mask `json:"cl,omitempty"`
	IssuedAt     int64      `json:"i"`
	ExpiresAt    int64      `json:"e"`
	AuthTime     int64      `json:"t,omitempty"`
	AMR          []string   `json:"amr,omitempty"`
	SID          string     `json:"sid,omitempty"`
}

// open reads the code raw: a sealed one from itself (sealed true), an
// older one from its row. A code that is neither is ErrCodeInvalid.
func (c *Codes) open(ctx context.Context, raw string) (code storage.Code, sealed bool, err error) {
	purpose := codePurpose
	rest, ok := strings.CutPrefix(raw, sealedPrefix)
	if !ok {
		purpose = oldPurpose
		rest, ok = strings.CutPrefix(raw, oldPrefix)
	}
	if ok && len(raw) <= maxCodeLen {
		b, err := codeEncoding.DecodeString(rest)
		if err != nil {
			return code, true, ErrCodeInvalid
		}
		if b, err = c.Keys.Open(b); err != nil || !bytes.HasPrefix(b, []byte(purpose)) {
			return code, true, ErrCodeInvalid
		}
		var s sealedCode
		if err := json.Unmarshal(b[len(purpose):], &s); err != nil {
			return code, true, ErrCodeInvalid
		}
		var h token.Hash
		if purpose == oldPurpose {
			h = token.HashOf(raw)
		} else {
			h = token.HashAt(storage.FromUnixSeconds(s.IssuedAt), raw)
		}
		return storage.Code{Hash: h, AppID: s.AppID, UserID: s.UserID, CommunityIDs: s.CommunityIDs, Scope: s.Scope,
			RedirectURI: s.RedirectURI, CodeChallenge: s.Challenge, CodeChallengeMethod: s.Method, IP: s.IP, Nonce: s.Nonce,
			DeviceID: s.DeviceID, APIID: s.APIID, Claims: s.Claims, IssuedAt: storage.FromUnixSeconds(s.IssuedAt),
			ExpiresAt: storage.FromUnixSeconds(s.ExpiresAt),
			Authn:     storage.Authn{AuthTime: storage.FromUnixSeconds(s.AuthTime), AMR: s.AMR, SID: s.SID}}, true, nil
	}
	kind, h, err := c.Keys.Parse(raw)
	if err != nil || kind != token.Code {
		return code, false, ErrCodeInvalid
	}
	code, err = c.store.GetCode(ctx, h)
	if errors.Is(err, storage.ErrNotFound) {
		return code, false, ErrCodeInvalid
	}
	return code, false, err
}

// Why a code is refused (vk-wire.md §2 has VK's exact texts). A used code
// says the same as an invalid one; the VK ID dialect tells them apart.
var (
	ErrCodeInvalid  = &Error{Kind: Invalid, Field: "code", Message: "Code is invalid or expired."}
	ErrCodeUsed     = &Error{Kind: Invalid, Field: "code", Message: "Code is invalid or expired."}
	ErrCodeRedirect = &Error{Kind: Invalid, Field: "redirect_uri", Message: "redirect_uri is invalid, please pass same redirect_uri, you used in authorize method."}
)

// Redemption is what a code is redeemed with.
type Redemption struct {
	// AppID is the app that authenticated.
	AppID       int64
	RedirectURI string
	Verifier    string
	// Fits, when set, is the dialect's own check of the code (VK ID's
	// device binding); an error from it is returned as it is.
	Fits func(storage.Code) error
}

// Redeem uses the code raw for r.AppID: it must be the app's, unexpired,
// unused, redeemed with the redirect URI it was issued for (unless it was
// issued for none: a VK ID migration's), the PKCE verifier of its challenge
// and whatever r.Fits asks. Only a redemption that passes every check
// spends the code, so one who saw a code cannot deny its owner the tokens
// by redeeming it wrongly. A code used a second time by its app revokes
// every token issued from it. Errors are ErrCodeInvalid, ErrCodeUsed,
// ErrCodeRedirect, an Invalid error on code_verifier wrapping the pkce
// error, or r.Fits's.
//
// A sealed code's one use is a row, written with the tokens it is redeemed
// for so that the redemption is one write: spend is that row, which the
// caller hands to the issuance (Issuance.Spends) or writes first (Spend).
// It is nil for an older code, whose row Redeem has marked used.
func (c *Codes) Redeem(ctx context.Context, raw string, r Redemption) (code storage.Code, spend *storage.Code, err error) {
	now := c.Now()
	code, sealed, err := c.open(ctx, raw)
	switch {
	case err != nil:
		return code, nil, err
	case !code.UsedAt.IsZero():
		return code, nil, c.codeReplayed(ctx, code, r.AppID)
	case code.AppID != r.AppID || !now.Before(code.ExpiresAt):
		return code, nil, ErrCodeInvalid
	case code.RedirectURI != "" && r.RedirectURI != code.RedirectURI:
		return code, nil, ErrCodeRedirect
	}
	if err := pkce.Verify(code.CodeChallenge, code.CodeChallengeMethod, r.Verifier); err != nil {
		return code, nil, &Error{Kind: Invalid, Field: "code_verifier", Message: err.Error(), Err: err}
	}
	if r.Fits != nil {
		if err := r.Fits(code); err != nil {
			return code, nil, err
		}
	}
	if sealed {
		// The one use: a row only one redemption can write.
		used := code
		used.UsedAt = now.UTC()
		return code, &used, nil
	}
	code, err = c.store.UseCode(ctx, code.Hash, now)
	switch {
	case errors.Is(err, storage.ErrConflict):
		// Used since it was read: a concurrent redemption, and one of the
		// two holds a copy.
		return code, nil, c.codeReplayed(ctx, code, r.AppID)
	case err != nil:
		return code, nil, err
	}
	return code, nil, nil
}

// Spend writes a redeemed code's one use (Redeem's spend) by itself, for
// an issuance that does not take it; a code spent before is a replay.
func (c *Codes) Spend(ctx context.Context, spend storage.Code) error {
	err := c.store.CreateCode(ctx, spend)
	if errors.Is(err, storage.ErrConflict) {
		return c.codeReplayed(ctx, spend, spend.AppID)
	}
	return err
}
