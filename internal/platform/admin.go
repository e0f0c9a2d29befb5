package platform

import (
	"context"
	"errors"
	"regexp"

	"latchkey/internal/password"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The operator's rules: admin tokens for the admin API, and what only an
// operator does to users (list them, disable them, set a password).

// Admin keeps the admin API's tokens and reads the audit log for
// operators.
type Admin struct {
	*core
	store storage.Credentials
}

// adminTokenName is what an admin token may be called.
var adminTokenName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ErrAdminToken refuses a credential that is not a live admin token.
var ErrAdminToken = errors.New("not a valid admin token")

// CreateAdminToken mints an admin token named name and returns it (it is
// stored hashed only: this is the one time it is seen).
func (p *Admin) CreateAdminToken(ctx context.Context, name string) (string, error) {
	if !adminTokenName.MatchString(name) {
		return "", &Error{Kind: Invalid, Field: "name", Message: "1 to 64 characters of letters, digits, '.', '_' and '-'"}
	}
	raw, h := p.Keys.Mint(token.Admin)
	err := p.store.CreateAdminToken(ctx, storage.AdminToken{Name: name, Hash: h, CreatedAt: p.now()})
	if errors.Is(err, storage.ErrConflict) {
		return "", &Error{Kind: Conflict, Field: "name", Message: "an admin token of that name exists: revoke it first"}
	}
	if err != nil {
		return "", err
	}
	p.audit(ctx, CLI, storage.AuditEvent{Action: storage.AuditAdminTokenNew, Detail: name})
	return raw, nil
}

// RevokeAdminToken ends the admin token named name.
func (p *Admin) RevokeAdminToken(ctx context.Context, name string) error {
	err := p.store.DeleteAdminToken(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return &Error{Kind: NotFound, Field: "name", Message: "no admin token has that name"}
	}
	if err == nil {
		p.audit(ctx, CLI, storage.AuditEvent{Action: storage.AuditAdminTokenGone, Detail: name})
	}
	return err
}

// CheckAdminToken returns the admin token raw is, or ErrAdminToken: its
// MAC is checked before storage is asked.
func (p *Admin) CheckAdminToken(ctx context.Context, raw string) (storage.AdminToken, error) {
	kind, h, err := p.Keys.Parse(raw)
	if err != nil || kind != token.Admin {
		return storage.AdminToken{}, ErrAdminToken
	}
	t, err := p.store.AdminToken(ctx, h)
	if errors.Is(err, storage.ErrNotFound) {
		return t, ErrAdminToken
	}
	return t, err
}

// ListUsers lists up to limit users (at most 1000) after the id after.
func (p *Users) ListUsers(ctx context.Context, after int64, limit int) ([]storage.User, error) {
	return p.store.ListUsers(ctx, after, min(max(limit, 1), 1000))
}

// ListApps lists apps for the operator, secrets opened as App shows them:
// those f matches, by id, up to f.Limit (1 to 1000) after f.After.
func (p *Apps) ListApps(ctx context.Context, actor Actor, f storage.AppFilter) ([]AppView, error) {
	if !actor.Operator {
		return nil, &Error{Kind: Forbidden, Message: "only the operator lists every app"}
	}
	f.Limit = min(max(f.Limit, 1), 1000)
	apps, err := p.store.ListApps(ctx, f)
	if err != nil {
		return nil, err
	}
	views := make([]AppView, 0, len(apps))
	for _, a := range apps {
		v, err := p.view(a)
		if err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	return views, nil
}

// SetPassword gives the user a new password and ends their sessions.
func (p *Users) SetPassword(ctx context.Context, actor Actor, id int64, pass string) error {
	if err := validPassword(pass); err != nil {
		return err
	}
	hash, err := password.Hash(ctx, pass)
	if err != nil {
		return busy(err)
	}
	if err := p.logouts.ending(ctx, id, all, func() error { return p.store.SetPassword(ctx, id, hash, p.Now()) }); err != nil {
		return orNotFound(err, "no user with id %d", id)
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditPasswordSet, Detail: "user " + itoa(id)})
	return nil
}

// DisableUser disables the account: it cannot log in, its sessions end,
// and every token it holds (user and community tokens, refresh tokens) is
// revoked. Apps it owns keep working.
func (p *Users) DisableUser(ctx context.Context, actor Actor, id int64) (storage.User, error) {
	if err := p.logouts.ending(ctx, id, all, func() error { return p.store.DisableUser(ctx, id, p.now()) }); err != nil {
		return storage.User{}, orNotFound(err, "no user with id %d", id)
	}
	if _, err := p.tokens.RevokeRefreshTokens(ctx, nil, 0, id, p.now()); err != nil {
		return storage.User{}, err
	}
	revoked, err := p.tokens.RevokeTokens(ctx, storage.TokenFilter{UserID: id}, storage.RevokedByAdmin, p.now())
	if err != nil {
		return storage.User{}, err
	}
	p.revoked(revoked)
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditUserDisabled, Detail: "user " + itoa(id) + ", tokens revoked: " + itoa(int64(len(revoked)))})
	return p.User(ctx, id)
}

// ListTokens lists tokens of an app or a user, newest first, as the admin
// API shows them (hashes only: tokens are never stored).
func (p *Tokens) ListTokens(ctx context.Context, f storage.TokenFilter) ([]storage.Token, error) {
	if f.AppID == 0 && f.UserID == 0 {
		return nil, &Error{Kind: Invalid, Message: "name an app or a user"}
	}
	return p.tokens.ListTokens(ctx, f)
}

// RevokeTokenByHash revokes the token whose hash is h, and what was
// exchanged from it, and reports whether it was live.
func (p *Tokens) RevokeTokenByHash(ctx context.Context, actor Actor, h token.Hash) (bool, error) {
	revoked, err := p.tokens.RevokeTokens(ctx, storage.TokenFilter{Hash: &h}, storage.RevokedByAdmin, p.now())
	if err != nil {
		return false, err
	}
	p.revoked(revoked)
	if len(revoked) == 0 {
		return false, nil
	}
	if _, err := p.revokeDerived(ctx, h, storage.RevokedByAdmin); err != nil {
		return true, err
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditTokenRevoke, Detail: "by the operator"})
	return true, nil
}

// Audit lists audit events, newest first: of an app, a community, or all.
func (p *Admin) Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	return p.auditLog.ListAudit(ctx, f)
}
