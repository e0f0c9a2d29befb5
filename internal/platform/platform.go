// Package platform is Latchkey's domain layer: users, apps and communities,
// the consents users give, authorization codes, minting, checking and
// revoking credentials, messages, and the audit log of every security
// action. It is the only holder of the storage: the CLI, the browser pages,
// the OAuth endpoints and the API methods all ask it, so each rule is
// written once. See ARCHITECTURE.md for where each rule lives.
package platform

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"latchkey/internal/dpop"
	"latchkey/internal/storage"
	"latchkey/internal/token"
	"latchkey/internal/tokencache"
)

// Options are what a Platform is built from.
type Options struct {
	Store storage.Storage
	// Keys mints and seals; nil for commands that need no server secret.
	Keys *token.Keyring
	Now  func() time.Time
	Log  *slog.Logger
	// Cache holds checked tokens; nil for none. Every revocation drops what
	// it revoked from it.
	Cache *tokencache.Cache
	// OnRevoke, when set, is also told the hashes of tokens that stopped
	// working (to tell other nodes).
	OnRevoke func([]token.Hash)
	// OnIssue, when set, is told of each token minted (for metrics).
	OnIssue func(token.Kind)
	// CallbackAllow are the loopback, private or link-local ranges Callback
	// API servers may be in.
	CallbackAllow []netip.Prefix
	// OutboundCAs are the certificates the server's outbound HTTPS is
	// checked against (nil: the system's); a test's or a private CA.
	OutboundCAs *x509.CertPool
	// NoClientDocuments turns client ID metadata documents off.
	NoClientDocuments bool
	// NewClientsPerHour bounds the client metadata documents not seen
	// before that one client address may have fetched in an hour (0: no
	// bound).
	NewClientsPerHour int
	// OnEvent, when set, is told of each community event stored, so that
	// the other nodes wake their waiting polls (Bots.Notify there).
	OnEvent func(communityID int64)
	// Lifetimes are the user tokens' lifetimes (the defaults when 0).
	Lifetimes Lifetimes
	// PublicURL is the server's URL, the id_tokens' issuer (nil for
	// commands that sign none).
	PublicURL *url.URL
	// RefreshTTL is a refresh token's lifetime (DefaultRefreshTTL when 0);
	// RefreshGrace how long a spent one may be retried (0: never).
	RefreshTTL, RefreshGrace time.Duration
	// RequireMFA: everyone signs in with a second factor.
	RequireMFA bool
}

// DefaultRefreshTTL is 180 days.
const DefaultRefreshTTL = 4320 * time.Hour

// Platform is the domain layer as services, each the one owner of its
// rules and each holding only the concerns of storage it keeps, with what
// they all share (core). Consumers depend on the services they use; what
// is left on Platform itself is the node's upkeep.
type Platform struct {
	*core
	store storage.Storage

	Users       *Users
	Apps        *Apps
	Communities *Communities
	// Tokens checks and revokes credentials.
	Tokens *Tokens
	// Issuer hands out every token a grant issues.
	Issuer *Issuer
	// Consents decides whether a request needs the dialog and records
	// what users grant.
	Consents *Consents
	// Codes mints, redeems and replay-revokes authorization codes.
	Codes *Codes
	// Pushed keeps pushed authorization requests.
	Pushed *Pushed
	// Refreshes issues and rotates refresh tokens.
	Refreshes *Refreshes
	// Signing holds the keys id_tokens are signed with.
	Signing *Signing
	// Devices runs the device authorization grant.
	Devices *Devices
	// Messages are the messages between users, communities and apps.
	Messages *Messages
	// Bots keeps communities' events and delivers them to Long Poll.
	Bots *Bots
	// Callbacks delivers them to the communities' Callback API servers.
	Callbacks *Callbacks
	// Admin keeps the admin API's tokens and reads the audit log.
	Admin *Admin
	// APIs are the resource servers apps get tokens for.
	APIs *APIs
	// Registrations are apps their clients register (RFC 7591, 7592).
	Registrations *Registrations
	// Documents are clients known by a client ID metadata document.
	Documents *ClientDocuments
	// Assertions authenticate clients by private_key_jwt.
	Assertions *Assertions
	// Sessions are the browser sessions; Factors the second factors.
	Sessions *Sessions
	Factors  *Factors
	// Upstreams are the identity providers people sign in through.
	Upstreams *Upstreams

	cluster cluster
}

// core is what every service shares: the keys, the clock, the log, the
// token cache, the audit log, and issuing and revoking tokens, which every
// change of access ends in (revocations reach the cache and the other
// nodes from here).
type core struct {
	// Keys mints, parses and seals; nil for commands that need no secret.
	Keys *token.Keyring
	// Now is the injected clock.
	Now func() time.Time
	Log *slog.Logger
	// Cache holds checked tokens (nil: none).
	Cache *tokencache.Cache

	tokens interface {
		storage.Tokens
		storage.Grants
	}
	auditLog storage.Audit
	onRevoke func([]token.Hash)
	onIssue  func(token.Kind)
}

