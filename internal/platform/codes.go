package platform

import (
	"context"
	"errors"
	"time"

	"latchkey/internal/pkce"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Codes is the one owner of authorization codes: it mints them, redeems
// them once, and revokes what a replayed code issued (RFC 6749 §4.1.2).
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

// Issue mints a code for r, valid for ttl, and returns it; only its hash
// is stored.
func (c *Codes) Issue(ctx context.Context, r CodeRequest, ttl time.Duration) (string, error) {
	raw, h := c.Keys.Mint(token.Code)
	now := c.Now().UTC()
	code := storage.Code{
		Hash: h, AppID: r.AppID, UserID: r.UserID, CommunityIDs: r.CommunityIDs, Scope: r.Scope,
		RedirectURI: r.RedirectURI, CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod,
		IP: r.IP, Nonce: r.Nonce, DeviceID: r.DeviceID, IssuedAt: now, ExpiresAt: now.Add(ttl), APIID: r.APIID, Claims: r.Claims,
		Authn: r.Authn,
	}
	if err := c.store.CreateCode(ctx, code); err != nil {
		return "", err
	}
	return raw, nil
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
func (c *Codes) Redeem(ctx context.Context, raw string, r Redemption) (storage.Code, error) {
	kind, h, err := c.Keys.Parse(raw)
	if err != nil || kind != token.Code {
		return storage.Code{}, ErrCodeInvalid
	}
	now := c.Now()
	code, err := c.store.GetCode(ctx, h)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return code, ErrCodeInvalid
	case err != nil:
		return code, err
	case !code.UsedAt.IsZero():
		return code, c.replayed(ctx, code, r.AppID)
	case code.AppID != r.AppID || !now.Before(code.ExpiresAt):
		return code, ErrCodeInvalid
	case code.RedirectURI != "" && r.RedirectURI != code.RedirectURI:
		return code, ErrCodeRedirect
	}
	if err := pkce.Verify(code.CodeChallenge, code.CodeChallengeMethod, r.Verifier); err != nil {
		return code, &Error{Kind: Invalid, Field: "code_verifier", Message: err.Error(), Err: err}
	}
	if r.Fits != nil {
		if err := r.Fits(code); err != nil {
			return code, err
		}
	}
	code, err = c.store.UseCode(ctx, h, now)
	switch {
	case errors.Is(err, storage.ErrConflict):
		// Spent since it was read: a concurrent redemption, and one of the
		// two holds a copy.
		return code, c.replayed(ctx, code, r.AppID)
	case err != nil:
		return code, err
	}
	return code, nil
}

// replayed answers a code presented after its one use. Someone else may
// hold it: when its own app presents it again, everything it issued is
// revoked, its refresh tokens included (their family is the code; RFC 9700
// §4.14).
func (c *Codes) replayed(ctx context.Context, code storage.Code, appID int64) error {
	if code.AppID == appID {
		if err := c.revokeStolen(ctx, code.Hash, code.UserID, code.AppID, storage.RevokedCodeReplay, storage.AuditCodeReplay); err != nil {
			return err
		}
	}
	return ErrCodeUsed
}
