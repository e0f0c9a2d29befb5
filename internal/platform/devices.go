package platform

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Devices is the one owner of the device authorization grant (RFC 8628):
// a device gets a device code and shows a person a short user code; the
// person types it at /device, logs in and decides; the device polls the
// token endpoint until then, no faster than the interval.
type Devices struct {
	*core
	store    storage.Grants
	consents *Consents
}

// The device flow's numbers (RFC 8628 §3.2, §3.5).
const (
	DeviceCodeTTL   = 10 * time.Minute
	DeviceInterval  = 5 * time.Second
	deviceSlowDown  = 5 * time.Second
	userCodeLetters = "BCDFGHJKLMNPQRSTVWXZ" // no vowels, no look-alikes (RFC 8628 §6.1)
	userCodeLen     = 8
)

// Why a device poll or a user code gets no further.
var (
	ErrDevicePending  = errors.New("the user has not decided yet")
	ErrDeviceSlowDown = errors.New("polled faster than the interval")
	ErrDeviceDenied   = errors.New("the user denied the request")
	ErrDeviceExpired  = errors.New("the device code expired")
	ErrDeviceInvalid  = &Error{Kind: Invalid, Field: "device_code", Message: "device_code is invalid or already used"}
	ErrNoSuchUserCode = &Error{Kind: NotFound, Field: "user_code", Message: "there is no pending request with this code: check it on your device"}
)

// NormalizeUserCode reads a user code as a person types it: any case, with
// or without the dash or spaces. It reports whether it is one at all.
func NormalizeUserCode(s string) (string, bool) {
	s = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
	if len(s) != userCodeLen {
		return "", false
	}
	for _, c := range s {
		if !strings.ContainsRune(userCodeLetters, c) {
			return "", false
		}
	}
	return s, true
}

// FormatUserCode shows a normalized user code as XXXX-XXXX.
func FormatUserCode(s string) string { return s[:4] + "-" + s[4:] }

func newUserCode() string {
	b := make([]byte, userCodeLen)
	rand.Read(b)
	for i := range b {
		b[i] = userCodeLetters[int(b[i])%len(userCodeLetters)] // 256 = 12×20+16: a slight bias, 34 bits of entropy
	}
	return string(b)
}

// Start begins a device authorization for the app and returns its device
// code and user code (normalized). apiID names the API asked for (0: the
// built-in API), m is then a mask of its scopes and claims the OpenID
// Connect scopes beside them.
func (d *Devices) Start(ctx context.Context, appID int64, m scope.Mask, apiID int64, claims scope.Mask) (string, string, error) {
	now := d.now()
	for range 5 {
		raw, h := d.Keys.Mint(token.Device)
		user := newUserCode()
		err := d.store.CreateDeviceCode(ctx, storage.DeviceCode{Hash: h, UserCode: token.HashOf(user), AppID: appID, Scope: m,
			Status: storage.DevicePending, Interval: DeviceInterval, IssuedAt: now, ExpiresAt: now.Add(DeviceCodeTTL), APIID: apiID, Claims: claims})
		if errors.Is(err, storage.ErrConflict) {
			continue // the user code is taken: draw another
		}
		return raw, user, err
	}
	return "", "", errors.New("no free user code after 5 draws")
}

// Pending returns the pending, unexpired request with the user code.
func (d *Devices) Pending(ctx context.Context, userCode string) (storage.DeviceCode, error) {
	code, ok := NormalizeUserCode(userCode)
	if !ok {
		return storage.DeviceCode{}, ErrNoSuchUserCode
	}
	dc, err := d.store.DeviceCodeByUserCode(ctx, token.HashOf(code))
	if errors.Is(err, storage.ErrNotFound) || err == nil && (dc.Status != storage.DevicePending || !d.Now().Before(dc.ExpiresAt)) {
		return dc, ErrNoSuchUserCode
	}
	return dc, err
}

// Decide records the person's answer to the pending request.
func (d *Devices) Decide(ctx context.Context, actor Actor, userCode string, approve bool) (storage.DeviceCode, error) {
	dc, err := d.Pending(ctx, userCode)
	if err != nil {
		return dc, err
	}
	dc, err = d.store.UpdateDeviceCode(ctx, dc.Hash, 0, func(c *storage.DeviceCode) error {
		if c.Status != storage.DevicePending {
			return ErrNoSuchUserCode
		}
		c.Status, c.UserID = storage.DeviceDenied, actor.UserID
		if approve {
			c.Status = storage.DeviceApproved
		}
		return nil
	})
	if err == nil && approve {
		if dc.APIID != 0 {
			err = d.consents.GrantAPI(ctx, actor.UserID, dc.AppID, dc.APIID, dc.Scope, dc.Claims)
		} else {
			err = d.consents.Grant(ctx, actor.UserID, dc.AppID, dc.Scope, nil, true)
		}
	}
	return dc, err
}

// Poll is the device's poll with its device code: the approved request,
// once, or why not yet (ErrDevicePending, ErrDeviceSlowDown with the
// interval raised by 5 s, ErrDeviceDenied, ErrDeviceExpired,
// ErrDeviceInvalid).
func (d *Devices) Poll(ctx context.Context, raw string, appID int64) (storage.DeviceCode, error) {
	kind, h, err := d.Keys.Parse(raw)
	if err != nil || kind != token.Device {
		return storage.DeviceCode{}, ErrDeviceInvalid
	}
	now := d.Now()
	var outcome error
	dc, err := d.store.UpdateDeviceCode(ctx, h, appID, func(c *storage.DeviceCode) error {
		switch {
		case !now.Before(c.ExpiresAt):
			outcome = ErrDeviceExpired
		case c.Status == storage.DeviceUsed:
			outcome = ErrDeviceInvalid
		case c.Status == storage.DeviceDenied:
			outcome = ErrDeviceDenied
		case !c.LastPollAt.IsZero() && now.Sub(c.LastPollAt) < c.Interval:
			c.Interval += deviceSlowDown
			outcome = ErrDeviceSlowDown
		case c.Status == storage.DevicePending:
			outcome = ErrDevicePending
		case c.Status == storage.DeviceApproved:
			c.Status = storage.DeviceUsed
		}
		c.LastPollAt = now
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return dc, ErrDeviceInvalid
	}
	if err != nil {
		return dc, err
	}
	return dc, outcome
}