// New builds the platform over o.Store.
func New(o Options) *Platform {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := o.Store
	c := &core{Keys: o.Keys, Now: o.Now, Log: o.Log, Cache: o.Cache, tokens: s, auditLog: s, onRevoke: o.OnRevoke, onIssue: o.OnIssue}
	p := &Platform{core: c, store: s}
	p.cluster.id = newNodeID()
	// Each service holds the concerns of storage it keeps.
	p.Users = &Users{core: c, store: s, attempts: s}
	p.Apps = &Apps{core: c, store: s}
	p.Tokens = &Tokens{core: c, consents: s, proofs: dpop.NewVerifier(proofKeys), nonces: newNonces()}
	p.Communities = &Communities{core: c, store: s, users: p.Users, apps: p.Apps}
	p.Consents = &Consents{core: c, store: s}
	p.Codes = &Codes{core: c, store: s}
	p.Pushed = &Pushed{core: c, store: s}
	p.Signing = &Signing{core: c, store: s}
	p.Tokens.signing = p.Signing
	p.Devices = &Devices{core: c, store: s, consents: p.Consents}
	p.Refreshes = &Refreshes{core: c, store: s, TTL: o.RefreshTTL, Grace: o.RefreshGrace}
	if p.Refreshes.TTL == 0 {
		p.Refreshes.TTL = DefaultRefreshTTL
	}
	p.Issuer = &Issuer{core: c, users: s, checker: p.Tokens, refreshes: p.Refreshes, signing: p.Signing, Lifetimes: o.Lifetimes, PublicURL: o.PublicURL}
	if p.Issuer.Lifetimes.Code == 0 {
		p.Issuer.Lifetimes.Code = DefaultCodeTokenTTL
	}
	if p.Issuer.Lifetimes.Implicit == 0 {
		p.Issuer.Lifetimes.Implicit = DefaultImplicitTokenTTL
	}
	out := &Outbound{Allow: o.CallbackAllow, RootCAs: o.OutboundCAs}
	p.Callbacks = &Callbacks{core: c, store: s, out: out}
	p.Bots = &Bots{core: c, store: s, communities: p.Communities, callbacks: p.Callbacks, onEvent: o.OnEvent, waits: newPollWaits(MaxPollWaits, MaxPollWaitsPerCommunity)}
	p.Messages = &Messages{core: c, store: s, communities: p.Communities, bots: p.Bots, consents: p.Consents}
	p.Admin = &Admin{core: c, store: s}
	p.APIs = newAPIs(c, s, o.PublicURL)
	p.Assertions = &Assertions{core: c, apps: p.Apps, out: out, proofs: s}
	p.Documents = &ClientDocuments{core: c, store: s, apps: p.Apps, out: out, Off: o.NoClientDocuments, NewPerHour: o.NewClientsPerHour, attempts: s}
	p.Assertions.documents = p.Documents
	p.Registrations = &Registrations{core: c, store: s, apps: p.Apps, ClientURI: func(id string) string {
		if o.PublicURL == nil {
			return ""
		}
		return o.PublicURL.JoinPath("/oauth/register", id).String()
	}}
	p.Issuer.apis = p.APIs
	p.Sessions = &Sessions{core: c, store: s}
	p.Apps.out = out
	p.Upstreams = &Upstreams{core: c, store: s, users: s, out: out, RedirectURI: func(name string) string {
		if o.PublicURL == nil {
			return ""
		}
		return o.PublicURL.JoinPath("/login/upstream", name, "callback").String()
	}}
	if o.PublicURL != nil {
		logouts := &BackChannel{core: c, sessions: s, queue: s, apps: p.Apps, signing: p.Signing, issuer: p.Issuer.URL, wake: p.Callbacks.Wake}
		p.Users.logouts, p.Sessions.logouts = logouts, logouts
	}
	p.Factors = &Factors{core: c, store: s, users: s, attempts: s, proofs: s, RequireMFA: o.RequireMFA, passkeys: newPasskeys(o.PublicURL)}
	if o.PublicURL != nil {
		p.Factors.Issuer = o.PublicURL.Hostname()
	}
	return p
}

// Ping reports whether the storage answers.
func (p *Platform) Ping(ctx context.Context) error { return p.store.Ping(ctx) }

// usage collects when community tokens were last used, in memory, so the
// API never writes on a call; FlushUsage stores it in one batch.
type usage struct {
	mu   sync.Mutex
	used map[token.Hash]time.Time
}

// TokenUsed notes a use of the token at now, to the minute.
func (p *Tokens) TokenUsed(h token.Hash, now time.Time) {
	now = now.Truncate(time.Minute)
	p.usage.mu.Lock()
	if p.usage.used == nil {
		p.usage.used = map[token.Hash]time.Time{}
	}
	if len(p.usage.used) < 1_000_000 {
		p.usage.used[h] = now
	}
	p.usage.mu.Unlock()
}

// FlushUsage writes the noted uses to storage.
func (p *Tokens) FlushUsage(ctx context.Context) error {
	p.usage.mu.Lock()
	used := p.usage.used
	p.usage.used = nil
	p.usage.mu.Unlock()
	return p.tokens.TouchTokens(ctx, used)
}

