package platform

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"image/png"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Factors is the one owner of second factors: enrolling and removing an
// authenticator app (RFC 6238) and passkeys (WebAuthn, passkeys.go),
// checking a code or a recovery code, counting wrong ones, and whether a
// person must have a second factor.
type Factors struct {
	*core
	store    storage.Factors
	users    storage.Users
	attempts storage.Cluster
	// proofs record each passkey challenge answered.
	proofs interface {
		UseProof(ctx context.Context, hash token.Hash, expires time.Time) error
	}
	// RequireMFA: everyone must sign in with a second factor
	// (--require-mfa).
	RequireMFA bool
	// Issuer names the server in authenticator apps.
	Issuer string
	passkeys
}

// The authenticator apps' parameters (RFC 6238's defaults, which every app
// reads): SHA-1, 6 digits, 30 s steps; a code of the step before or after
// is accepted too, for clocks a little off.
var totpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

const (
	// wrongCodesPerUser wrong codes per window are allowed a person;
	// beyond them, every code is refused until the window ends.
	wrongCodesPerUser = 5
	wrongCodesWindow  = 15 * time.Minute
	// enrolmentTTL is how long an authenticator app's enrolment form is
	// good for.
	enrolmentTTL = 15 * time.Minute
	// RecoveryCodes are made at a time.
	RecoveryCodes = 10
	// maxCode bounds the otp field: nothing longer is looked at.
	maxCode = 64
)

// FactorStatus is what a person has enrolled.
type FactorStatus struct {
	Passkeys []storage.Factor
	// App is the authenticator app, nil for none.
	App          *storage.Factor
	RecoveryLeft int
}

// Any reports whether there is a second factor to ask for.
func (s FactorStatus) Any() bool { return s.App != nil || len(s.Passkeys) > 0 }

// Status lists the person's factors.
func (p *Factors) Status(ctx context.Context, userID int64) (FactorStatus, error) {
	fs, err := p.store.ListFactors(ctx, userID)
	if err != nil {
		return FactorStatus{}, err
	}
	var st FactorStatus
	for i := range fs {
		switch fs[i].Kind {
		case storage.FactorTOTP:
			st.App = &fs[i]
		case storage.FactorPasskey:
			st.Passkeys = append(st.Passkeys, fs[i])
		}
	}
	if st.Any() {
		st.RecoveryLeft, err = p.store.RecoveryCodesLeft(ctx, userID)
	}
	return st, err
}

// Required reports whether u must sign in with a second factor.
func (p *Factors) Required(u storage.User) bool { return p.RequireMFA || u.RequireMFA }

// Enrolment is an authenticator app being added: the secret, the QR code
// that carries it (a PNG), and the form's sealed state, which Confirm
// takes back with a code.
type Enrolment struct {
	Secret string
	URL    string
	QR     []byte
	State  string
}

// BeginApp starts adding an authenticator app for u. Nothing is stored
// until a code confirms it.
func (p *Factors) BeginApp(u storage.User) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: p.Issuer, AccountName: u.Login, Period: totpOpts.Period,
		Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
	if err != nil {
		return Enrolment{}, err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return Enrolment{}, err
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return Enrolment{}, err
	}
	state := itoa(u.ID) + "|" + strconv.FormatInt(p.now().Unix(), 10) + "|" + key.Secret()
	return Enrolment{Secret: key.Secret(), URL: key.URL(), QR: qr.Bytes(),
		State: base64.RawURLEncoding.EncodeToString(p.Keys.Seal([]byte(state)))}, nil
}

// EnrolmentSecret reads the secret back from an enrolment's state (to show
// the form again after a wrong code).
func (p *Factors) EnrolmentSecret(userID int64, state string) (string, error) {
	secret, _, err := p.openEnrolment(userID, state)
	return secret, err
}

// ErrEnrolmentExpired refuses an enrolment form that is not this person's
// or too old.
var ErrEnrolmentExpired = &Error{Kind: Invalid, Message: "the form has expired: start adding the authenticator app again"}

