package api

import "fmt"

// Error is an API error: the VK envelope's error_code and error_msg
// (vk-wire.md §4). Handlers return it; the dispatcher writes it.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Msg) }

// The errors of vk-wire.md §4, with VK's exact messages.
var (
	ErrUnknownMethod  = &Error{3, "Unknown method passed."}
	ErrNoToken        = &Error{5, "User authorization failed: no access_token passed."}
	ErrInvalidToken   = &Error{5, "User authorization failed: invalid access_token (4)."}
	ErrExpiredToken   = &Error{5, "User authorization failed: access_token has expired."}
	ErrUserRevoked    = &Error{5, "User authorization failed: user revoke access for this token."}
	ErrTooMany        = &Error{6, "Too many requests per second."}
	ErrInternal       = &Error{10, "Internal server error: try again later."}
	ErrNoVersion      = &Error{8, "Invalid request: v (version) is required."}
	ErrAccessDenied   = &Error{15, "Access denied: no access to call this method."}
	ErrGroupAuth      = &Error{27, "Group authorization failed: method is unavailable with group auth."}
	ErrServiceAuth    = &Error{28, "Application authorization failed: method is unavailable with service token."}
	ErrInvalidUserID  = &Error{113, "Invalid user id."}
	ErrInvalidGroupID = &Error{100, "One of the parameters specified was missing or invalid: group_ids is missing or invalid"}
)

// ErrParam is error 100 for the named parameter.
func ErrParam(name string) *Error {
	return &Error{100, "One of the parameters specified was missing or invalid: " + name + " is missing or invalid"}
}