// Expired tokens are deleted a day after they expire, so that until then
// the API can still answer "access_token has expired" rather than "invalid";
// revoked tokens 30 days after their revocation, so that for that long a
// user's "remove access" is still told apart (vk-wire.md §4).
const (
	expiredTokenRetention = 24 * time.Hour
	revokedTokenRetention = 30 * 24 * time.Hour
)

// Cleanup deletes expired codes and tokens in batches, bounded per run, on
// one node at a time (an advisory lock on PostgreSQL). It returns how many
// of each it deleted.
func (p *Platform) Cleanup(ctx context.Context) (codes, tokens int64, err error) {
	const batch, maxBatches = 1000, 100
	_, err = p.store.RunExclusive(ctx, "cleanup", func(ctx context.Context) error {
		for range maxBatches {
			now := p.Now()
			c, t, err := p.store.DeleteExpired(ctx, now, now.Add(-expiredTokenRetention), now.Add(-revokedTokenRetention), batch)
			codes, tokens = codes+c, tokens+t
			if err != nil {
				return err
			}
			if _, err := p.store.DeleteCommunityEvents(ctx, now.Add(-EventRetention), batch); err != nil {
				return err
			}
			if c < batch && t < batch { // t counts two kinds: a full batch of either runs again
				break
			}
			select { // let the requests in between batches
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	})
	if err == nil {
		_, err = p.store.PruneRevocations(ctx, p.Now().Add(-revocationLogRetention))
	}
	if err == nil {
		_, err = p.store.PruneAttempts(ctx, p.Now().Add(-attemptRetention))
	}
	if err == nil {
		_, err = p.Registrations.Expire(ctx, batch)
	}
	if codes+tokens > 0 {
		p.Log.InfoContext(ctx, "deleted expired credentials", "codes", codes, "tokens", tokens)
	}
	return codes, tokens, err
}

// attemptRetention is how long a throttle's window is kept: longer than
// any window (the longest is an hour).
const attemptRetention = 24 * time.Hour

// revocationLogRetention is how long the revocation log keeps an entry: far
// longer than any follower lags.
const revocationLogRetention = time.Hour

// FollowRevocations keeps the token cache true to revocations made by other
// processes on the same SQLite file (the CLI, another server): every
// interval it reads the revocation log past what it has seen and drops
// those tokens from the cache. Until it knows where the log ends, the cache
// is off. It returns when ctx ends.
//
// On SQLite the log's order is its commit order (one writer), so nothing
// can be skipped. PostgreSQL nodes are told by NOTIFY instead.
func (p *Platform) FollowRevocations(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	seq, err := p.store.LastRevocation(ctx)
	for err != nil {
		p.Cache.Disable()
		p.Log.WarnContext(ctx, "reading the revocation log failed: token cache off", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seq, err = p.store.LastRevocation(ctx)
	}
	p.Cache.Enable()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			hashes, next, err := p.store.RevocationsAfter(ctx, seq, 1000)
			if err != nil {
				p.Log.WarnContext(ctx, "reading the revocation log failed", "err", err)
				break
			}
			p.Cache.Invalidate(hashes)
			seq = next
			if len(hashes) < 1000 {
				break
			}
		}
	}
}

// Actor is who performs an action and from where, for the audit log.
type Actor struct {
	UserID int64
	IP     string
	// Operator: the server's operator (the command line, the admin API),
	// who may manage every app and community.
	Operator bool
}

// CLI is the actor of commands run on the server's own machine.
var CLI = Actor{IP: "cli", Operator: true}

// AdminAPI is the actor of an admin API request from ip.
func AdminAPI(ip string) Actor { return Actor{IP: ip, Operator: true} }

func (p *core) now() time.Time { return p.Now().UTC().Truncate(time.Second) }

func (p *core) revoked(hashes []token.Hash) {
	if len(hashes) == 0 {
		return
	}
	p.Cache.Invalidate(hashes)
	if p.onRevoke != nil {
		p.onRevoke(hashes)
	}
}

func (p *core) issued(kind token.Kind) {
	if p.onIssue != nil {
		p.onIssue(kind)
	}
}

func (p *core) audit(ctx context.Context, a Actor, e storage.AuditEvent) {
	e.At = p.now()
	e.ActorUserID = a.UserID
	e.IP = a.IP
	if err := p.auditLog.AddAudit(ctx, e); err != nil {
		p.Log.ErrorContext(ctx, "audit log write failed", "action", e.Action, "err", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TakeAttempt, RefundAttempt and ResetAttempts keep the pages' throttles
// (logins, sign-ups, device codes) in storage, shared by every node.
func (p *Users) TakeAttempt(ctx context.Context, key token.Hash, limit int, since, now time.Time) (bool, time.Time, error) {
	return p.attempts.TakeAttempt(ctx, key, limit, since, now)
}

func (p *Users) RefundAttempt(ctx context.Context, key token.Hash, since time.Time) error {
	return p.attempts.RefundAttempt(ctx, key, since)
}

func (p *Users) ResetAttempts(ctx context.Context, key token.Hash) error {
	return p.attempts.ResetAttempts(ctx, key)
}