func (p *Factors) openEnrolment(userID int64, state string) (string, time.Time, error) {
	if len(state) > 512 {
		return "", time.Time{}, ErrEnrolmentExpired
	}
	sealed, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil {
		return "", time.Time{}, ErrEnrolmentExpired
	}
	plain, err := p.Keys.Open(sealed)
	if err != nil {
		return "", time.Time{}, ErrEnrolmentExpired
	}
	parts := strings.SplitN(string(plain), "|", 3)
	if len(parts) != 3 || parts[0] != itoa(userID) {
		return "", time.Time{}, ErrEnrolmentExpired
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	began := time.Unix(sec, 0)
	if err != nil || p.now().Sub(began) > enrolmentTTL {
		return "", time.Time{}, ErrEnrolmentExpired
	}
	return parts[2], began, nil
}

// ErrWrongCode refuses a code or recovery code that is not right now, or
// was used before.
var ErrWrongCode = &Error{Kind: Invalid, Message: "the code is wrong or was used already"}

// ErrTooManyCodes refuses every code while too many wrong ones were tried.
var ErrTooManyCodes = &Error{Kind: Unavailable, Message: "too many wrong codes: try again in 15 minutes"}

// ErrHaveApp refuses a second authenticator app.
var ErrHaveApp = &Error{Kind: Conflict, Message: "an authenticator app is set up already: remove it first"}

// ConfirmApp adds the authenticator app of the enrolment state when code
// is its code now; the code is then spent. Wrong codes count as at sign-in.
// Made with recovery codes when the person had none: they are returned,
// shown once.
func (p *Factors) ConfirmApp(ctx context.Context, actor Actor, u storage.User, state, name, code string) ([]string, error) {
	secret, _, err := p.openEnrolment(u.ID, state)
	if err != nil {
		return nil, err
	}
	if err := p.take(ctx, u.ID); err != nil {
		return nil, err
	}
	step, ok := matchTOTP(secret, code, p.now())
	if !ok {
		return nil, ErrWrongCode
	}
	p.forgive(ctx, u.ID)
	name = factorName(name, "Authenticator app")
	f := storage.Factor{UserID: u.ID, Kind: storage.FactorTOTP, Name: name, CredentialID: []byte("totp:" + itoa(u.ID)),
		Data: p.Keys.Seal([]byte(secret)), Step: step, CreatedAt: p.now()}
	if err := p.store.AddFactor(ctx, &f); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, ErrHaveApp
		}
		return nil, err
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditFactorAdd, Detail: "authenticator app " + itoa(f.ID) + " of user " + itoa(u.ID)})
	return p.firstRecoveryCodes(ctx, actor, u.ID)
}

// firstRecoveryCodes makes recovery codes for a person who just enrolled
// a first factor and has none left.
func (p *Factors) firstRecoveryCodes(ctx context.Context, actor Actor, userID int64) ([]string, error) {
	n, err := p.store.RecoveryCodesLeft(ctx, userID)
	if err != nil || n > 0 {
		return nil, err
	}
	return p.NewRecoveryCodes(ctx, actor, userID)
}

// matchTOTP finds the time step around now whose code is code.
func matchTOTP(secret, code string, now time.Time) (int64, bool) {
	if len(code) != int(totpOpts.Digits) {
		return 0, false
	}
	step := now.Unix() / int64(totpOpts.Period)
	for _, s := range []int64{step, step - 1, step + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*int64(totpOpts.Period), 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// take counts a code attempt of the person before it is checked: at most
// wrongCodesPerUser in a window, on every node together.
func (p *Factors) take(ctx context.Context, userID int64) error {
	now := p.now()
	ok, _, err := p.attempts.TakeAttempt(ctx, codesKey(userID), wrongCodesPerUser, now.Add(-wrongCodesWindow), now)
	if err != nil {
		return err
	}
	if !ok {
		return ErrTooManyCodes
	}
	return nil
}

// forgive forgets the person's wrong codes after a right one.
func (p *Factors) forgive(ctx context.Context, userID int64) {
	if err := p.attempts.ResetAttempts(ctx, codesKey(userID)); err != nil {
		p.Log.WarnContext(ctx, "forgetting wrong codes", "err", err)
	}
}

func codesKey(userID int64) token.Hash { return token.HashOf("second factor codes\x00" + itoa(userID)) }

// CheckCode checks the otp field of the second-factor step: a code of the
// person's authenticator app, accepted once, or one of their recovery
// codes, spent. It returns the methods proved (amr).
func (p *Factors) CheckCode(ctx context.Context, actor Actor, userID int64, code string) ([]string, error) {
	code = strings.TrimSpace(code)
	if code == "" || len(code) > maxCode || !utf8.ValidString(code) {
		return nil, ErrWrongCode
	}
	if err := p.take(ctx, userID); err != nil {
		return nil, err
	}
	if isDigits(code) {
		if err := p.checkApp(ctx, userID, code); err != nil {
			return nil, err
		}
		p.forgive(ctx, userID)
		p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditFactorUse, Detail: "authenticator app of user " + itoa(userID)})
		return []string{AMROTP}, nil
	}
	ok, err := p.store.UseRecoveryCode(ctx, userID, recoveryHash(userID, code), p.now())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrWrongCode
	}
	p.forgive(ctx, userID)
	left, _ := p.store.RecoveryCodesLeft(ctx, userID)
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditRecoveryCodeUse, Detail: "user " + itoa(userID) + ": " + itoa(int64(left)) + " left"})
	return []string{AMROTP}, nil
}

