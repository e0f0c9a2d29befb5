package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// The device authorization grant (RFC 8628), for TVs, consoles and CLIs.

// DeviceAuthorization serves POST /oauth/device/code (RFC 8628 §3.1): the
// client, authenticated as at the token endpoint (a standalone app by its
// client_id), gets a device code, a user code and where a person types it.
func (p *Provider) DeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	client, _, _, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	api, e := p.resourceOf(r.Context(), r.PostForm)
	if e != nil {
		p.fail(w, r, e)
		return
	}
	var m, claims scope.Mask
	var err error
	if api != nil {
		m, claims, err = apiRequestScopes(api, r.PostForm.Get("scope"))
	} else {
		m, err = scope.Parse(scope.User, r.PostForm.Get("scope"))
	}
	if err != nil {
		p.fail(w, r, newError(protocol.InvalidScope, 400, err.Error()))
		return
	}
	device, user, err := p.devices.Start(r.Context(), client.ID, m, apiID(api), claims)
	if err != nil {
		p.fail(w, r, internal(err))
		return
	}
	verify := p.Cfg.PublicURL.JoinPath("/device")
	complete := *verify
	complete.RawQuery = url.Values{"user_code": {platform.FormatUserCode(user)}}.Encode()
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": device, "user_code": platform.FormatUserCode(user),
		"verification_uri": verify.String(), "verification_uri_complete": complete.String(),
		"expires_in": int64(platform.DeviceCodeTTL / time.Second), "interval": int64(platform.DeviceInterval / time.Second),
	})
}

// deviceGrant is the device code grant (RFC 8628 §3.4): the device polls;
// once the person approves, it gets a user token (and a refresh token), once.
type deviceGrant struct{ p *Provider }

// public: devices are mostly public clients.
func (g *deviceGrant) public() bool { return true }

func (g *deviceGrant) exchange(ctx context.Context, r *tokenRequest) (answer, error) {
	raw := r.form.Get("device_code")
	if raw == "" {
		return nil, newError(protocol.InvalidRequest, 400, "device_code is missing")
	}
	dc, err := g.p.devices.Poll(ctx, raw, r.client.ID)
	switch {
	case errors.Is(err, platform.ErrDevicePending):
		return nil, newError(protocol.AuthorizationPending, 400, "the user has not decided yet: poll again after the interval")
	case errors.Is(err, platform.ErrDeviceSlowDown):
		return nil, newError(protocol.SlowDown, 400, "polled too fast: the interval is now "+dc.Interval.String())
	case errors.Is(err, platform.ErrDeviceDenied):
		return nil, newError(protocol.AccessDenied, 400, "the user denied the request")
	case errors.Is(err, platform.ErrDeviceExpired):
		return nil, newError(protocol.ExpiredToken, 400, "the device code expired: start again")
	case err != nil:
		return nil, err
	}
	if e := g.p.sameResource(ctx, r.form, dc.APIID); e != nil {
		return nil, e
	}
	t, err := g.p.issuer.Issue(ctx, r.issuance(platform.Grant{Family: dc.Hash, AppID: dc.AppID, UserID: dc.UserID, Scope: dc.Scope,
		Authn: storage.Authn{AuthTime: dc.IssuedAt}, APIID: dc.APIID, Claims: dc.Claims}, storage.FlowDevice))
	return issued(t), err
}
