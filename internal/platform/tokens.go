package platform

import (
	"context"
	"errors"
	"strings"
	"time"

	"latchkey/internal/dpop"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Tokens checks and revokes credentials: the MAC before storage, the
// cache, the invalid / expired / revoked classification, DPoP presentation
// and the revocations an app or a user asks for.
type Tokens struct {
	*core
	signing  *Signing
	consents storage.Consents
	proofs   *dpop.Verifier
	nonces   *nonces
	usage    usage
}

// IssueToken mints a token of t.Kind, stores t with its hash, and returns the
// token string. t.IssuedAt is set to now; t.ExpiresAt is now+ttl, or never
// when ttl is 0.
func (p *Tokens) IssueToken(ctx context.Context, t storage.Token, ttl time.Duration) (string, storage.Token, error) {
	return p.issueToken(ctx, t, ttl)
}

// issueToken is issue without sealing.
func (c *core) issueToken(ctx context.Context, t storage.Token, ttl time.Duration) (string, storage.Token, error) {
	return c.issue(ctx, t, ttl, false)
}

// issue is IssueToken that, when seal is set, also keeps the token sealed
// so that it can be handed out again.
func (p *core) issue(ctx context.Context, t storage.Token, ttl time.Duration, seal bool) (string, storage.Token, error) {
	raw, t := p.mint(t, ttl, seal)
	if err := p.tokens.CreateToken(ctx, t); err != nil {
		return "", t, refused(err)
	}
	p.issued(t.Kind)
	return raw, t, nil
}

// mint is issue's token, not yet stored.
func (p *core) mint(t storage.Token, ttl time.Duration, seal bool) (string, storage.Token) {
	raw, h := p.Keys.Mint(t.Kind)
	t.Hash = h
	if seal {
		t.Sealed = p.Keys.Seal([]byte(raw))
	}
	t.IssuedAt = p.now()
	if ttl > 0 {
		t.ExpiresAt = t.IssuedAt.Add(ttl)
	}
	return raw, t
}

// issueGrant writes what a grant hands out at once (storage.IssueGrant): the
// code it spends, when it spends one, and its tokens. A code spent before
// is a replay (codeReplayed).
func (p *core) issueGrant(ctx context.Context, w storage.GrantTokens) error {
	switch err := p.tokens.IssueGrant(ctx, w); {
	case errors.Is(err, storage.ErrConflict) && w.Spent != nil:
		return p.codeReplayed(ctx, *w.Spent, w.Spent.AppID)
	case err != nil:
		return refused(err)
	}
	p.issued(w.Access.Kind)
	if w.Refresh != nil {
		p.issued(token.Refresh)
	}
	return nil
}

// codeReplayed answers a code presented after its one use. Someone else
// may hold it: when its own app presents it again, everything it issued is
// revoked, its refresh tokens included (their family is the code; RFC 9700
// §4.14).
func (p *core) codeReplayed(ctx context.Context, code storage.Code, appID int64) error {
	if code.AppID == appID {
		if err := p.revokeStolen(ctx, code.Hash, code.UserID, code.AppID, storage.RevokedCodeReplay, storage.AuditCodeReplay); err != nil {
			return err
		}
	}
	return ErrCodeUsed
}

// ErrUserDisabled refuses every grant of a disabled user: no token or
// refresh token is issued to or for them, whatever the grant (a code or a
// device code they approved before the disable, a refresh, an exchange).
// The rule is kept where tokens are stored, in the insert itself, so that
// an issue racing the disable is either refused or revoked by it.
var ErrUserDisabled = &Error{Kind: Invalid, Message: "the user's account is disabled", Err: storage.ErrUserDisabled}

// ErrGrantRevoked refuses a token of a grant that was revoked while it was
// being issued (a refresh token replayed during a rotation, a code
// replayed during its redemption).
var ErrGrantRevoked = &Error{Kind: Invalid, Message: "the grant was revoked", Err: storage.ErrGrantRevoked}

// refused turns storage's refusal to store a token (its user disabled, its
// grant revoked) into the platform's error.
func refused(err error) error {
	switch {
	case errors.Is(err, storage.ErrUserDisabled):
		return ErrUserDisabled
	case errors.Is(err, storage.ErrGrantRevoked):
		return ErrGrantRevoked
	}
	return err
}

// Why a token does not work. These three are the whole classification:
// every edge (the API's error 5, introspection, secure.checkToken) tells
// them apart through Refused and errors.Is, never by looking at a record.
var (
	ErrTokenInvalid = errors.New("token is malformed, forged or unknown")
	ErrTokenExpired = errors.New("token has expired")
	ErrTokenRevoked = errors.New("token was revoked")
)

// Refused reports whether err says the token does not work (invalid,
// expired or revoked), as opposed to a failure to check it.
func Refused(err error) bool {
	return errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenRevoked)
}

