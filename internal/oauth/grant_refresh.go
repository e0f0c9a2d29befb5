package oauth

import (
	"context"

	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// refreshGrant is the refresh token grant (RFC 6749 §6; VK ID's,
// vkid-wire.md §3, with its device): the refresh token is rotated by
// platform.Refreshes (a spent one presented again revokes the grant), and
// a new access token of the grant issued, with the grant's scopes or, when
// scope is given, a subset of them.
type refreshGrant struct{ p *Provider }

// public: a standalone app refreshes without a secret; the token is bound
// to it.
func (g *refreshGrant) public() bool { return true }

var errNoRefresh = newError(protocol.InvalidRequest, 400, "refresh_token is missing")

func (g *refreshGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
	if e := g.p.builtinOnly(ctx, r.form); e != nil {
		return nil, e
	}
	raw, device := r.form.Get("refresh_token"), r.form.Get("device_id")
	switch {
	case raw == "":
		return nil, errNoRefresh
	case r.d.device && !ValidDeviceID(device):
		return nil, errVKIDDevice
	}
	var narrow scope.Mask
	if s := r.form.Get("scope"); s != "" {
		m, err := scope.Parse(scope.User, s)
		if err != nil {
			return nil, newError(protocol.InvalidScope, 400, err.Error())
		}
		narrow = m
	}
	grant, next, err := g.p.refreshes.Rotate(ctx, raw, r.client.ID, storage.Holder{JKT: r.jkt, DeviceID: device})
	if err != nil {
		return nil, err
	}
	in := r.issuance(grant, storage.FlowRefresh)
	in.Narrow, in.Refresh = narrow, next
	t, err := g.p.issuer.Issue(ctx, in)
	return issued(t), err
}
