package httpx

import (
	"encoding/json"
	"net/http"
	"strings"
)

// WriteJSON writes v as an answer nobody may cache, with status. The
// Content-Type is application/json unless the caller set one; <, > and &
// go out as they are, not escaped for HTML.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// Credential is the access token an Authorization header presents (RFC 6750
// §2.1 Bearer, or RFC 9449 §7.1 DPoP, which sets dpopScheme), "" when it
// presents none. Each endpoint decides whether a parameter (access_token)
// may stand in for the header.
func Credential(authorization string) (raw string, dpopScheme bool) {
	switch h := authorization; {
	case len(h) > 7 && strings.EqualFold(h[:7], "bearer "):
		return strings.TrimSpace(h[7:]), false
	case len(h) > 5 && strings.EqualFold(h[:5], "dpop "):
		return strings.TrimSpace(h[5:]), true
	}
	return "", false
}
