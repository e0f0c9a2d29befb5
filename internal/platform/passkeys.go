package platform

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// passkeys are WebAuthn's relying party: its id is the public URL's host,
// so passkeys need a public URL with a host name (localhost serves for
// development); with an IP address they are off, and off says why.
type passkeys struct {
	wa  *webauthn.WebAuthn
	off string
}

// ceremonyTTL is how long a passkey prompt may take.
const ceremonyTTL = 5 * time.Minute

func newPasskeys(public *url.URL) passkeys {
	if public == nil {
		return passkeys{off: "the server has no public URL"}
	}
	host := public.Hostname()
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return passkeys{off: "passkeys need the server's public URL to have a host name, not an IP address"}
	}
	timeout := webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL}
	wa, err := webauthn.New(&webauthn.Config{RPID: host, RPDisplayName: host, RPOrigins: []string{public.Scheme + "://" + public.Host},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout}})
	if err != nil {
		return passkeys{off: "passkeys cannot be used: " + err.Error()}
	}
	return passkeys{wa: wa}
}

// PasskeysOff says why passkeys cannot be used here, "" when they can.
func (p *Factors) PasskeysOff() string { return p.off }

// ErrPasskeysOff refuses passkeys on a server that cannot have them.
var ErrPasskeysOff = &Error{Kind: Forbidden, Message: "passkeys are not available on this server"}

// ErrPasskeyRefused is the one answer to a passkey that does not sign in
// or cannot be added: forged, replayed, another person's, answered to
// another browser's challenge, or too late.
var ErrPasskeyRefused = &Error{Kind: Invalid, Message: "the passkey was not accepted: try again"}

// Ceremony is a passkey prompt: the options for the browser's
// navigator.credentials (JSON), and its state, sealed, which the answer
// brings back.
type Ceremony struct {
	Options json.RawMessage
	State   string
}

// ceremonyState is what a ceremony's sealed state holds: WebAuthn's
// session (the challenge), what the ceremony is for, for whom, and the
// browser it was begun in.
type ceremonyState struct {
	Purpose string               `json:"p"`
	UserID  int64                `json:"u,omitempty"`
	Browser string               `json:"b"`
	Session webauthn.SessionData `json:"s"`
}

func (p *Factors) seal(c ceremonyState) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(p.Keys.Seal(b)), nil
}

// open reads a ceremony's state back: the same purpose, person and browser.
func (p *Factors) open(state, purpose string, userID int64, browser string) (ceremonyState, error) {
	var c ceremonyState
	if len(state) > 4096 {
		return c, ErrPasskeyRefused
	}
	sealed, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil {
		return c, ErrPasskeyRefused
	}
	plain, err := p.Keys.Open(sealed)
	if err != nil || json.Unmarshal(plain, &c) != nil || c.Purpose != purpose || c.UserID != userID || c.Browser != browser || browser == "" {
		return c, ErrPasskeyRefused
	}
	return c, nil
}

// spend records the ceremony's challenge as answered, once on every node:
// an answer replayed, even by an authenticator that keeps no sign counter,
// is refused.
func (p *Factors) spend(ctx context.Context, c ceremonyState) error {
	err := p.proofs.UseProof(ctx, token.HashOf("passkey challenge\x00"+c.Session.Challenge), c.Session.Expires.Add(time.Minute))
	if errors.Is(err, storage.ErrConflict) {
		return errors.New("the challenge was answered before")
	}
	return err
}

// waUser is a person as WebAuthn sees them: the user handle is their id.
type waUser struct {
	u     storage.User
	creds []webauthn.Credential
	ids   []int64 // the factor of each credential
}

func (w *waUser) WebAuthnID() []byte                         { return []byte(strconv.FormatInt(w.u.ID, 10)) }
func (w *waUser) WebAuthnName() string                       { return w.u.Login }
func (w *waUser) WebAuthnDisplayName() string                { return w.u.Login }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// loadUser is u with their passkeys.
func (p *Factors) loadUser(ctx context.Context, u storage.User) (*waUser, error) {
	fs, err := p.store.ListFactors(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	w := &waUser{u: u}
	for _, f := range fs {
		if f.Kind != storage.FactorPasskey {
			continue
		}
		var c webauthn.Credential
		if err := json.Unmarshal(f.Data, &c); err != nil {
			return nil, err
		}
		w.creds, w.ids = append(w.creds, c), append(w.ids, f.ID)
	}
	return w, nil
}

// BeginPasskey starts adding a passkey for u in browser: a discoverable
// credential that verifies its user, none of theirs registered twice.
func (p *Factors) BeginPasskey(ctx context.Context, u storage.User, browser string) (Ceremony, error) {
	if p.wa == nil {
		return Ceremony{}, ErrPasskeysOff
	}
	w, err := p.loadUser(ctx, u)
	if err != nil {
		return Ceremony{}, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(w.creds))
	for i, c := range w.creds {
		exclude[i] = c.Descriptor()
	}
	opts, session, err := p.wa.BeginRegistration(w,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationRequired}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return Ceremony{}, err
	}
	return p.ceremony(opts.Response, ceremonyState{Purpose: "register", UserID: u.ID, Browser: browser, Session: *session})
}

func (p *Factors) ceremony(options any, c ceremonyState) (Ceremony, error) {
	b, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, err
	}
	state, err := p.seal(c)
	return Ceremony{Options: b, State: state}, err
}

