package platform

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"latchkey/internal/storage"
)

// Upstreams is the one owner of federation: the identity providers people
// sign in through (an OpenID Provider, by the code flow with PKCE, state
// and nonce, its id_token verified by go-oidc; or an LDAP directory, by
// the password typed at the login page), and the links of local users to
// their people there. The first sign-in of an upstream person creates a
// local user linked to (upstream, subject); later ones find that user. A
// person is never linked by e-mail: an upstream person whose address a
// local user has gets a user of their own. Secrets are sealed at rest;
// every request to an upstream goes through the one Outbound client.
type Upstreams struct {
	*core
	store storage.Upstreams
	users storage.Users
	out   *Outbound
	// RedirectURI is where an OpenID Provider sends people back, by
	// upstream name.
	RedirectURI func(name string) string
	providers   sync.Map // name → *oidc.Provider, discovered once
}

// UpstreamConfig are an upstream's settings: an OpenID Provider's issuer,
// client id, scopes and the claim that names the login; an LDAP
// directory's URL, service DN, search base and filter.
type UpstreamConfig struct {
	Issuer     string   `json:"issuer,omitempty"`
	ClientID   string   `json:"client_id,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
	ClaimLogin string   `json:"claim_login,omitempty"`
	URL        string   `json:"url,omitempty"`
	BindDN     string   `json:"bind_dn,omitempty"`
	BaseDN     string   `json:"base_dn,omitempty"`
	Filter     string   `json:"filter,omitempty"`
}

// UpstreamView is an upstream as operators see it: never its secret.
type UpstreamView struct {
	Name string               `json:"name"`
	Kind storage.UpstreamKind `json:"kind"`
	UpstreamConfig
	// RedirectURI is what to register at an OpenID Provider.
	RedirectURI string    `json:"redirect_uri,omitempty"`
	CreatedAt   time.Time `json:"-"`
}

var upstreamName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ErrNoSuchUpstream refuses a name no upstream has.
var ErrNoSuchUpstream = &Error{Kind: NotFound, Message: "there is no such upstream"}

func (p *Upstreams) view(u storage.Upstream) (UpstreamView, error) {
	v := UpstreamView{Name: u.Name, Kind: u.Kind, CreatedAt: u.CreatedAt}
	if err := json.Unmarshal(u.Config, &v.UpstreamConfig); err != nil {
		return v, fmt.Errorf("upstream %s: %w", u.Name, err)
	}
	if u.Kind == storage.UpstreamOIDC && p.RedirectURI != nil {
		v.RedirectURI = p.RedirectURI(u.Name)
	}
	return v, nil
}

// add stores an upstream of kind with its config and secret.
func (p *Upstreams) add(ctx context.Context, actor Actor, name string, kind storage.UpstreamKind, c UpstreamConfig, secret string) (UpstreamView, error) {
	if !upstreamName.MatchString(name) {
		return UpstreamView{}, invalid("name", "must be 1 to 32 lowercase Latin letters, digits and '-'")
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		return UpstreamView{}, err
	}
	u := storage.Upstream{Name: name, Kind: kind, Config: cfg, SecretSealed: p.Keys.Seal([]byte(secret)), CreatedAt: p.now()}
	if err := p.store.CreateUpstream(ctx, &u); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return UpstreamView{}, &Error{Kind: Conflict, Field: "name", Message: "is taken"}
		}
		return UpstreamView{}, err
	}
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditUpstreamAdd, Detail: string(kind) + " " + name})
	return p.view(u)
}

// AddOIDC adds an OpenID Provider. Its discovery is read at the first
// sign-in, through the outbound rules (a loopback or private issuer needs
// --callback-allow).
func (p *Upstreams) AddOIDC(ctx context.Context, actor Actor, name string, c UpstreamConfig, clientSecret string) (UpstreamView, error) {
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.RawQuery != "" {
		return UpstreamView{}, invalid("issuer", "must be the provider's absolute https URL")
	}
	if err := p.out.CheckURL(c.Issuer); err != nil {
		return UpstreamView{}, invalid("issuer", "is on a loopback, private or link-local address: allow it with --callback-allow")
	}
	if c.ClientID == "" || len(c.ClientID) > 512 || !validText(c.ClientID) {
		return UpstreamView{}, invalid("client_id", "is required")
	}
	if clientSecret == "" || len(clientSecret) > 1024 {
		return UpstreamView{}, invalid("client_secret", "is required")
	}
	if c.ClaimLogin == "" {
		c.ClaimLogin = "preferred_username"
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	} else if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	c.URL, c.BindDN, c.BaseDN, c.Filter = "", "", "", ""
	return p.add(ctx, actor, name, storage.UpstreamOIDC, c, clientSecret)
}

// All is every upstream, by name.
func (p *Upstreams) All(ctx context.Context) ([]UpstreamView, error) {
	us, err := p.store.ListUpstreams(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UpstreamView, 0, len(us))
	for _, u := range us {
		v, err := p.view(u)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Delete removes the upstream and its links; the users it created stay,
// and sign in locally if they have a password.
func (p *Upstreams) Delete(ctx context.Context, actor Actor, name string) error {
	if err := p.store.DeleteUpstream(ctx, name); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNoSuchUpstream
		}
		return err
	}
	p.providers.Delete(name)
	p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditUpstreamRemove, Detail: name})
	return nil
}

// upstream is the named upstream of kind, with its secret opened.
func (p *Upstreams) upstream(ctx context.Context, name string, kind storage.UpstreamKind) (storage.Upstream, UpstreamConfig, string, error) {
	var c UpstreamConfig
	u, err := p.store.UpstreamByName(ctx, name)
	if errors.Is(err, storage.ErrNotFound) || err == nil && u.Kind != kind {
		return u, c, "", ErrNoSuchUpstream
	}
	if err != nil {
		return u, c, "", err
	}
	if err := json.Unmarshal(u.Config, &c); err != nil {
		return u, c, "", err
	}
	secret, err := p.Keys.Open(u.SecretSealed)
	return u, c, string(secret), err
}

// ErrUpstreamDown answers a sign-in its upstream could not be asked about.
var ErrUpstreamDown = &Error{Kind: Unavailable, Message: "the sign-in service cannot be reached right now: try again later"}

// ErrUpstreamRefused is the one answer to an upstream sign-in that does
// not check out: state, nonce, code or id_token.
var ErrUpstreamRefused = &Error{Kind: Invalid, Message: "the sign-in could not be confirmed: try again"}

// upstreamTimeout bounds every request to an upstream.
const upstreamTimeout = 10 * time.Second

// provider is the OpenID Provider's discovery, read once.
func (p *Upstreams) provider(ctx context.Context, name string, c UpstreamConfig) (*oidc.Provider, error) {
	if v, ok := p.providers.Load(name); ok {
		return v.(*oidc.Provider), nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, p.out.Client()), upstreamTimeout)
	defer cancel()
	pr, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		p.Log.WarnContext(ctx, "upstream: discovery failed", "upstream", name, "err", err)
		return nil, ErrUpstreamDown
	}
	p.providers.Store(name, pr)
	return pr, nil
}

func (p *Upstreams) oauthConfig(pr *oidc.Provider, name string, c UpstreamConfig, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: secret, Endpoint: pr.Endpoint(), RedirectURL: p.RedirectURI(name), Scopes: c.Scopes}
}

// UpstreamFlow is what a sign-in through an OpenID Provider keeps between
// sending the browser there and its coming back (sealed in a cookie by
// the pages): the state, nonce and PKCE verifier.
type UpstreamFlow struct {
	Name     string `json:"n"`
	State    string `json:"s"`
	Nonce    string `json:"o"`
	Verifier string `json:"v"`
}

// Begin starts a sign-in through the named OpenID Provider: where to send
// the browser, and the flow to keep.
func (p *Upstreams) Begin(ctx context.Context, name string) (string, UpstreamFlow, error) {
	_, c, secret, err := p.upstream(ctx, name, storage.UpstreamOIDC)
	if err != nil {
		return "", UpstreamFlow{}, err
	}
	pr, err := p.provider(ctx, name, c)
	if err != nil {
		return "", UpstreamFlow{}, err
	}
	f := UpstreamFlow{Name: name, State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier()}
	to := p.oauthConfig(pr, name, c, secret).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return to, f, nil
}

// Identity is an upstream person, as their upstream says.
type Identity struct {
	UpstreamID int64
	Upstream   string
	Subject    string
	Login      string
	FirstName  string
	LastName   string
	Email      string
}

// Finish completes the flow f with the browser's answer (state, code):
// the code is exchanged with PKCE, and the id_token verified (signature,
// issuer, audience, expiry) and its nonce compared.
func (p *Upstreams) Finish(ctx context.Context, f UpstreamFlow, state, code string) (Identity, error) {
	if f.State == "" || subtle.ConstantTimeCompare([]byte(state), []byte(f.State)) != 1 || code == "" || len(code) > 2048 {
		return Identity{}, ErrUpstreamRefused
	}
	u, c, secret, err := p.upstream(ctx, f.Name, storage.UpstreamOIDC)
	if err != nil {
		return Identity{}, err
	}
	pr, err := p.provider(ctx, f.Name, c)
	if err != nil {
		return Identity{}, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, p.out.Client()), upstreamTimeout)
	defer cancel()
	tok, err := p.oauthConfig(pr, f.Name, c, secret).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		p.Log.InfoContext(ctx, "upstream: the code exchange failed", "upstream", f.Name, "err", err)
		return Identity{}, ErrUpstreamRefused
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := pr.VerifierContext(ctx, &oidc.Config{ClientID: c.ClientID, Now: p.now}).Verify(ctx, raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		p.Log.InfoContext(ctx, "upstream: the id_token was refused", "upstream", f.Name, "err", err)
		return Identity{}, ErrUpstreamRefused
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, ErrUpstreamRefused
	}
	text := func(k string) string {
		s, _ := claims[k].(string)
		if len(s) > 256 || !validText(s) {
			return ""
		}
		return strings.TrimSpace(s)
	}
	id := Identity{UpstreamID: u.ID, Upstream: f.Name, Subject: idt.Subject, Login: text(c.ClaimLogin), FirstName: text("given_name"), LastName: text("family_name")}
	if id.FirstName == "" && id.LastName == "" {
		id.FirstName = text("name")
	}
	// An address the upstream has not verified is not the person's.
	if verified, _ := claims["email_verified"].(bool); verified {
		id.Email = text("email")
	}
	if id.Subject == "" || len(id.Subject) > 255 {
		return Identity{}, ErrUpstreamRefused
	}
	return id, nil
}

// SignIn is the local user of id: the one linked to it, or, at the first
// sign-in, a new one linked to it (never one found by e-mail). A disabled
// user is refused.
func (p *Upstreams) SignIn(ctx context.Context, id Identity) (storage.User, error) {
	u, err := p.store.LinkedUser(ctx, id.UpstreamID, id.Subject)
	if err == nil {
		if !u.DisabledAt.IsZero() {
			return u, ErrDisabled
		}
		return u, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return u, err
	}
	link := storage.UserLink{UpstreamID: id.UpstreamID, Subject: id.Subject, CreatedAt: p.now()}
	first, last := clip(id.FirstName), clip(id.LastName)
	email := id.Email
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		email = ""
	}
	for i := range 5 {
		nu := storage.User{Login: loginFor(id, i), FirstName: first, LastName: last, Email: email, CreatedAt: p.now()}
		err := p.store.CreateLinkedUser(ctx, &nu, link)
		if err == nil {
			p.audit(ctx, Actor{UserID: nu.ID}, storage.AuditEvent{Action: storage.AuditUpstreamUser, Detail: "user " + itoa(nu.ID) + " from " + id.Upstream})
			return nu, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return nu, err
		}
		// The subject was linked meanwhile (a sign-in racing this one),
		// or the login is taken: which?
		if u, err := p.store.LinkedUser(ctx, id.UpstreamID, id.Subject); err == nil {
			return u, nil
		}
	}
	return storage.User{}, &Error{Kind: Conflict, Message: "no login could be made for this person: ask an operator"}
}

// loginFor is a login for a new user of id: the upstream's, when it is one
// Latchkey takes, else made from the upstream's name; a suffix on retry i.
func loginFor(id Identity, i int) string {
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return -1
	}, id.Login)
	if len(base) < 3 {
		base = id.Upstream + "-user"
	}
	if len(base) > 24 {
		base = base[:24]
	}
	if i == 0 {
		return base
	}
	return base + "-" + strings.ToLower(rand.Text()[:6])
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxName {
		s = string([]rune(s)[:maxName])
	}
	return s
}

// ErrLinked refuses linking an upstream person who is linked already.
var ErrLinked = &Error{Kind: Conflict, Message: "this account of the upstream is linked to a user already"}

// Link links the signed-in user to id.
func (p *Upstreams) Link(ctx context.Context, actor Actor, userID int64, id Identity) error {
	err := p.store.LinkUser(ctx, storage.UserLink{UpstreamID: id.UpstreamID, Subject: id.Subject, UserID: userID, CreatedAt: p.now()})
	if errors.Is(err, storage.ErrConflict) {
		return ErrLinked
	}
	if err == nil {
		p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditUpstreamLink, Detail: "user " + itoa(userID) + " to " + id.Upstream})
	}
	return err
}

// Unlink removes the user's link to the named upstream.
func (p *Upstreams) Unlink(ctx context.Context, actor Actor, userID int64, name string) error {
	u, err := p.store.UpstreamByName(ctx, name)
	if err == nil {
		err = p.store.Unlink(ctx, userID, u.ID)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoSuchUpstream
	}
	if err == nil {
		p.audit(ctx, actor, storage.AuditEvent{Action: storage.AuditUpstreamUnlink, Detail: "user " + itoa(userID) + " from " + name})
	}
	return err
}

// Linked are the names of the upstreams the user is linked to.
func (p *Upstreams) Linked(ctx context.Context, userID int64) (map[string]bool, error) {
	links, err := p.store.UserLinks(ctx, userID)
	if err != nil || len(links) == 0 {
		return nil, err
	}
	us, err := p.store.ListUpstreams(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, l := range links {
		for _, u := range us {
			if u.ID == l.UpstreamID {
				out[u.Name] = true
			}
		}
	}
	return out, nil
}