// CheckToken returns the token record of raw, with an error when it does not
// work (ErrTokenInvalid, ErrTokenExpired, ErrTokenRevoked). A malformed or
// forged token is refused by its MAC without touching storage; a known one
// is served from the cache, which every revocation path invalidates.
func (p *Tokens) CheckToken(ctx context.Context, raw string) (storage.Token, error) {
	return p.CheckTokenAt(ctx, raw, p.Now())
}

// CheckTokenAt is CheckToken with expiry judged at now, for a caller that
// has already read the clock (the API, once per call).
func (p *Tokens) CheckTokenAt(ctx context.Context, raw string, now time.Time) (storage.Token, error) {
	kind, h, err := p.Keys.Parse(raw)
	if err != nil || !kind.Credential() {
		return storage.Token{}, ErrTokenInvalid
	}
	return p.checkHash(ctx, h, now)
}

// CheckAccessToken is CheckToken for an access token of any format: an
// opaque one as CheckToken checks it; an RFC 9068 JWT by its signature
// first (no storage for a forgery), then by its record, so that one
// revoked before it expires is refused here (a resource server that
// verifies JWTs itself learns of a revocation only by introspection).
func (p *Tokens) CheckAccessToken(ctx context.Context, raw string) (storage.Token, error) {
	if _, _, err := p.Keys.Parse(raw); err == nil {
		return p.CheckToken(ctx, raw)
	}
	if strings.Count(raw, ".") != 2 || len(raw) > maxJWT || p.signing == nil {
		return storage.Token{}, ErrTokenInvalid
	}
	var c AccessClaims
	switch err := p.signing.Verify(ctx, raw, &c); {
	case errors.Is(err, ErrBadJWT):
		return storage.Token{}, ErrTokenInvalid
	case err != nil:
		return storage.Token{}, err
	}
	return p.checkHash(ctx, token.HashOf(raw), p.Now())
}

// maxJWT bounds a JWT access token checked: ours are far shorter.
const maxJWT = 8 << 10

// checkHash is the record of the token whose hash is h, through the cache,
// with why it does not work at now.
func (p *Tokens) checkHash(ctx context.Context, h token.Hash, now time.Time) (storage.Token, error) {
	t, gen, ok := p.Cache.Get(h)
	if !ok {
		var err error
		t, err = p.tokens.GetToken(ctx, h)
		if errors.Is(err, storage.ErrNotFound) {
			// Remember the miss: a token is stored before it is handed
			// out, so one that is not there now never will be.
			p.Cache.PutMissing(h, gen)
			return t, ErrTokenInvalid
		}
		if err != nil {
			return t, err
		}
		// Revoked records are cached too: revocation is final, and a
		// revoked token retried in a loop should not reach storage.
		p.Cache.Put(t, gen)
	}
	if t.Kind == 0 { // a remembered miss
		return t, ErrTokenInvalid
	}
	switch {
	case !t.RevokedAt.IsZero():
		return t, ErrTokenRevoked
	case t.Expired(now):
		return t, ErrTokenExpired
	}
	return t, nil
}

