package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// downUsers is storage that is down; its throttle counts are never
// reached in these tests.
type downUsers struct{ Counter }

func (downUsers) Current(context.Context, int64, string, string) (platform.Session, error) {
	return platform.Session{}, fmt.Errorf("%w: connection refused", storage.ErrUnavailable)
}
func (downUsers) User(context.Context, int64) (storage.User, error) {
	return storage.User{}, storage.ErrUnavailable
}

// A signed-in person whose session cannot be checked because storage is
// down is told the service is unavailable (503), not sent to log in as if
// logged out.
func TestStorageDownIsNotALogout(t *testing.T) {
	keys, err := token.NewKeyring("web-test-secret-0123456789abcdefghijklmn")
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKit(keys, time.Now, slog.New(slog.DiscardHandler), false, downUsers{})
	if err != nil {
		t.Fatal(err)
	}
	login := httptest.NewRecorder()
	k.Sessions.Set(login, httptest.NewRequest("POST", "/login", nil), 7, "secret")
	r := httptest.NewRequest("GET", "/apps", nil)
	for _, c := range login.Result().Cookies() {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	if u := k.RequireUser(w, r); u != nil {
		t.Fatal("a user while storage is down")
	}
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "temporarily") && !strings.Contains(w.Body.String(), "Temporarily") {
		t.Fatalf("storage down: %d %q, want 503 saying so", w.Code, w.Header().Get("Location"))
	}
	// Without a session it is still the login page.
	w = httptest.NewRecorder()
	k.RequireUser(w, httptest.NewRequest("GET", "/apps", nil))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?") {
		t.Fatalf("no session: %d %q", w.Code, w.Header().Get("Location"))
	}
}
