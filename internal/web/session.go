package web

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

const (
	sessionCookie = "lk_session"
	csrfCookie    = "lk_csrf"
	sessionTTL    = storage.SessionLifetime
)

// Sessions are signed cookies: "<user id>.<issued, Unix ms>.<secret>.<tag>",
// the tag a MAC under the server secret, so any node can check them before
// storage is asked. The secret names the recorded session (platform.Sessions
// keeps its hash), which ends at logout, from another device, or when its
// user is disabled; a cookie lasts sessionTTL from issue at most.
type Sessions struct {
	keys   *token.Keyring
	now    func() time.Time
	secure bool
}

// Secure says whether cookies get the Secure attribute: the public URL is
// https, or a trusted proxy says the browser came over https.
func (s *Sessions) Secure(r *http.Request) bool { return s.secure || httpx.Scheme(r) == "https" }

// Set signs the browser in as userID, in the recorded session whose secret
// is secret.
func (s *Sessions) Set(w http.ResponseWriter, r *http.Request, userID int64, secret string) {
	issued := s.now()
	msg := strconv.FormatInt(userID, 10) + "." + strconv.FormatInt(issued.UnixMilli(), 10) + "." + secret
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: msg + "." + s.keys.Tag("session", msg), Path: "/",
		Expires: issued.Add(sessionTTL), HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// Clear signs the browser out.
func (s *Sessions) Clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteLaxMode})
}

// session returns the signed-in user's id, when the cookie was issued and
// the session's secret, or 0.
func (s *Sessions) session(r *http.Request) (int64, time.Time, string) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return 0, time.Time{}, ""
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 || !s.keys.VerifyTag("session", c.Value[:i], c.Value[i+1:]) {
		return 0, time.Time{}, ""
	}
	parts := strings.Split(c.Value[:i], ".")
	if len(parts) != 3 {
		return 0, time.Time{}, ""
	}
	id, err1 := strconv.ParseInt(parts[0], 10, 64)
	ms, err2 := strconv.ParseInt(parts[1], 10, 64)
	issued := time.UnixMilli(ms)
	if err1 != nil || err2 != nil || !s.now().Before(issued.Add(sessionTTL)) {
		return 0, time.Time{}, ""
	}
	return id, issued, parts[2]
}

// Pending sign-ins: a person who gave the right password and has a second
// factor to give next carries a signed cookie naming them, how they signed
// in so far, and when, for pendingTTL.
const (
	pendingCookie = "lk_signin"
	pendingTTL    = 10 * time.Minute
)

// SetPending records that userID proved amr and has a second factor to give.
func (s *Sessions) SetPending(w http.ResponseWriter, r *http.Request, userID int64, amr []string) {
	msg := strconv.FormatInt(userID, 10) + "." + strconv.FormatInt(s.now().UnixMilli(), 10) + "." + strings.Join(amr, "+")
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Value: msg + "." + s.keys.Tag("pending sign-in", msg), Path: "/",
		MaxAge: int(pendingTTL / time.Second), HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteLaxMode})
}

// Pending returns the pending sign-in's user and methods, or 0.
func (s *Sessions) Pending(r *http.Request) (int64, []string) {
	c, err := r.Cookie(pendingCookie)
	if err != nil {
		return 0, nil
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 || !s.keys.VerifyTag("pending sign-in", c.Value[:i], c.Value[i+1:]) {
		return 0, nil
	}
	parts := strings.Split(c.Value[:i], ".")
	if len(parts) != 3 {
		return 0, nil
	}
	id, err1 := strconv.ParseInt(parts[0], 10, 64)
	ms, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || s.now().Sub(time.UnixMilli(ms)) > pendingTTL {
		return 0, nil
	}
	return id, strings.Split(parts[2], "+")
}

// ClearPending forgets the pending sign-in.
func (s *Sessions) ClearPending(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteLaxMode})
}

// Browser names this browser for binding a passkey ceremony to it (a MAC
// of its CSRF cookie), giving it the cookie when it has none: a challenge
// answered in another browser is refused.
func (s *Sessions) Browser(w http.ResponseWriter, r *http.Request) string {
	s.CSRFToken(w, r)
	c, _ := r.Cookie(csrfCookie)
	return s.keys.Tag("browser", c.Value)
}

