package platform

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Apps inside the platform and on other sites (vk-wire.md §6).

// clientSecret opens the app's current client secret, the key of auth_key,
// sign and the widget's hash.
func (p *Apps) clientSecret(a storage.App) (string, error) {
	s, err := p.Keys.Open(a.Secret.Sealed)
	return string(s), err
}

// LaunchURL issues the viewer a user token for the iframe app (its
// IFrameScope; lifetime ttl, none with offline) and returns the app's
// iframe URL with the launch parameters: api_id, viewer_id, user_id,
// access_token, api_settings, auth_key = md5(api_id_viewer_id_api_secret),
// and the signed vk_* parameters with sign = base64url(HMAC-SHA256(secret,
// the vk_* pairs sorted by key as a query string)).
func (p *Apps) LaunchURL(ctx context.Context, viewer storage.User, a storage.App, ttl time.Duration, ip string) (string, error) {
	secret, err := p.clientSecret(a)
	if err != nil {
		return "", err
	}
	raw, err := p.launchToken(ctx, viewer, a, ttl, ip)
	if err != nil {
		return "", err
	}
	appID, viewerID := strconv.FormatInt(a.ID, 10), strconv.FormatInt(viewer.ID, 10)
	authKey := md5.Sum([]byte(appID + "_" + viewerID + "_" + secret))
	vk := url.Values{
		"vk_app_id": {appID}, "vk_user_id": {viewerID}, "vk_ts": {strconv.FormatInt(p.now().Unix(), 10)},
		"vk_is_app_user": {"1"}, "vk_are_notifications_enabled": {"0"}, "vk_language": {"en"}, "vk_platform": {"desktop_web"},
		"vk_access_token_settings": {strings.Join(a.IFrameScope.Names(scope.User), ",")},
	}
	q := url.Values{
		"api_id": {appID}, "viewer_id": {viewerID}, "user_id": {viewerID}, "access_token": {raw},
		"api_settings": {strconv.FormatInt(int64(a.IFrameScope), 10)}, "auth_key": {hex.EncodeToString(authKey[:])},
		"sign": {Sign(vk, secret)},
	}
	for k, v := range vk {
		q[k] = v
	}
	sep := "?"
	if strings.Contains(a.IFrameURL, "?") {
		sep = "&"
	}
	return a.IFrameURL + sep + q.Encode(), nil
}

// launchToken is the viewer's token for the iframe app: the live one of an
// earlier launch while it has at least half its lifetime left and the app
// asks for the same scopes, so that opening the app again does not mint a
// token each time; otherwise a new one, kept sealed for the next launch.
func (p *Apps) launchToken(ctx context.Context, viewer storage.User, a storage.App, ttl time.Duration, ip string) (string, error) {
	if a.IFrameScope.Has(scope.Offline) {
		ttl = 0
	}
	_, sealed, err := p.tokens.ReusableToken(ctx, a.ID, viewer.ID, storage.FlowIFrame, a.IFrameScope, p.now().Add(ttl/2))
	if err == nil {
		if raw, err := p.Keys.Open(sealed); err == nil {
			return string(raw), nil
		}
		// Sealed under a secret no longer configured: mint a new one.
	} else if !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	raw, _, err := p.issue(ctx, storage.Token{Kind: token.User, AppID: a.ID, UserID: viewer.ID, Scope: a.IFrameScope, IP: ip, Flow: storage.FlowIFrame}, ttl, true)
	return raw, err
}

// Sign is the launch parameters' signature: base64url without padding of
// HMAC-SHA256 under the app secret of the vk_* pairs sorted by key, joined
// as a query string.
func Sign(params url.Values, secret string) string {
	vk := url.Values{}
	for k, v := range params {
		if strings.HasPrefix(k, "vk_") {
			vk[k] = v
		}
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(vk.Encode())) // Encode sorts by key
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// WidgetData is what the authorization widget hands a site: uid,
// first_name, last_name, photo and hash = md5(app_id + user_id + secret).
func (p *Apps) WidgetData(a storage.App, u storage.User, photo string) (map[string]string, error) {
	secret, err := p.clientSecret(a)
	if err != nil {
		return nil, err
	}
	uid := strconv.FormatInt(u.ID, 10)
	h := md5.Sum([]byte(strconv.FormatInt(a.ID, 10) + uid + secret))
	return map[string]string{"uid": uid, "first_name": u.FirstName, "last_name": u.LastName, "photo": photo, "hash": hex.EncodeToString(h[:])}, nil
}

// Origins are the web origins registered for the app: those of its
// redirect URIs and of its iframe URL. The widget renders only there.
func Origins(a storage.App) []string {
	var out []string
	seen := map[string]bool{}
	for _, raw := range append(append([]string{}, a.RedirectURIs...), a.IFrameURL) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			continue
		}
		o := u.Scheme + "://" + u.Host
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

// OriginAllowed reports whether origin is registered for the app, exactly.
func OriginAllowed(a storage.App, origin string) bool {
	for _, o := range Origins(a) {
		if o == origin {
			return true
		}
	}
	return false
}
