package platform

import (
	"context"
	"errors"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// Consents is the one owner of consent: whether a request may skip the
// dialog, and what a user has granted an app. Consent is remembered per
// (user, app) with its scope mask; a later request for a subset skips the
// dialog unless the app asks again (revoke=1). Grants are merged in storage
// in one statement, so concurrent grants never lose a scope.
type Consents struct {
	*core
	store interface {
		storage.Consents
		storage.Apps
	}
}

// Decision is what Check found: the consent so far (nil: none), and whether
// it covers the request, so the dialog can be skipped.
type Decision struct {
	Prior   *storage.Consent
	Covered bool
}

// Check decides whether the user's consent to the app covers want. ask
// (revoke=1) means the app wants the dialog shown whatever was granted.
// want 0 asks only whether the user has authorized the app at all.
func (c *Consents) Check(ctx context.Context, userID, appID int64, want scope.Mask, ask bool) (Decision, error) {
	prior, err := c.store.GetConsent(ctx, userID, appID)
	if errors.Is(err, storage.ErrNotFound) {
		return Decision{}, nil
	}
	if err != nil {
		return Decision{}, err
	}
	return Decision{Prior: &prior, Covered: !ask && prior.Scope.Has(want)}, nil
}

// Authorized reports whether the user has authorized the app (any consent):
// the app's users, who receive its notifications.
func (c *Consents) Authorized(ctx context.Context, userID, appID int64) (bool, error) {
	d, err := c.Check(ctx, userID, appID, 0, false)
	return d.Covered, err
}

// Grant records that the user granted the app m, added to what was granted
// before. d is the Decision Check returned for this request, when the caller
// has one (it saves a read): when it already covers m and the user was not
// asked again (refresh false), nothing is written. refresh moves the
// consent's time on (the user saw the dialog and agreed).
func (c *Consents) Grant(ctx context.Context, userID, appID int64, m scope.Mask, d *Decision, refresh bool) error {
	if d != nil && !refresh && d.Prior != nil && d.Prior.Scope.Has(m) {
		return nil
	}
	now := c.now()
	return c.store.MergeConsent(ctx, storage.Consent{UserID: userID, AppID: appID, Scope: m, CreatedAt: now, UpdatedAt: now})
}

// CheckAPI is Check for a request for the API apiID: covered when the
// consent to the API has want and the consent to the app itself has
// claims (its OpenID Connect scopes).
func (c *Consents) CheckAPI(ctx context.Context, userID, appID, apiID int64, want, claims scope.Mask, ask bool) (Decision, error) {
	prior, err := c.store.GetAPIConsent(ctx, userID, appID, apiID)
	if errors.Is(err, storage.ErrNotFound) {
		return Decision{}, nil
	}
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Prior: &prior, Covered: !ask && prior.Scope.Has(want)}
	if d.Covered && claims != 0 {
		app, err := c.Check(ctx, userID, appID, claims, false)
		if err != nil {
			return Decision{}, err
		}
		d.Covered = app.Covered
	}
	return d, nil
}

// GrantAPI records that the user granted the app m of the API apiID, and
// claims: the consent to the app itself (so that the person's authorized
// apps list it, and "Remove access" forgets both).
func (c *Consents) GrantAPI(ctx context.Context, userID, appID, apiID int64, m, claims scope.Mask) error {
	now := c.now()
	if err := c.store.MergeConsent(ctx, storage.Consent{UserID: userID, AppID: appID, Scope: claims, CreatedAt: now, UpdatedAt: now}); err != nil {
		return err
	}
	return c.store.MergeConsent(ctx, storage.Consent{UserID: userID, AppID: appID, APIID: apiID, Scope: m, CreatedAt: now, UpdatedAt: now})
}

// AuthorizedApp is an app the user has granted access to.
type AuthorizedApp struct {
	App     storage.App
	Consent storage.Consent
}

// AuthorizedApps lists the apps the user has authorized, newest first.
func (p *Consents) AuthorizedApps(ctx context.Context, userID int64) ([]AuthorizedApp, error) {
	consents, err := p.store.ListConsentsByUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]AuthorizedApp, 0, len(consents))
	for _, c := range consents {
		a, err := p.store.GetApp(ctx, c.AppID)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, AuthorizedApp{App: a, Consent: c})
	}
	return out, nil
}

// AppUserCount is how many users have authorized the app.
func (p *Consents) AppUserCount(ctx context.Context, appID int64) (int64, error) {
	return p.store.CountAppUsers(ctx, appID)
}