func (p *Factors) checkApp(ctx context.Context, userID int64, code string) error {
	fs, err := p.store.ListFactors(ctx, userID)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if f.Kind != storage.FactorTOTP {
			continue
		}
		secret, err := p.Keys.Open(f.Data)
		if err != nil {
			return err
		}
		step, ok := matchTOTP(string(secret), code, p.now())
		if !ok {
			return ErrWrongCode
		}
		// Spent in the statement that checks it was not: once, on
		// every node.
		if ok, err = p.store.UseFactor(ctx, f.ID, step, nil, p.now()); err != nil {
			return err
		}
		if !ok {
			return ErrWrongCode
		}
		return nil
	}
	return ErrWrongCode
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// recoveryHash is what is stored of a recovery code: its hash, with the
// person's id, ignoring case, spaces and dashes.
func recoveryHash(userID int64, code string) token.Hash {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(code))
	return token.HashOf("recovery code\x00" + itoa(userID) + "\x00" + norm)
}

// NewRecoveryCodes replaces the person's recovery codes with new ones and
// returns them: shown once, stored hashed.
func (p *Factors) NewRecoveryCodes(ctx context.Context, actor Actor, userID int64) ([]string, error) {
	codes := make([]string, RecoveryCodes)
	hashes := make([]token.Hash, RecoveryCodes)
	for i := range codes {
		r := strings.ToLower(rand.Text()[:10]) // 50 bits
		codes[i] = r[:5] + "-" + r[5:]
		hashes[i] = recoveryHash(userID, codes[i])
	}
	if err := p.store.SetRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditRecoveryCodes, Detail: "user " + itoa(userID)})
	return codes, nil
}

// ErrNoSuchFactor refuses removing a factor that is not the person's.
var ErrNoSuchFactor = &Error{Kind: NotFound, Message: "there is no such sign-in method"}

// Remove removes the person's factor id. With the last one go the
// recovery codes.
func (p *Factors) Remove(ctx context.Context, actor Actor, userID, id int64) error {
	f, err := p.store.RemoveFactor(ctx, userID, id)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoSuchFactor
	}
	if err != nil {
		return err
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditFactorRemove, Detail: string(f.Kind) + " " + itoa(f.ID) + " of user " + itoa(userID)})
	if rest, err := p.store.ListFactors(ctx, userID); err == nil && len(rest) == 0 {
		err = p.store.SetRecoveryCodes(ctx, userID, nil)
		if err != nil {
			return err
		}
	}
	return nil
}

// Reset removes every factor and recovery code of a person: an operator's
// answer to a lost authenticator.
func (p *Factors) Reset(ctx context.Context, actor Actor, userID int64) ([]storage.Factor, error) {
	if _, err := p.users.GetUser(ctx, userID); err != nil {
		return nil, orNotFound(err, "no user with id %d", userID)
	}
	removed, err := p.store.ResetFactors(ctx, userID)
	if err == nil {
		p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditFactorsReset, Detail: "user " + itoa(userID) + ": " + itoa(int64(len(removed))) + " removed"})
	}
	return removed, err
}

// SetRequired sets whether the person must sign in with a second factor.
func (p *Factors) SetRequired(ctx context.Context, actor Actor, userID int64, on bool) error {
	if err := p.users.SetRequireMFA(ctx, userID, on); err != nil {
		return orNotFound(err, "no user with id %d", userID)
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditRequireMFA, Detail: "user " + itoa(userID) + ": " + strconv.FormatBool(on)})
	return nil
}

// factorName is a factor's name as typed, or def.
func factorName(name, def string) string {
	name = strings.TrimSpace(name)
	if name == "" || !validText(name) || strings.ContainsAny(name, "\r\n") {
		return def
	}
	if utf8.RuneCountInString(name) > 60 {
		name = string([]rune(name)[:60])
	}
	return name
}
