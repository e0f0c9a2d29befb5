// Package platform is Latchkey's domain layer: creating users, apps and
// communities, minting and revoking their credentials, and recording every
// security action in the audit log. The CLI, the browser pages and the OAuth
// endpoints all go through it, so a rule is written once.
package platform

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
	"latchkey/internal/tokencache"
)

// Platform holds the dependencies of every domain operation.
type Platform struct {
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

	usage usage
}

// usage collects when community tokens were last used, in memory, so the
// API never writes on a call; FlushUsage stores it in one batch.
type usage struct {
	mu   sync.Mutex
	used map[token.Hash]time.Time
}

// TokenUsed notes a use of the token at now, to the minute.
func (p *Platform) TokenUsed(h token.Hash, now time.Time) {
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
func (p *Platform) FlushUsage(ctx context.Context) error {
	p.usage.mu.Lock()
	used := p.usage.used
	p.usage.used = nil
	p.usage.mu.Unlock()
	return p.Store.TouchTokens(ctx, used)
}

// Actor is who performs an action and from where, for the audit log.
type Actor struct {
	UserID int64
	IP     string
}

// CLI is the actor of commands run on the server's own machine.
var CLI = Actor{IP: "cli"}

func (p *Platform) now() time.Time { return p.Now().UTC().Truncate(time.Second) }

func (p *Platform) revoked(hashes []token.Hash) {
	if len(hashes) == 0 {
		return
	}
	p.Cache.Invalidate(hashes)
	if p.OnRevoke != nil {
		p.OnRevoke(hashes)
	}
}

func (p *Platform) issued(kind token.Kind) {
	if p.OnIssue != nil {
		p.OnIssue(kind)
	}
}

func (p *Platform) audit(ctx context.Context, a Actor, e storage.AuditEvent) {
	e.At = p.now()
	e.ActorUserID = a.UserID
	e.IP = a.IP
	if err := p.Store.AddAudit(ctx, e); err != nil && p.Log != nil {
		p.Log.ErrorContext(ctx, "audit log write failed", "action", e.Action, "err", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