// RevokeToken revokes raw if it belongs to appID (RFC 7009: a client may
// revoke only its own tokens). Unknown tokens, and other apps' tokens, are
// ignored without saying so.
//
// A refresh token revokes its whole grant: the refresh tokens and the
// access tokens that came from the same authorization (RFC 7009 §2.1).
func (p *Tokens) RevokeToken(ctx context.Context, actor Actor, appID int64, raw string) error {
	kind, h, err := p.Keys.Parse(raw)
	if err != nil && strings.Count(raw, ".") == 2 && len(raw) <= maxJWT {
		// A JWT access token: revoked by its hash, if it is the app's.
		kind, h, err = token.Service, token.HashOf(raw), nil
	}
	if err != nil {
		return nil
	}
	var revoked []token.Hash
	if kind == token.Refresh {
		rt, err := p.tokens.GetRefreshToken(ctx, h, appID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if revoked, err = p.revokeGrant(ctx, rt.Family, storage.RevokedByApp); err != nil {
			return err
		}
	} else {
		if revoked, err = p.tokens.RevokeTokens(ctx, storage.TokenFilter{Hash: &h, AppID: appID}, storage.RevokedByApp, p.now()); err != nil {
			return err
		}
		p.revoked(revoked)
		if len(revoked) > 0 {
			// The app's own token: the tokens exchanged from it (RFC 8693)
			// go with it.
			derived, err := p.revokeDerived(ctx, h, storage.RevokedByApp)
			if err != nil {
				return err
			}
			revoked = append(revoked, derived...)
		}
	}
	if len(revoked) > 0 {
		p.audit(ctx, actor, storage.AuditEvent{AppID: appID, Action: storage.AuditTokenRevoke})
	}
	return nil
}

// revokeGrant revokes every refresh and access token of a grant, named by
// its family: the code or device code it began with, or the token it was
// exchanged from. Codes replayed, refresh tokens reused and RFC 7009
// revocations all end grants this way.
//
// It is one write, recorded with the family: a rotation or a redemption
// of the grant that is under way (its old credential spent, its new tokens
// not yet stored) then stores nothing, so no later token of the grant is
// live (ErrGrantRevoked).
func (p *core) revokeGrant(ctx context.Context, family token.Hash, reason storage.RevokeReason) ([]token.Hash, error) {
	revoked, err := p.tokens.RevokeGrant(ctx, family, reason, p.now())
	if err != nil {
		return nil, err
	}
	p.revoked(revoked)
	return revoked, nil
}

// revokeDerived revokes every token exchanged from the token h (RFC 8693),
// at any depth: a token obtained by exchange never outlives the token it
// was obtained with. (Tokens exchanged before parents were recorded were
// filed under h's grant, or under h itself when it had none: those go too.)
func (p *core) revokeDerived(ctx context.Context, h token.Hash, reason storage.RevokeReason) ([]token.Hash, error) {
	revoked, err := p.tokens.RevokeTokens(ctx, storage.TokenFilter{DerivedFrom: &h}, reason, p.now())
	if err != nil {
		return nil, err
	}
	p.revoked(revoked)
	filed, err := p.revokeGrant(ctx, h, reason)
	return append(revoked, filed...), err
}

// revokeStolen revokes the grant of a credential presented again after its
// one use (a replayed code, a reused refresh token), and records why.
func (p *core) revokeStolen(ctx context.Context, family token.Hash, userID, appID int64, reason storage.RevokeReason, action storage.AuditAction) error {
	revoked, err := p.revokeGrant(ctx, family, reason)
	if err != nil {
		return err
	}
	p.audit(ctx, Actor{UserID: userID}, storage.AuditEvent{AppID: appID, Action: action, Detail: "tokens revoked: " + itoa(int64(len(revoked)))})
	return nil
}

// EndSignIn ends the sign-in t belongs to (VK ID's logout): every token of
// its grant, refresh tokens included, or t alone (and what was exchanged
// from it) when it has no grant. Other sign-ins of the user and app stay.
func (p *Tokens) EndSignIn(ctx context.Context, actor Actor, t storage.Token) error {
	if t.CodeHash != nil {
		if _, err := p.revokeGrant(ctx, *t.CodeHash, storage.RevokedLogout); err != nil {
			return err
		}
	} else {
		revoked, err := p.tokens.RevokeTokens(ctx, storage.TokenFilter{Hash: &t.Hash, AppID: t.AppID}, storage.RevokedLogout, p.now())
		if err != nil {
			return err
		}
		p.revoked(revoked)
		if _, err := p.revokeDerived(ctx, t.Hash, storage.RevokedLogout); err != nil {
			return err
		}
	}
	actor.UserID = t.UserID
	p.audit(ctx, actor, storage.AuditEvent{AppID: t.AppID, Action: storage.AuditTokenRevoke, Detail: "logout"})
	return nil
}

// RemoveAppAccess is a user's "Remove access": every token of that (user,
// app) pair stops working, and the consent is forgotten, so the next
// request shows the dialog again.
func (p *Tokens) RemoveAppAccess(ctx context.Context, actor Actor, userID, appID int64) error {
	if _, err := p.tokens.RevokeRefreshTokens(ctx, nil, appID, userID, p.now()); err != nil {
		return err
	}
	revoked, err := p.tokens.RevokeTokens(ctx, storage.TokenFilter{AppID: appID, UserID: userID, Kind: token.User}, storage.RevokedByUser, p.now())
	if err != nil {
		return err
	}
	p.revoked(revoked)
	if err := p.consents.DeleteConsent(ctx, userID, appID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	p.audit(ctx, actor, storage.AuditEvent{AppID: appID, Action: storage.AuditAccessRemoved, Detail: "user " + itoa(userID)})
	return nil
}
