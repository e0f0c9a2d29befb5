package platform

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"latchkey/internal/password"
	"latchkey/internal/storage"
)

// NewUser is what sign-up and `user create` ask for.
type NewUser struct {
	Login     string
	Password  string
	FirstName string
	LastName  string
	Email     string
}

const (
	minPassword = 8
	maxPassword = 256
	maxName     = 100
)

func validPassword(pass string) error {
	if n := utf8.RuneCountInString(pass); n < minPassword || n > maxPassword {
		return invalid("password", "must be %d to %d characters", minPassword, maxPassword)
	}
	return nil
}

// Validate reports the first problem with u.
func (u *NewUser) Validate() error {
	if n := len(u.Login); n < 3 || n > 32 {
		return invalid("login", "must be 3 to 32 characters")
	}
	for _, c := range u.Login {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid("login", "may hold only Latin letters, digits, '.', '_' and '-'")
		}
	}
	if err := validPassword(u.Password); err != nil {
		return err
	}
	if err := validNames(u.FirstName, u.LastName); err != nil {
		return err
	}
	if u.Email != "" {
		a, err := mail.ParseAddress(u.Email)
		if err != nil || a.Address != u.Email || a.Name != "" {
			return invalid("email", "%q is not an email address", u.Email)
		}
	}
	return nil
}

// Users is the one owner of people's accounts: sign-up, login, sessions,
// names, and what an operator does to an account (list, disable, set a
// password), with the throttles the pages count attempts in.
type Users struct {
	*core
	store    storage.Users
	attempts storage.Cluster
	// logouts tell apps of the sessions that end.
	logouts *BackChannel
}

// CreateUser validates u, hashes the password and stores the user.
func (p *Users) CreateUser(ctx context.Context, u NewUser) (storage.User, error) {
	u.Login = strings.TrimSpace(u.Login)
	u.FirstName, u.LastName, u.Email = strings.TrimSpace(u.FirstName), strings.TrimSpace(u.LastName), strings.TrimSpace(u.Email)
	if err := u.Validate(); err != nil {
		return storage.User{}, err
	}
	hash, err := password.Hash(ctx, u.Password)
	if err != nil {
		return storage.User{}, busy(err)
	}
	rec := storage.User{Login: u.Login, PasswordHash: hash, FirstName: u.FirstName,
		LastName: u.LastName, Email: u.Email, CreatedAt: p.now()}
	if err := p.store.CreateUser(ctx, &rec); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return rec, &Error{Kind: Conflict, Field: "login", Message: "is taken"}
		}
		return rec, err
	}
	return rec, nil
}

// Authenticate returns the user whose login and password these are. Wrong
// login and wrong password are the same error, and take the same time.
// When too many checks run at once it fails with ErrBusy at once or after
// a short wait, before any memory is spent on it.
func (p *Users) Authenticate(ctx context.Context, login, pass string) (storage.User, error) {
	var u storage.User
	err := storage.ErrNotFound
	if validText(login) {
		u, err = p.store.GetUserByLogin(ctx, login)
	}
	hash := u.PasswordHash
	switch {
	case errors.Is(err, storage.ErrNotFound):
		hash = dummyHash() // the same cost as a real check
	case err != nil:
		return u, err
	}
	switch err := password.Verify(ctx, hash, pass); {
	case errors.Is(err, password.ErrBusy):
		return u, ErrBusy
	case err != nil || hash != u.PasswordHash:
		return u, ErrWrongCredentials
	case !u.DisabledAt.IsZero():
		return u, ErrDisabled
	}
	return u, nil
}

// ErrDisabled refuses a login to an account an operator disabled (said
// only to whoever knows its password).
var ErrDisabled = &Error{Kind: Forbidden, Message: "this account is disabled"}

// ErrBusy answers a login or sign-up while too many password checks run
// at once: try again in a moment.
var ErrBusy = &Error{Kind: Unavailable, Message: "too many logins at once: try again in a moment", Err: password.ErrBusy}

func busy(err error) error {
	if errors.Is(err, password.ErrBusy) {
		return ErrBusy
	}
	return err
}

// User returns the user with that id.
func (p *Users) User(ctx context.Context, id int64) (storage.User, error) {
	u, err := p.store.GetUser(ctx, id)
	return u, orNotFound(err, "no user with id %d", id)
}

// UserByLogin returns the user with that login.
func (p *Users) UserByLogin(ctx context.Context, login string) (storage.User, error) {
	var u storage.User
	err := storage.ErrNotFound // no login is anything but text
	if validText(login) {
		u, err = p.store.GetUserByLogin(ctx, login)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return u, &Error{Kind: NotFound, Message: fmt.Sprintf("there is no user with login %q", login), Err: ErrNoSuchLogin}
	}
	return u, err
}

// ErrNoSuchLogin is behind the error for a login no user has.
var ErrNoSuchLogin = errors.New("no such login")

// UsersByID returns the users that exist among ids, in the order of ids.
func (p *Users) UsersByID(ctx context.Context, ids []int64) ([]storage.User, error) {
	return p.store.GetUsers(ctx, ids)
}

// ErrSessionEnded refuses a browser session that ended (logout, ended from
// another device, the user disabled) or never was.
var ErrSessionEnded = &Error{Kind: NotFound, Message: "the session has ended: log in again"}

// Logout ends every browser session of the user: the cookies issued until
// now and the recorded sessions.
func (p *Users) Logout(ctx context.Context, userID int64) error {
	return p.logouts.ending(ctx, userID, all, func() error { return p.store.EndSessions(ctx, userID, p.Now()) })
}

// all is every session.
func all(storage.Session) bool { return true }

// ErrWrongCredentials is the one answer to a failed login.
var ErrWrongCredentials = &Error{Kind: Invalid, Message: "wrong login or password"}

// dummyHash is checked when there is no such login, so that a wrong login
// costs what a wrong password does. It is a constant: no hashing at start,
// and no turn to wait for.
const dummyHashValue = "$argon2id$v=19$m=19456,t=2,p=1$hOTpSzP6G8kWaJQaU32m0A$2sG+9cjvhXFRe92t0tcblC3IQ+ZKeMXzBE4puuGUP88"

func dummyHash() string { return dummyHashValue }

// Rename changes the user's first and last name, with the rules of sign-up.
func (p *Users) Rename(ctx context.Context, userID int64, first, last string) error {
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if err := validNames(first, last); err != nil {
		return err
	}
	return orNotFound(p.store.UpdateUserName(ctx, userID, first, last), "no user with id %d", userID)
}

func validNames(first, last string) error {
	for _, f := range []struct{ field, v string }{{"first name", first}, {"last name", last}} {
		if utf8.RuneCountInString(f.v) > maxName || !validText(f.v) || strings.ContainsAny(f.v, "\r\n") {
			return invalid(f.field, "must be at most %d characters on one line", maxName)
		}
	}
	return nil
}

// AvatarURL is the generated picture of a user, the "photo" of the API and
// the widget.
func AvatarURL(base *url.URL, userID int64, size int) string {
	u := base.JoinPath("/avatar", strconv.FormatInt(userID, 10)+".svg")
	u.RawQuery = "size=" + strconv.Itoa(size)
	return u.String()
}
