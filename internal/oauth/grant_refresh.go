package oauth

import (
	"context"
	"net/http"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// refreshGrant is the refresh token grant (RFC 6749 §6; VK ID's,
// vkid-wire.md §3, with its device): the refresh token is rotated by
// platform.Refreshes (a spent one presented again revokes the grant), and
// a new access token of the grant issued, with the grant's scopes or, when
// scope is given, a subset of them. A grant for an API keeps its resource
// (RFC 8707): another is invalid_target, checked before the token is spent.
type refreshGrant struct{ p *Provider }

// public: a standalone app refreshes without a secret; the token is bound
// to it.
func (g *refreshGrant) public() bool { return true }

var errNoRefresh = newError(protocol.InvalidRequest, 400, "refresh_token is missing")

func (g *refreshGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
	raw, device := r.form.Get("refresh_token"), r.form.Get("device_id")
	switch {
	case raw == "":
		return nil, errNoRefresh
	case r.d.device && !ValidDeviceID(device):
		return nil, errVKIDDevice
	}
	narrow, e := g.narrowing(ctx, r, raw)
	if e != nil {
		return nil, e
	}
	var grant platform.Grant
	var next string
	var err error
	if r.client.Profile == platform.ProfileFAPI2 {
		// Bound to the app's key, the token stays: FAPI 2.0 does not rotate it.
		grant, err = g.p.refreshes.Keep(ctx, raw, r.client.ID, r.jkt)
		next = raw
	} else {
		grant, next, err = g.p.refreshes.Rotate(ctx, raw, r.client.ID, storage.Holder{JKT: r.jkt, DeviceID: device})
	}
	if err != nil {
		return nil, err
	}
	in := r.issuance(grant, storage.FlowRefresh)
	in.Narrow, in.Refresh = narrow, next
	t, err := g.p.issuer.Issue(ctx, in)
	return issued(t), err
}

// narrowing is the scopes a refresh asks for (0: the grant's), by the
// names of the grant's API, and refuses a resource that is not the
// grant's: both checked before the refresh token is spent. A request
// without resource and with VK's scope names, as every legacy and VK ID
// client sends, reads nothing more.
func (g *refreshGrant) narrowing(ctx context.Context, r *tokenRequest, raw string) (scope.Mask, *Error) {
	s := r.form.Get("scope")
	if s == "" && len(r.form["resource"]) == 0 {
		return 0, nil
	}
	vk, vkErr := scope.Parse(scope.User, s)
	if vkErr == nil && len(r.form["resource"]) == 0 {
		return vk, nil
	}
	peeked, err := g.p.refreshes.Peek(ctx, raw, r.client.ID)
	switch {
	case err != nil && vkErr != nil && len(r.form["resource"]) == 0:
		// VK's names, misspelt: said so, as before this grant could be an API's.
		return 0, newError(protocol.InvalidScope, http.StatusBadRequest, vkErr.Error())
	case err != nil:
		return 0, r.d.refuse(err)
	}
	if e := g.p.sameResource(ctx, r.form, peeked.APIID); e != nil {
		return 0, e
	}
	if peeked.APIID == 0 {
		m, err := scope.Parse(scope.User, s)
		if err != nil {
			return 0, newError(protocol.InvalidScope, http.StatusBadRequest, err.Error())
		}
		return m, nil
	}
	if s == "" {
		return 0, nil
	}
	api, err := g.p.apis.Lookup(ctx, peeked.APIID)
	if err != nil {
		return 0, r.d.refuse(platform.ErrAPIGone)
	}
	m, _, err := apiRequestScopes(&api, s)
	if err != nil {
		return 0, newError(protocol.InvalidScope, http.StatusBadRequest, err.Error())
	}
	if !peeked.Scope.Has(m) {
		return 0, r.d.refuse(platform.ErrWiderScope) // the token is left unspent
	}
	return m, nil
}