// ReauthMark marks a request that asks for a new login (prompt=login) as
// the browser is sent to log in: when it was sent, and which request it
// is, under a MAC. ReauthDone reads it back.
func (s *Sessions) ReauthMark(request string) string {
	ms := strconv.FormatInt(s.now().UnixMilli(), 10)
	return ms + "." + s.keys.Tag("reauth", ms+"|"+request)
}

// Seal seals b for the browser to keep (a cookie it can neither read nor
// change); Unseal opens it.
func (s *Sessions) Seal(b []byte) string { return base64.RawURLEncoding.EncodeToString(s.keys.Seal(b)) }

// Unseal opens what Seal sealed.
func (s *Sessions) Unseal(v string) ([]byte, error) {
	sealed, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, err
	}
	return s.keys.Open(sealed)
}

// Vouch is a tag by which this server later recognises msg as one it
// wrote for purpose (a form's hidden fields that must come back
// unchanged); Vouched checks one.
func (s *Sessions) Vouch(purpose, msg string) string { return s.keys.Tag("vouch "+purpose, msg) }

// Vouched reports whether tag is Vouch's for purpose and msg.
func (s *Sessions) Vouched(purpose, msg, tag string) bool {
	return tag != "" && s.keys.VerifyTag("vouch "+purpose, msg, tag)
}

// ReauthDone reports whether the browser signed in since mark was made for
// request: only a login after being sent to log in answers prompt=login,
// however recent the session (OpenID Connect Core §3.1.2.1).
func (s *Sessions) ReauthDone(r *http.Request, mark, request string) bool {
	ms, tag, ok := strings.Cut(mark, ".")
	if !ok || !s.keys.VerifyTag("reauth", ms+"|"+request, tag) {
		return false
	}
	sent, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return false
	}
	id, issued, _ := s.session(r)
	return id != 0 && !issued.Before(time.UnixMilli(sent))
}

// CSRFToken returns the form token for this browser, setting the random
// cookie it is bound to when the browser has none. The token is a MAC of the
// cookie, so a page on another site can neither read nor forge it.
func (s *Sessions) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	var v string
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 26 {
		v = c.Value
	} else {
		v = rand.Text()
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteLaxMode})
		// Let the rest of this request see it too.
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	}
	return s.keys.Tag("csrf", v)
}

var errCSRF = errors.New("the form has expired or did not come from this site: reload the page and try again")

// CheckCSRF verifies the csrf field of a POSTed form.
func (s *Sessions) CheckCSRF(r *http.Request) error {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !s.keys.VerifyTag("csrf", c.Value, r.PostForm.Get("csrf")) {
		return errCSRF
	}
	return nil
}

// Device cookies (OWASP, "Slow down online guessing attacks with device
// cookies"): a browser that logged in as a user gets a signed cookie naming
// that login. Its later login attempts for that login are counted against
// the cookie alone, so strangers who lock the login out do not lock out its
// owner on a browser they used before; strangers stay throttled.
const (
	deviceCookie = "lk_device"
	deviceTTL    = 365 * 24 * time.Hour
)

// SetDevice marks this browser as one login has logged in from.
func (s *Sessions) SetDevice(w http.ResponseWriter, r *http.Request, login string) {
	msg := base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(login))) + "." + rand.Text()[:16] + "." +
		strconv.FormatInt(s.now().Unix(), 10)
	http.SetCookie(w, &http.Cookie{
		Name: deviceCookie, Value: msg + "." + s.keys.Tag("device", msg), Path: "/login",
		Expires: s.now().Add(deviceTTL), HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteStrictMode,
	})
}

// Device returns the id of this browser's device cookie when it is genuine,
// unexpired and names login; "" otherwise.
func (s *Sessions) Device(r *http.Request, login string) string {
	c, err := r.Cookie(deviceCookie)
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 || !s.keys.VerifyTag("device", c.Value[:i], c.Value[i+1:]) {
		return ""
	}
	parts := strings.Split(c.Value[:i], ".")
	if len(parts) != 3 {
		return ""
	}
	name, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	issued, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || string(name) != strings.ToLower(login) || !s.now().Before(time.Unix(issued, 0).Add(deviceTTL)) {
		return ""
	}
	return parts[1]
}
