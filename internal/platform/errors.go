package platform

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"latchkey/internal/storage"
)

// Kind classifies an Error so that each edge (CLI, HTML, OAuth JSON, API
// envelope) can translate it once.
type Kind int

const (
	Invalid     Kind = iota + 1 // bad input
	NotFound                    // the thing named does not exist
	Conflict                    // it would clash with what exists
	Forbidden                   // the actor may not do this
	Unavailable                 // not now: too busy; the same call may work later
)

// Error is a domain error with a message fit to show to the person or
// program that caused it.
type Error struct {
	Kind    Kind
	Field   string // the input at fault, when there is one
	Message string
	// Err, when set, is a sentinel the caller can match with errors.Is.
	Err error
}

// Unwrap returns the sentinel behind the error, if any.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Kind: NotFound, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of err, or 0 for an internal error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// orNotFound turns storage.ErrNotFound into a NotFound error with msg.
func orNotFound(err error, format string, args ...any) error {
	if errors.Is(err, storage.ErrNotFound) {
		return notFound(format, args...)
	}
	return err
}

// validText reports whether s can be stored as text on every backend:
// valid UTF-8 without NUL (PostgreSQL refuses both).
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