// AddPasskey adds the passkey the browser answered BeginPasskey's
// ceremony with, named name. Made with recovery codes when the person had
// none: they are returned, shown once.
func (p *Factors) AddPasskey(ctx context.Context, actor Actor, u storage.User, state, browser string, answer []byte, name string) ([]string, error) {
	if p.wa == nil {
		return nil, ErrPasskeysOff
	}
	c, err := p.open(state, "register", u.ID, browser)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return nil, ErrPasskeyRefused
	}
	w, err := p.loadUser(ctx, u)
	if err != nil {
		return nil, err
	}
	cred, err := p.wa.CreateCredential(w, c.Session, parsed)
	if err == nil {
		err = p.spend(ctx, c)
	}
	if err != nil {
		p.Log.InfoContext(ctx, "a passkey was refused", "err", err)
		return nil, ErrPasskeyRefused
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	f := storage.Factor{UserID: u.ID, Kind: storage.FactorPasskey, Name: factorName(name, "Passkey"), CredentialID: cred.ID, Data: data, CreatedAt: p.now()}
	if err := p.store.AddFactor(ctx, &f); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, ErrPasskeyRefused
		}
		return nil, err
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditFactorAdd, Detail: "passkey " + itoa(f.ID) + " of user " + itoa(u.ID)})
	return p.firstRecoveryCodes(ctx, actor, u.ID)
}

// BeginPasskeyLogin starts a sign-in with a passkey in browser: of u, as a
// second factor, or, u nil, of whoever the passkey names (no login name).
func (p *Factors) BeginPasskeyLogin(ctx context.Context, u *storage.User, browser string) (Ceremony, error) {
	if p.wa == nil {
		return Ceremony{}, ErrPasskeysOff
	}
	verify := webauthn.WithUserVerification(protocol.VerificationRequired)
	if u == nil {
		opts, session, err := p.wa.BeginDiscoverableLogin(verify)
		if err != nil {
			return Ceremony{}, err
		}
		return p.ceremony(opts.Response, ceremonyState{Purpose: "login", Browser: browser, Session: *session})
	}
	w, err := p.loadUser(ctx, *u)
	if err != nil {
		return Ceremony{}, err
	}
	if len(w.creds) == 0 {
		return Ceremony{}, ErrPasskeyRefused
	}
	opts, session, err := p.wa.BeginLogin(w, verify)
	if err != nil {
		return Ceremony{}, err
	}
	return p.ceremony(opts.Response, ceremonyState{Purpose: "factor", UserID: u.ID, Browser: browser, Session: *session})
}

// PasskeyLogin checks the browser's answer to BeginPasskeyLogin's
// ceremony (with the same u) and returns the person it signs in and the
// methods proved. The credential's sign counter and backup flags are kept;
// a counter that went back (a cloned authenticator) is refused.
func (p *Factors) PasskeyLogin(ctx context.Context, actor Actor, u *storage.User, state, browser string, answer []byte) (storage.User, []string, error) {
	if p.wa == nil {
		return storage.User{}, nil, ErrPasskeysOff
	}
	var userID int64
	purpose := "login"
	if u != nil {
		userID, purpose = u.ID, "factor"
	}
	c, err := p.open(state, purpose, userID, browser)
	if err != nil {
		return storage.User{}, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return storage.User{}, nil, ErrPasskeyRefused
	}
	// The person is the one whose passkey this is, found by its id; the
	// user handle the authenticator returns must name them too.
	f, err := p.store.FactorByCredential(ctx, parsed.RawID)
	if errors.Is(err, storage.ErrNotFound) || err == nil && (f.Kind != storage.FactorPasskey || u != nil && f.UserID != u.ID) {
		return storage.User{}, nil, ErrPasskeyRefused
	}
	if err != nil {
		return storage.User{}, nil, err
	}
	owner, err := p.users.GetUser(ctx, f.UserID)
	if err != nil {
		return storage.User{}, nil, orNotFound(err, "no user with id %d", f.UserID)
	}
	w, err := p.loadUser(ctx, owner)
	if err != nil {
		return storage.User{}, nil, err
	}
	var cred *webauthn.Credential
	if u == nil {
		cred, err = p.wa.ValidateDiscoverableLogin(func(rawID, handle []byte) (webauthn.User, error) {
			if !bytes.Equal(handle, w.WebAuthnID()) {
				return nil, errors.New("the user handle names another person")
			}
			return w, nil
		}, c.Session, parsed)
	} else {
		cred, err = p.wa.ValidateLogin(w, c.Session, parsed)
	}
	if err == nil && cred.Authenticator.CloneWarning {
		err = errors.New("the sign counter went back: a cloned authenticator")
	}
	if err == nil {
		err = p.spend(ctx, c)
	}
	if err != nil {
		p.Log.InfoContext(ctx, "a passkey sign-in was refused", "user", owner.ID, "err", err)
		return storage.User{}, nil, ErrPasskeyRefused
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return storage.User{}, nil, err
	}
	if _, err := p.store.UseFactor(ctx, f.ID, 0, data, p.now()); err != nil {
		return storage.User{}, nil, err
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditFactorUse, Detail: "passkey " + itoa(f.ID) + " of user " + itoa(owner.ID)})
	if !owner.DisabledAt.IsZero() {
		return storage.User{}, nil, ErrDisabled
	}
	return owner, []string{AMRHardware, AMRUser}, nil
}
