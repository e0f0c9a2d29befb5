package oauth

import (
	"encoding/json"
	"net/http"

	"latchkey/internal/httpx"
	"latchkey/internal/protocol"
)

// Error is an OAuth error. It is translated once: to JSON at the token
// endpoints (WriteJSON), and at /authorize either to the app's redirect URI
// (when Redirect is set, i.e. the client and redirect URI were verified) or
// to an error page.
type Error struct {
	Code        string
	Description string
	// Reason is VK's error_reason (e.g. user_denied); optional.
	Reason string
	// Status is the HTTP status at the token endpoint.
	Status int
	// Redirect: the error may be sent to the verified redirect URI.
	Redirect bool
	// Nonce, with use_dpop_nonce, is the DPoP nonce to use (the
	// DPoP-Nonce header).
	Nonce string
	// cause is the failure of ours behind a server_error, for the log only.
	cause error
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func newError(code string, status int, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: status}
}

// redirectable returns a copy of e that may go to the redirect URI.
func (e *Error) redirectable() *Error {
	c := *e
	c.Redirect = true
	return &c
}

// VK's exact descriptions (vk-wire.md §1–2).
var (
	errBadRedirectURI = newError(protocol.InvalidRequest, http.StatusBadRequest, "redirect_uri is incorrect, check application redirect uri in the settings page")
	errBadClientID    = newError(protocol.InvalidClient, http.StatusUnauthorized, "client_id is incorrect")
	errBadSecret      = newError(protocol.InvalidClient, http.StatusUnauthorized, "client_secret is incorrect")
	// prompt=none (OpenID Connect Core §3.1.2.6).
	ErrLoginRequired       = &Error{Code: "login_required", Description: "nobody is signed in, and prompt=none forbids asking", Status: http.StatusBadRequest, Redirect: true}
	ErrConsentRequired     = &Error{Code: "consent_required", Description: "the user has not approved this request, and prompt=none forbids asking", Status: http.StatusBadRequest, Redirect: true}
	ErrConsentNeeded       = &Error{Code: "interaction_required", Description: "the user has to approve the request, and prompt=none forbids asking", Status: http.StatusBadRequest, Redirect: true}
	ErrInteractionRequired = &Error{Code: "interaction_required", Description: "the session is below the sign-in level asked, and prompt=none forbids asking", Status: http.StatusBadRequest, Redirect: true}
	errUserDenied          = &Error{Code: protocol.AccessDenied, Reason: "user_denied", Description: "User denied your request", Status: http.StatusForbidden, Redirect: true}
)

// WriteJSON writes e as the token endpoints answer errors:
// {"error":…,"error_description":…}, no-store.
func WriteJSON(w http.ResponseWriter, e *Error) {
	switch e.Status {
	case http.StatusUnauthorized:
		// RFC 6749 §5.2: 401 with the scheme the client may use.
		w.Header().Set("WWW-Authenticate", `Basic realm="latchkey"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	if e.Nonce != "" {
		w.Header().Set("DPoP-Nonce", e.Nonce)
	}
	body := map[string]string{"error": e.Code, "error_description": e.Description}
	if e.Reason != "" {
		body["error_reason"] = e.Reason
	}
	writeJSON(w, e.Status, body)
}

// writeJSON writes a token endpoint's answer, which no cache may keep
// (RFC 6749 §5.1 asks for Pragma too).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Pragma", "no-cache")
	httpx.WriteJSON(w, status, v)
}

// writeBody writes v as a 200 JSON answer that caches may keep (the JWKS).
func writeBody(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
