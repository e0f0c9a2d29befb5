package platform

import (
	"context"
	"errors"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Refreshes is the one owner of refresh tokens (RFC 6749 §6, RFC 9700
// §4.14): it issues them with expiring code-flow tokens, rotates them on
// every use, and treats the reuse of a spent one as theft: the whole grant
// (every refresh and access token of its family) is revoked, unless the
// reuse comes within the grace period of the first use (a client that lost
// the answer may retry).
type Refreshes struct {
	*core
	store storage.Grants
	// TTL is a refresh token's lifetime; Grace the reuse window (0: none).
	TTL, Grace time.Duration
	// pause, when set (by tests), runs between spending a refresh token and
	// storing the next: where a replay used to leave a live chain.
	pause func()
}

// Grant is what a refresh token stands for.
type Grant struct {
	// Family is the grant's id: the hash of the code it began with.
	Family token.Hash
	AppID  int64
	UserID int64
	Scope  scope.Mask
	// Authn is the sign-in the grant began with (auth_time, amr, sid).
	storage.Authn
	Nonce string
	// JKT binds the refresh tokens to a DPoP key ("" for none).
	JKT string
	// DeviceID binds them to a VK ID device ("" for none).
	DeviceID string
	// APIID is the API the grant is for (0: the built-in API), Scope then
	// a mask of its scopes; Claims are the OpenID Connect scopes asked
	// beside them (openid, profile, email, offline: built-in bits).
	APIID  int64
	Claims scope.Mask
}

// ErrRefreshInvalid refuses a refresh token that is unknown, another app's,
// expired, revoked or spent (vkid-wire.md §8 has VK ID's words).
var ErrRefreshInvalid = &Error{Kind: Invalid, Field: "refresh_token", Message: "refresh_token is missing or invalid"}

// Issue mints the grant's next refresh token.
func (r *Refreshes) Issue(ctx context.Context, g Grant) (string, error) {
	raw, rec := r.mint(g)
	if err := r.store.CreateRefreshToken(ctx, *rec); err != nil {
		return "", refused(err)
	}
	r.issued(token.Refresh)
	return raw, nil
}

// mint is Issue's refresh token, not yet stored.
func (r *Refreshes) mint(g Grant) (string, *storage.RefreshToken) {
	raw, h := r.Keys.Mint(token.Refresh)
	now := r.now()
	return raw, &storage.RefreshToken{Hash: h, Family: g.Family, AppID: g.AppID, UserID: g.UserID, Scope: g.Scope,
		Authn: g.Authn, Nonce: g.Nonce, IssuedAt: now, ExpiresAt: now.Add(r.TTL), Holder: storage.Holder{JKT: g.JKT, DeviceID: g.DeviceID},
		APIID: g.APIID, Claims: g.Claims}
}

// Rotate spends the app's refresh token raw and returns its grant with the
// next refresh token. Of concurrent uses one wins; the others are reuses.
// A token bound to a DPoP key or a VK ID device is refused, unspent, to
// another holder than by (holders).
func (r *Refreshes) Rotate(ctx context.Context, raw string, appID int64, by storage.Holder) (Grant, string, error) {
	kind, h, err := r.Keys.Parse(raw)
	if err != nil || kind != token.Refresh {
		return Grant{}, "", ErrRefreshInvalid
	}
	now := r.Now()
	old, err := r.store.UseRefreshToken(ctx, h, appID, now, holders(by))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return Grant{}, "", ErrRefreshInvalid
	case errors.Is(err, storage.ErrConflict) && old.UsedAt.IsZero() && old.RevokedAt.IsZero():
		return Grant{}, "", ErrRefreshInvalid // live, but another holder's: left unspent
	case errors.Is(err, storage.ErrConflict):
		if !r.retry(old, now) {
			if old.RevokedAt.IsZero() {
				// A spent token presented again: it was copied. Revoke the grant.
				if err := r.revokeStolen(ctx, old.Family, old.UserID, old.AppID, storage.RevokedRefreshReuse, storage.AuditRefreshReuse); err != nil {
					return Grant{}, "", err
				}
			}
			return Grant{}, "", ErrRefreshInvalid
		}
		// A retry within the grace period: a new pair, no alarm.
	case err != nil:
		return Grant{}, "", err
	}
	if !now.Before(old.ExpiresAt) {
		return Grant{}, "", ErrRefreshInvalid
	}
	g := grantOf(old)
	if r.pause != nil {
		r.pause()
	}
	next, err := r.Issue(ctx, g)
	if errors.Is(err, ErrGrantRevoked) {
		return g, "", ErrRefreshInvalid // replayed meanwhile: the grant is gone
	}
	return g, next, err
}

// Keep is Rotate for a refresh token bound to a DPoP key that does not
// rotate (FAPI 2.0 §5.3.2.1: sender-constrained refresh tokens need not):
// the grant of the app's live, unspent, unexpired token raw when jkt is
// its key, the token itself staying as it is (ErrRefreshInvalid
// otherwise, an unbound token included).
func (r *Refreshes) Keep(ctx context.Context, raw string, appID int64, jkt string) (Grant, error) {
	old, err := r.stored(ctx, raw, appID)
	if err != nil {
		return Grant{}, err
	}
	if old.JKT == "" || old.JKT != jkt || !old.UsedAt.IsZero() || !old.RevokedAt.IsZero() || !r.Now().Before(old.ExpiresAt) {
		return Grant{}, ErrRefreshInvalid
	}
	return grantOf(old), nil
}

// grantOf is the grant a refresh token carries.
func grantOf(old storage.RefreshToken) Grant {
	return Grant{Family: old.Family, AppID: old.AppID, UserID: old.UserID, Scope: old.Scope, Authn: old.Authn, Nonce: old.Nonce, JKT: old.JKT,
		DeviceID: old.DeviceID, APIID: old.APIID, Claims: old.Claims}
}

// stored is the app's refresh token raw as storage keeps it, read without
// spending it (ErrRefreshInvalid for none).
func (r *Refreshes) stored(ctx context.Context, raw string, appID int64) (storage.RefreshToken, error) {
	kind, h, err := r.Keys.Parse(raw)
	if err != nil || kind != token.Refresh {
		return storage.RefreshToken{}, ErrRefreshInvalid
	}
	old, err := r.store.GetRefreshToken(ctx, h, appID)
	if errors.Is(err, storage.ErrNotFound) {
		return old, ErrRefreshInvalid
	}
	return old, err
}

// holders is the binding of refresh tokens, as the holders whose tokens by
// may use: an unbound token (its app's), and one bound to by's DPoP key,
// by's VK ID device, or both. A token bound to another key or device is
// never by's.
func holders(by storage.Holder) []storage.Holder {
	return []storage.Holder{{}, {JKT: by.JKT}, {DeviceID: by.DeviceID}, by}
}

// retry reports whether a spent refresh token presented again is a client
// retrying within the grace period (it lost the answer), not a copy.
func (r *Refreshes) retry(old storage.RefreshToken, now time.Time) bool {
	return old.RevokedAt.IsZero() && r.Grace > 0 && now.Before(old.UsedAt.Add(r.Grace)) && now.Before(old.ExpiresAt)
}

// Peek is the grant of the app's refresh token raw, without spending it,
// for checks that must come before (a request's resource, its scopes by
// the grant's names): ErrRefreshInvalid when it is no live one.
func (r *Refreshes) Peek(ctx context.Context, raw string, appID int64) (Grant, error) {
	old, err := r.stored(ctx, raw, appID)
	if err != nil {
		return Grant{}, err
	}
	return Grant{Family: old.Family, AppID: old.AppID, UserID: old.UserID, Scope: old.Scope, APIID: old.APIID, Claims: old.Claims}, nil
}
