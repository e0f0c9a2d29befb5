package platform

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// The sign-in levels (acr values) Latchkey names, lowest first: a
// password; a second factor beside it; a phishing-resistant one (a passkey).
const (
	ACRPassword          = "urn:latchkey:acr:pwd"
	ACRMultiFactor       = "urn:latchkey:acr:mfa"
	ACRPhishingResistant = "urn:latchkey:acr:phr"
)

// ACRValues are the levels, lowest first (acr_values_supported).
var ACRValues = []string{ACRPassword, ACRMultiFactor, ACRPhishingResistant}

// The methods a sign-in used (RFC 8176 amr values).
const (
	AMRPassword = "pwd"
	AMROTP      = "otp" // an authenticator app's code, or a recovery code
	AMRHardware = "hwk" // a passkey
	AMRUser     = "user"
	AMRMulti    = "mfa"
	// AMRFederated: an upstream identity provider vouched for the person
	// (counted as a password is).
	AMRFederated = "fed"
)

// ACROf is the level a sign-in by the methods amr reached ("" for none).
func ACROf(amr []string) string {
	switch {
	case slices.Contains(amr, AMRHardware):
		return ACRPhishingResistant
	case slices.Contains(amr, AMRMulti):
		return ACRMultiFactor
	case slices.Contains(amr, AMRPassword), slices.Contains(amr, AMRFederated):
		return ACRPassword
	}
	return ""
}

// LevelOf orders the acr values: 0 for none or an unknown one.
func LevelOf(acr string) int { return slices.Index(ACRValues, acr) + 1 }

// WithFactor is amr with a second factor's methods added: mfa once two
// kinds of proof are there.
func WithFactor(amr []string, methods ...string) []string {
	out := slices.Clone(amr)
	for _, m := range methods {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if !slices.Contains(out, AMRMulti) && len(out) > 1 {
		out = append(out, AMRMulti)
	}
	return out
}

// Sessions is the one owner of browser sessions: each sign-in recorded
// (device, address, when and how the person proved who they are), found
// again on every page, raised by a second factor, listed on the security
// page, and ended one by one, all others, or all.
type Sessions struct {
	*core
	store storage.Sessions
	// logouts tell apps of the sessions that end.
	logouts *BackChannel
}

// Session is a live session and its user.
type Session struct {
	storage.Session
	User storage.User
}

// ACR is the session's level.
func (s *Session) ACR() string { return ACROf(s.AMR) }

// Authn is what the session proved, for the codes it approves.
func (s *Session) Authn() storage.Authn {
	return storage.Authn{AuthTime: s.AuthTime, AMR: s.AMR, SID: s.SID}
}

// touchEvery is how stale a session's last use may be before a page
// writes a new one: the list shows minutes, not every request.
const touchEvery = time.Minute

// maxDevice bounds the User-Agent kept of a session.
const maxDevice = 200

// Start records a new session of userID, signed in by the methods amr,
// and returns the secret its cookie holds (only its hash is stored).
func (p *Sessions) Start(ctx context.Context, userID int64, amr []string, device, address string) (string, Session, error) {
	secret := rand.Text()
	now := p.now()
	if len(device) > maxDevice {
		device = device[:maxDevice]
		for !utf8.ValidString(device) {
			device = device[:len(device)-1]
		}
	}
	s := storage.Session{Hash: token.HashOf(secret), UserID: userID, SID: rand.Text(), AuthTime: now, AMR: amr,
		Device: strings.ToValidUTF8(device, ""), Address: address, CreatedAt: now, LastSeenAt: now}
	if err := p.store.CreateSession(ctx, &s); err != nil {
		return "", Session{}, err
	}
	return secret, Session{Session: s}, nil
}

// Current returns the live session whose cookie holds secret, with its
// user: ErrSessionEnded when it ended (logout, ended from another device,
// the user disabled) or never was. A use from a new address, or the first
// in a minute, is recorded.
func (p *Sessions) Current(ctx context.Context, userID int64, secret, address string) (Session, error) {
	s, u, err := p.store.SessionUser(ctx, token.HashOf(secret))
	if errors.Is(err, storage.ErrNotFound) {
		return Session{}, ErrSessionEnded
	}
	if err != nil {
		return Session{}, err
	}
	if s.UserID != userID || !s.EndedAt.IsZero() || !u.DisabledAt.IsZero() {
		return Session{}, ErrSessionEnded
	}
	if now := p.now(); now.Sub(s.LastSeenAt) >= touchEvery || s.Address != address {
		if err := p.store.TouchSession(ctx, s.ID, now, address); err != nil {
			p.Log.WarnContext(ctx, "recording a session's use", "err", err)
		}
		s.LastSeenAt, s.Address = now, address
	}
	return Session{Session: s, User: u}, nil
}

// Raise records a second factor proved in the live session s: the methods
// it adds, now as the time of authentication.
func (p *Sessions) Raise(ctx context.Context, s *Session, methods ...string) error {
	amr, now := WithFactor(s.AMR, methods...), p.now()
	if err := p.store.RaiseSession(ctx, s.ID, now, amr); err != nil {
		return orNotFound(err, "the session has ended")
	}
	s.AMR, s.AuthTime = amr, now
	return nil
}

// List is the user's live sessions, the last used first.
func (p *Sessions) List(ctx context.Context, userID int64) ([]storage.Session, error) {
	return p.store.ListSessions(ctx, userID)
}

// ErrNoSuchSession refuses ending a session that is not a live one of the
// person's.
var ErrNoSuchSession = &Error{Kind: NotFound, Message: "there is no such session: it may have ended already"}

// End ends the user's session id.
func (p *Sessions) End(ctx context.Context, actor Actor, userID, id int64) error {
	err := p.logouts.ending(ctx, userID, func(s storage.Session) bool { return s.ID == id },
		func() error { return p.store.EndSession(ctx, userID, id, p.now()) })
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoSuchSession
	}
	if err == nil {
		p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditSessionEnd, Detail: "session " + itoa(id)})
	}
	return err
}

// EndOthers ends every session of the user but keep, and says how many.
func (p *Sessions) EndOthers(ctx context.Context, actor Actor, userID, keep int64) (int, error) {
	var n int
	err := p.logouts.ending(ctx, userID, func(s storage.Session) bool { return s.ID != keep }, func() (err error) {
		n, err = p.store.EndOtherSessions(ctx, userID, keep, p.now())
		return err
	})
	if err == nil && n > 0 {
		p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditSessionEnd, Detail: itoa(int64(n)) + " other sessions"})
	}
	return n, err
}
