package authorize

import (
	"context"
	"embed"
	"errors"
	"net/http"
	"strings"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/metrics"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/web"
)

// The /device page (RFC 8628 §3.3): a person types the code a device
// shows, logs in, and sees the usual consent dialog. A wrong code costs
// what a wrong password does: 5 per person and 20 per address in 15
// minutes, counted before the code is looked up.

// Devices is what the page asks of the device grant (platform.Devices).
type Devices interface {
	Pending(ctx context.Context, userCode string) (storage.DeviceCode, error)
	Decide(ctx context.Context, actor platform.Actor, userCode string, approve bool) (storage.DeviceCode, error)
}

// Apps names the app that asks.
type Apps interface {
	LookupApp(ctx context.Context, id int64) (storage.App, error)
}

// APIs finds the API a device asks for (platform.APIs).
type APIs interface {
	Lookup(ctx context.Context, id int64) (storage.API, error)
}

//go:embed templates/*.html
var templateFiles embed.FS

// pages are this package's pages, each with the type of its view.
type pages struct {
	device *web.Template[deviceView]
}

func newPages(k *web.Kit) pages {
	return pages{
		device: web.NewTemplate[deviceView](k, templateFiles, "device"),
	}
}

// DevicePage serves /device.
type DevicePage struct {
	pages pages
	*web.Kit
	devices Devices
	apps    Apps
	apis    APIs
	guesses *web.Throttle
}

// NewDevicePage returns the page.
func NewDevicePage(k *web.Kit, d Devices, apps Apps, apis APIs, now func() time.Time) *DevicePage {
	return &DevicePage{Kit: k, devices: d, apps: apps, apis: apis, guesses: k.Throttle("device", 15*time.Minute), pages: newPages(k)}
}

type deviceView struct {
	UserCode string
	Done     bool
}

// Form serves GET /device (?user_code= fills the code in).
func (h *DevicePage) Form(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	code := r.URL.Query().Get("user_code")
	if len(code) > 20 {
		code = ""
	}
	h.pages.device.Render(w, r, http.StatusOK, web.Page{Title: "Connect a device", User: u}, deviceView{UserCode: code})
}

// Submit serves POST /device: the code typed, then the dialog's answer.
func (h *DevicePage) Submit(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	code := r.PostForm.Get("user_code")
	page := func(status int, notice, errMsg string, done bool) {
		h.pages.device.Render(w, r, status, web.Page{Title: "Connect a device", User: u, Notice: notice, Error: errMsg}, deviceView{UserCode: code, Done: done})
	}
	decision := r.PostForm.Get("decision")
	if decision != "" && decision != "allow" && decision != "deny" {
		page(http.StatusBadRequest, "", "Choose Allow or Deny.", false)
		return
	}
	// Every look-up of a user code counts first, the dialog's answer too:
	// its form carries the code, and a wrong one there is a guess as well.
	keys := []string{"device-ip:" + httpx.ClientIP(r), "device-user:" + strings.ToLower(u.Login)}
	limits := []int{20, 5}
	for i, k := range keys {
		ok, _, err := h.guesses.Take(r.Context(), k, limits[i])
		if err != nil {
			h.Fail(w, r, err)
			return
		}
		if !ok {
			h.Metrics.Limited(metrics.LimitDeviceCode)
			page(http.StatusTooManyRequests, "", "Too many wrong codes. Try again in a few minutes.", false)
			return
		}
	}
	var dc storage.DeviceCode
	var err error
	if decision == "" {
		dc, err = h.devices.Pending(r.Context(), code)
	} else {
		dc, err = h.devices.Decide(r.Context(), web.Actor(u, r), code, decision == "allow")
	}
	if errors.Is(err, platform.ErrNoSuchUserCode) {
		page(http.StatusUnprocessableEntity, "", web.Sentence(err), false)
		return
	}
	if !h.Answered(w, r, err) {
		return
	}
	for _, k := range keys {
		if err := h.guesses.Refund(r.Context(), k); err != nil { // a right code costs nothing
			h.Log.WarnContext(r.Context(), "giving back a device code attempt failed", "err", err)
		}
	}
	switch decision {
	case "allow":
		page(http.StatusOK, "Done. Your device is connected: you can return to it.", "", true)
		return
	case "deny":
		page(http.StatusOK, "Not allowed. Your device will be told so.", "", true)
		return
	}
	app, err := h.apps.LookupApp(r.Context(), dc.AppID)
	if !h.Answered(w, r, err) {
		return
	}
	v := web.ConsentView{App: app, Scopes: dc.Scope.Scopes(scope.User), Action: "/device", Hidden: []web.Hidden{{Name: "user_code", Value: code}}}
	if dc.APIID != 0 {
		api, err := h.apis.Lookup(r.Context(), dc.APIID)
		if !h.Answered(w, r, err) {
			return
		}
		v.API, v.Scopes, v.APIScopes = api.Name, dc.Claims.Scopes(scope.User), web.APIScopesOf(&api, dc.Scope)
	}
	h.Consent.Render(w, r, http.StatusOK, web.Page{Title: "Allow access", User: u}, v)
}
