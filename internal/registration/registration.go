// Package registration serves dynamic client registration (RFC 7591) at
// POST /oauth/register and its management (RFC 7592) at
// /oauth/register/<client_id>: a client registers itself, then reads,
// replaces or deletes its registration with the registration access token
// it was given. Who may register is the --registration mode: no one, the
// holders of an initial access token, or anyone, throttled per client
// address.
package registration

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/web"
)

// maxBody bounds a registration's JSON: the work of one unauthenticated
// request.
const maxBody = 64 << 10

// Service registers and manages clients (platform.Registrations).
type Service interface {
	Register(ctx context.Context, m platform.ClientMetadata, initial string, required bool, address string) (platform.RegisteredClient, error)
	Read(ctx context.Context, clientID int64, access string) (platform.RegisteredClient, error)
	Replace(ctx context.Context, clientID int64, access string, m platform.ClientMetadata) (platform.RegisteredClient, error)
	Delete(ctx context.Context, clientID int64, access string) error
}

// Handler serves the registration endpoints.
type Handler struct {
	Service Service
	// Mode is platform.RegistrationOff, RegistrationToken or
	// RegistrationOpen.
	Mode string
	// Rate is how many registrations an hour one client address may make
	// in open mode.
	Rate int
	Log  *slog.Logger
	// Throttle counts registrations per client address, in storage: the
	// limit holds for the whole deployment, however many nodes.
	Throttle *web.Throttle
}

// New makes the handler; throttle counts open registrations in windows of
// an hour.
func New(s Service, mode string, rate int, throttle *web.Throttle, log *slog.Logger) *Handler {
	return &Handler{Service: s, Mode: mode, Rate: rate, Throttle: throttle, Log: log}
}

// Register serves POST /oauth/register.
func (h *Handler) Register(w http.ResponseWriter, r *http.Request) {
	if h.Mode == platform.RegistrationOff {
		writeError(w, http.StatusNotFound, "not_found", "dynamic client registration is off on this server")
		return
	}
	address := httpx.ClientIP(r)
	if h.Mode == platform.RegistrationOpen {
		// Counted before anything is read: a refused or malformed
		// registration costs its sender as much as a good one.
		ok, wait, err := h.Throttle.Take(r.Context(), address, h.Rate)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			writeError(w, http.StatusTooManyRequests, "slow_down", "too many registrations from this address: try again later")
			return
		}
	}
	m, ok := readMetadata(w, r)
	if !ok {
		return
	}
	initial, _ := httpx.Credential(r.Header.Get("Authorization"))
	out, err := h.Service.Register(r.Context(), m, initial, h.Mode == platform.RegistrationToken, address)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	httpx.WriteJSON(w, http.StatusCreated, out)
}

// Manage serves GET, PUT and DELETE /oauth/register/{client_id}.
func (h *Handler) Manage(w http.ResponseWriter, r *http.Request) {
	if h.Mode == platform.RegistrationOff {
		writeError(w, http.StatusNotFound, "not_found", "dynamic client registration is off on this server")
		return
	}
	access, _ := httpx.Credential(r.Header.Get("Authorization"))
	id, err := strconv.ParseInt(r.PathValue("client_id"), 10, 64)
	if err != nil || id <= 0 || access == "" {
		h.fail(w, r, platform.ErrRegistrationToken) // the same answer as a wrong token
		return
	}
	switch r.Method {
	case http.MethodGet:
		out, err := h.Service.Read(r.Context(), id, access)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	case http.MethodPut:
		var body struct {
			platform.ClientMetadata
			ClientID string `json:"client_id"`
		}
		if !decode(w, r, &body) {
			return
		}
		if body.ClientID != "" && body.ClientID != strconv.FormatInt(id, 10) {
			writeError(w, http.StatusBadRequest, "invalid_client_metadata", "client_id in the body is not this registration's (RFC 7592 §2.2)")
			return
		}
		out, err := h.Service.Replace(r.Context(), id, access, body.ClientMetadata)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	case http.MethodDelete:
		if err := h.Service.Delete(r.Context(), id, access); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "use GET, PUT or DELETE")
	}
}

// readMetadata reads a registration's JSON body, answering when it cannot.
func readMetadata(w http.ResponseWriter, r *http.Request) (platform.ClientMetadata, bool) {
	var m platform.ClientMetadata
	return m, decode(w, r, &m)
}

// decode reads the JSON body into v (at most maxBody bytes), answering
// invalid_client_metadata when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "send the client metadata as JSON (Content-Type: application/json)")
		return false
	}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "the client metadata is larger than 64 KB")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "the client metadata is not a JSON object of RFC 7591's fields: "+err.Error())
		return false
	}
	return true
}

// fail answers err: RFC 7591 §3.2.2's errors for bad metadata, 401
// invalid_token for a bad access token.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *platform.Error
	switch {
	case errors.Is(err, platform.ErrRegistrationToken):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", platform.ErrRegistrationToken.Message)
	case errors.As(err, &e) && e.Kind == platform.Invalid && (e.Field == "redirect_uris" || e.Field == "post_logout_redirect_uris"):
		writeError(w, http.StatusBadRequest, "invalid_redirect_uri", e.Field+": "+e.Message)
	case errors.As(err, &e) && e.Kind == platform.Invalid:
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", e.Field+": "+e.Message)
	default:
		h.Log.ErrorContext(r.Context(), "registration failed", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "the registration could not be stored; try again")
	}
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	httpx.WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
}
