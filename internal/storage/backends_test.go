package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A backend is opened by the name it registered; an unknown name says
// which are known; a name registered twice is a programming error.
func TestBackendsByName(t *testing.T) {
	opened := errors.New("opened")
	var got Target
	Register("test-backend", func(_ context.Context, t Target) (Storage, error) { got = t; return nil, opened })
	if _, err := Open(context.Background(), Target{Backend: "test-backend", Path: "/x.db"}); !errors.Is(err, opened) || got.Path != "/x.db" {
		t.Fatalf("Open of a registered backend: %v, target %+v", err, got)
	}
	if _, err := Open(context.Background(), Target{Backend: "nosuch"}); err == nil || !strings.Contains(err.Error(), `no backend "nosuch"`) || !strings.Contains(err.Error(), "test-backend") {
		t.Fatalf("Open of an unknown backend: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second Register of a name did not panic")
		}
	}()
	Register("test-backend", nil)
}
