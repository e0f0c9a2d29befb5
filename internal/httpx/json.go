package httpx

import (
	"encoding/json"
	"net/http"
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
