// Package longpoll is the Bots Long Poll server, GET /longpoll/{group_id}
// (vk-wire.md §7): the URL groups.getLongPollServer names. A poll answers
// at once when events are there, or waits (up to 90 s) until one is
// published, costing no CPU and no storage reads while it waits.
package longpoll

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"latchkey/internal/httpx"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// Bots is what the server asks of the platform (platform.Bots).
type Bots interface {
	KeyValid(communityID int64, key string) bool
	Poll(ctx context.Context, communityID int64, key string, ts int64, wait time.Duration) ([]platform.Update, int64, error)
}

// Handler serves /longpoll/{group_id}.
type Handler struct {
	Bots Bots
	Log  *slog.Logger
}

// defaultWait is the wait of a poll that names none, as VK's.
const defaultWait = 25 * time.Second

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("group_id"), 10, 64)
	q := r.URL.Query()
	switch {
	case err != nil || id <= 0:
		write(w, http.StatusNotFound, map[string]any{"failed": 2, "error": "no such long poll server"})
		return
	case q.Get("act") != "a_check":
		write(w, http.StatusBadRequest, map[string]any{"failed": 2, "error": "act must be a_check"})
		return
	case !h.Bots.KeyValid(id, q.Get("key")):
		write(w, http.StatusOK, map[string]any{"failed": 2}) // expired or wrong: ask for a new key
		return
	}
	ts, err := strconv.ParseInt(q.Get("ts"), 10, 64)
	if err != nil {
		ts = 0 // answered failed 1 with the current ts
	}
	wait := defaultWait
	if s := q.Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			write(w, http.StatusBadRequest, map[string]any{"failed": 2, "error": "wait must be seconds, 0 to 90"})
			return
		}
		wait = min(time.Duration(n)*time.Second, platform.MaxLongPollWait)
	}
	// The server's write timeout is shorter than the longest wait.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 15*time.Second))
	updates, next, err := h.Bots.Poll(r.Context(), id, q.Get("key"), ts, wait)
	switch {
	case errors.Is(err, platform.ErrPollTS):
		write(w, http.StatusOK, map[string]any{"failed": 1, "ts": strconv.FormatInt(next, 10)})
	case errors.Is(err, platform.ErrPollLost):
		write(w, http.StatusOK, map[string]any{"failed": 3})
	case errors.Is(err, platform.ErrPollBusy):
		w.Header().Set("Retry-After", "5")
		write(w, http.StatusServiceUnavailable, map[string]any{"failed": 2, "error": "this server holds as many waiting polls as it may: try again in a few seconds"})
	case err != nil && httpx.ClientGone(r, err):
		w.WriteHeader(httpx.StatusClientClosed)
	case errors.Is(err, storage.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		write(w, http.StatusServiceUnavailable, map[string]any{"failed": 2, "error": "storage cannot be reached right now"})
	case err != nil:
		h.Log.ErrorContext(r.Context(), "longpoll: poll failed", "group_id", id, "request_id", httpx.RequestID(w), "err", err)
		write(w, http.StatusInternalServerError, map[string]any{"failed": 2, "error": "internal error"})
	default:
		write(w, http.StatusOK, map[string]any{"ts": strconv.FormatInt(next, 10), "updates": updates})
	}
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	httpx.WriteJSON(w, status, v)
}
