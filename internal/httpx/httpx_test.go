package httpx

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A request the client aborted fails with its context's error: that is
// logged as a client abort (499) at INFO, not as a server error at ERROR.
func TestClientAbortIsNotAServerError(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := Observe(log, NewMetrics(prometheus.NewRegistry()), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the storage call fails with context.Canceled
		if ClientGone(r, r.Context().Err()) {
			w.WriteHeader(http.StatusInternalServerError) // what a careless handler would answer
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/apps", nil))
	line := logs.String()
	if !strings.Contains(line, "status=499") || !strings.Contains(line, "level=INFO") || strings.Contains(line, "level=ERROR") {
		t.Fatalf("access log: %s", line)
	}

	logs.Reset()
	h = Observe(log, NewMetrics(prometheus.NewRegistry()), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/apps", nil))
	if line := logs.String(); !strings.Contains(line, "status=500") || !strings.Contains(line, "level=ERROR") {
		t.Fatalf("a real failure: %s", line)
	}
}

func TestClientGone(t *testing.T) {
	live := httptest.NewRequest("GET", "/", nil)
	if ClientGone(live, context.Canceled) {
		t.Fatal("a live request's failure blamed on its client")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	if !ClientGone(gone, context.Canceled) || ClientGone(gone, http.ErrServerClosed) {
		t.Fatal("ClientGone misjudged")
	}
}
