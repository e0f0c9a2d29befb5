package platform_test

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/storage/postgres"
	"latchkey/internal/storage/sqlite"
	"latchkey/internal/testenv"
	"latchkey/internal/token"
	"latchkey/internal/tokencache"
)

// The platform's rules, each named by the behaviour it guarantees, on a
// real SQLite file and a real PostgreSQL database.

// clock is the injected time: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	p     *platform.Platform
	store storage.Storage
	clock *clock
	owner storage.User
	app   platform.AppView
}

// onBoth runs body on a platform over SQLite and over PostgreSQL.
func onBoth(t *testing.T, body func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "rules.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		body(t, newFixture(t, s))
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := postgres.Open(context.Background(), testenv.PostgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		body(t, newFixture(t, s))
	})
}

func newFixture(t *testing.T, s storage.Storage) *fixture {
	t.Helper()
	f := &fixture{store: s, clock: &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}}
	public, _ := url.Parse("https://lk.example")
	f.p = platform.New(platform.Options{Store: s, Keys: mustKeys(t, "rules-test-secret-0123456789abcdefghijkl"), Now: f.clock.Now, Cache: tokencache.New(1000),
		PublicURL: public, Lifetimes: platform.Lifetimes{Code: 12 * time.Hour, Implicit: 24 * time.Hour}})
	var err error
	if f.owner, err = f.p.Users.CreateUser(context.Background(), platform.NewUser{Login: "owner", Password: "owner-password"}); err != nil {
		t.Fatal(err)
	}
	if f.app, err = f.p.Apps.CreateApp(context.Background(), platform.CLI, platform.NewApp{OwnerID: f.owner.ID, Title: "Rules", Type: storage.Web,
		RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) user(t *testing.T, login string) storage.User {
	t.Helper()
	u, err := f.p.Users.CreateUser(context.Background(), platform.NewUser{Login: login, Password: login + "-password"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConsentSkipping(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "alice")
		c := f.p.Consents
		check := func(want scope.Mask, ask bool) bool {
			t.Helper()
			d, err := c.Check(ctx, u.ID, f.app.ID, want, ask)
			if err != nil {
				t.Fatal(err)
			}
			return d.Covered
		}
		if check(0, false) {
			t.Fatal("a user who never consented skips the dialog")
		}
		if err := c.Grant(ctx, u.ID, f.app.ID, scope.Friends|scope.Photos, nil, true); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name    string
			want    scope.Mask
			ask     bool
			covered bool
		}{
			{"the same scopes skip the dialog", scope.Friends | scope.Photos, false, true},
			{"a subset skips the dialog", scope.Friends, false, true},
			{"no scopes skip the dialog", 0, false, true},
			{"one more scope shows the dialog", scope.Friends | scope.Email, false, false},
			{"revoke=1 shows the dialog for a subset", scope.Friends, true, false},
		}
		for _, tc := range cases {
			if got := check(tc.want, tc.ask); got != tc.covered {
				t.Errorf("%s: covered = %v", tc.name, got)
			}
		}
		if err := c.Grant(ctx, u.ID, f.app.ID, scope.Email, nil, true); err != nil {
			t.Fatal(err)
		}
		if !check(scope.Friends|scope.Photos|scope.Email, false) {
			t.Fatal("a later grant replaced the earlier scopes instead of adding to them")
		}
		if err := f.p.Tokens.RemoveAppAccess(ctx, platform.Actor{UserID: u.ID}, u.ID, f.app.ID); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Authorized(ctx, u.ID, f.app.ID); ok {
			t.Fatal("after Remove access the user is still an app user")
		}
	})
}

func TestConcurrentGrantsLoseNoScope(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "alice")
		var wg sync.WaitGroup
		for _, m := range []scope.Mask{scope.Friends, scope.Photos} {
			wg.Go(func() {
				// Each grant decided on what it read before the other wrote.
				d, err := f.p.Consents.Check(ctx, u.ID, f.app.ID, m, false)
				if err == nil {
					err = f.p.Consents.Grant(ctx, u.ID, f.app.ID, m, &d, false)
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		d, err := f.p.Consents.Check(ctx, u.ID, f.app.ID, scope.Friends|scope.Photos, false)
		if err != nil || !d.Covered {
			t.Fatalf("after two grants at once the consent is %+v (%v), want both scopes", d.Prior, err)
		}
	})
}

func TestCodeRules(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "alice")
		verifier := strings.Repeat("v", 50)
		sum := sha256.Sum256([]byte(verifier))
		challenge := base64.RawURLEncoding.EncodeToString(sum[:])
		issue := func() string {
			t.Helper()
			raw, err := f.p.Codes.Issue(ctx, platform.CodeRequest{AppID: f.app.ID, UserID: u.ID, Scope: scope.Friends,
				RedirectURI: "https://app.example/cb", CodeChallenge: challenge, CodeChallengeMethod: "S256"}, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		// redeem redeems raw and writes its one use by itself, as a grant
		// that issues community tokens does.
		redeem := func(raw string, app int64, uri, v string) error {
			_, spend, err := f.p.Codes.Redeem(ctx, raw, platform.Redemption{AppID: app, RedirectURI: uri, Verifier: v})
			if err == nil && spend != nil {
				err = f.p.Codes.Spend(ctx, *spend)
			}
			return err
		}

		t.Run("a code works once, for its app, redirect URI and verifier", func(t *testing.T) {
			raw := issue()
			if err := redeem(raw, f.app.ID+1, "https://app.example/cb", verifier); err != platform.ErrCodeInvalid {
				t.Fatalf("another app's redemption: %v", err)
			}
			raw = issue()
			if err := redeem(raw, f.app.ID, "https://app.example/other", verifier); err != platform.ErrCodeRedirect {
				t.Fatalf("another redirect URI: %v", err)
			}
			raw = issue()
			var pe *platform.Error
			if err := redeem(raw, f.app.ID, "https://app.example/cb", strings.Repeat("w", 50)); !errors.As(err, &pe) || pe.Field != "code_verifier" {
				t.Fatalf("a wrong verifier: %v", err)
			}
			raw = issue()
			if err := redeem(raw, f.app.ID, "https://app.example/cb", verifier); err != nil {
				t.Fatalf("the right redemption: %v", err)
			}
		})
		t.Run("a code expires", func(t *testing.T) {
			raw := issue()
			f.clock.Advance(10 * time.Minute)
			if err := redeem(raw, f.app.ID, "https://app.example/cb", verifier); err != platform.ErrCodeInvalid {
				t.Fatalf("an expired code: %v", err)
			}
		})
		t.Run("a code used twice revokes what it issued", func(t *testing.T) {
			raw := issue()
			code, spend, err := f.p.Codes.Redeem(ctx, raw, platform.Redemption{AppID: f.app.ID, RedirectURI: "https://app.example/cb", Verifier: verifier})
			if err == nil {
				err = f.p.Codes.Spend(ctx, *spend)
			}
			if err != nil {
				t.Fatal(err)
			}
			tok, _, err := f.p.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: f.app.ID, UserID: u.ID, Flow: storage.FlowCode, CodeHash: &code.Hash}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.p.Tokens.CheckToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if err := redeem(raw, f.app.ID, "https://app.example/cb", verifier); err != platform.ErrCodeUsed {
				t.Fatalf("the replay: %v", err)
			}
			if _, err := f.p.Tokens.CheckToken(ctx, tok); !errors.Is(err, platform.ErrTokenRevoked) {
				t.Fatalf("the token of a replayed code: %v, want revoked", err)
			}
		})
		t.Run("a forged code is refused before storage", func(t *testing.T) {
			forged, _ := mustKeys(t, "another-secret-0123456789abcdefghijklmnop").Mint(token.Code)
			if err := redeem(forged, f.app.ID, "https://app.example/cb", verifier); err != platform.ErrCodeInvalid {
				t.Fatalf("a forged code: %v", err)
			}
		})
		t.Run("a code is sealed: nothing stored until it is used, nothing else passes for one", func(t *testing.T) {
			raw := issue()
			if strings.Contains(raw, "app.example") || len(raw) > 1000 || strings.Trim(raw, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
				t.Fatalf("the code shows what it holds, is long, or is not digits and letters: %q", raw)
			}
			other := platform.New(platform.Options{Store: f.store, Keys: mustKeys(t, "another-secret-0123456789abcdefghijklmnop"), Now: f.clock.Now,
				Cache: tokencache.New(10)})
			foreign, err := other.Codes.Issue(ctx, platform.CodeRequest{AppID: f.app.ID, UserID: u.ID, RedirectURI: "https://app.example/cb",
				CodeChallenge: challenge, CodeChallengeMethod: "S256"}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			flipped := []byte(raw)
			flipped[len(flipped)/2] ^= 1
			sealedOther := "lka2" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(f.p.Keys.Seal([]byte(`{"a":1,"e":99999999999}`))))
			for name, bad := range map[string]string{"another secret's": foreign, "a changed one": string(flipped), "another thing sealed": sealedOther,
				"an empty one": "lka2", "a huge one": "lka2" + strings.Repeat("A", 5000)} {
				if err := redeem(bad, f.app.ID, "https://app.example/cb", verifier); err != platform.ErrCodeInvalid {
					t.Errorf("%s: %v", name, err)
				}
			}
			code, spend, err := f.p.Codes.Redeem(ctx, raw, platform.Redemption{AppID: f.app.ID, RedirectURI: "https://app.example/cb", Verifier: verifier})
			if err != nil || code.UserID != u.ID || code.Scope != scope.Friends || spend == nil || spend.UsedAt.IsZero() {
				t.Fatalf("the redemption: %+v, %+v, %v", code, spend, err)
			}
			if _, err := f.store.GetCode(ctx, code.Hash); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a redeemed code's row before its tokens are issued: %v, want none", err)
			}
			if _, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: code.Hash, AppID: f.app.ID, UserID: u.ID, Scope: code.Scope},
				Flow: storage.FlowCode, Spends: spend}); err != nil {
				t.Fatal(err)
			}
			if row, err := f.store.GetCode(ctx, code.Hash); err != nil || row.UsedAt.IsZero() {
				t.Fatalf("the used code's row: %+v, %v", row, err)
			}
		})
		t.Run("a code hashes in the order codes were minted; one sealed before that (lka2) keeps its hash, and neither passes for the other", func(t *testing.T) {
			raw := issue()
			code, _, err := f.p.Codes.Redeem(ctx, raw, platform.Redemption{AppID: f.app.ID, RedirectURI: "https://app.example/cb", Verifier: verifier})
			if err != nil {
				t.Fatal(err)
			}
			minted := f.clock.Now().Truncate(time.Second)
			if !strings.HasPrefix(raw, "lka3") || code.Hash != token.HashAt(minted, raw) || binary.BigEndian.Uint64(code.Hash[:8])>>16 != uint64(minted.UnixMilli()) {
				t.Fatalf("code %.8s… hashes to %x, want its minting time %d ms first", raw, code.Hash, minted.UnixMilli())
			}
			record := fmt.Sprintf(`{"a":%d,"u":%d,"s":%d,"r":"https://app.example/cb","c":%q,"m":"S256","i":%d,"e":%d}`,
				f.app.ID, u.ID, scope.Friends, challenge, f.clock.Now().Unix(), f.clock.Now().Add(time.Minute).Unix())
			lower := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
			old := "lka2" + lower.EncodeToString(f.p.Keys.Seal([]byte("latchkey code v2\x00"+record)))
			code, spend, err := f.p.Codes.Redeem(ctx, old, platform.Redemption{AppID: f.app.ID, RedirectURI: "https://app.example/cb", Verifier: verifier})
			if err != nil || code.UserID != u.ID || code.Hash != token.HashOf(old) {
				t.Fatalf("a code sealed before: %+v, %v; want its hash as it was, %x", code, err, token.HashOf(old))
			}
			if err := f.p.Codes.Spend(ctx, *spend); err != nil {
				t.Fatal(err)
			}
			if err := redeem(old, f.app.ID, "https://app.example/cb", verifier); err != platform.ErrCodeUsed {
				t.Fatalf("a code sealed before, used again: %v", err)
			}
			for name, bad := range map[string]string{"the old code as a new one": "lka3" + old[4:], "a new code as an old one": "lka2" + issue()[4:]} {
				if err := redeem(bad, f.app.ID, "https://app.example/cb", verifier); err != platform.ErrCodeInvalid {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
		t.Run("a code's one use is written with its tokens: of two redemptions at once one gets tokens, and the replay revokes them", func(t *testing.T) {
			raw := issue()
			type result struct {
				got platform.Issued
				err error
			}
			results := make(chan result, 2)
			var spends []*storage.Code
			for range 2 {
				// Both pass the checks: neither has written the code's row yet.
				_, spend, err := f.p.Codes.Redeem(ctx, raw, platform.Redemption{AppID: f.app.ID, RedirectURI: "https://app.example/cb", Verifier: verifier})
				if err != nil || spend == nil {
					t.Fatalf("redemption: %v, %+v", err, spend)
				}
				spends = append(spends, spend)
			}
			var wg sync.WaitGroup
			for _, spend := range spends {
				wg.Go(func() {
					got, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: spend.Hash, AppID: f.app.ID, UserID: u.ID, Scope: spend.Scope},
						Flow: storage.FlowCode, Spends: spend})
					results <- result{got, err}
				})
			}
			wg.Wait()
			close(results)
			var won []platform.Issued
			used := 0
			for r := range results {
				switch {
				case r.err == nil:
					won = append(won, r.got)
				case r.err == platform.ErrCodeUsed:
					used++
				default:
					t.Fatalf("an issuance: %v", r.err)
				}
			}
			if len(won) != 1 || used != 1 {
				t.Fatalf("%d issuances got tokens and %d were told the code is used, want 1 and 1", len(won), used)
			}
			if _, err := f.p.Tokens.CheckToken(ctx, won[0].Access); !errors.Is(err, platform.ErrTokenRevoked) {
				t.Fatalf("the winner's token after the replay: %v, want revoked", err)
			}
			if won[0].Refresh == "" {
				t.Fatal("a code-flow grant without a refresh token")
			}
			if _, _, err := f.p.Refreshes.Rotate(ctx, won[0].Refresh, f.app.ID, storage.Holder{}); !errors.Is(err, platform.ErrRefreshInvalid) {
				t.Fatalf("the winner's refresh token after the replay: %v, want refused", err)
			}
		})
		t.Run("a code minted with a row before codes were sealed still works once", func(t *testing.T) {
			raw, h := f.p.Keys.Mint(token.Code)
			now := f.clock.Now()
			if err := f.store.CreateCode(ctx, storage.Code{Hash: h, AppID: f.app.ID, UserID: u.ID, Scope: scope.Friends, RedirectURI: "https://app.example/cb",
				CodeChallenge: challenge, CodeChallengeMethod: "S256", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if err := redeem(raw, f.app.ID, "https://app.example/cb", verifier); err != nil {
				t.Fatalf("the old code: %v", err)
			}
			if err := redeem(raw, f.app.ID, "https://app.example/cb", verifier); err != platform.ErrCodeUsed {
				t.Fatalf("the old code again: %v", err)
			}
		})
	})
}

func TestSecretRotationWindows(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		first := f.app.ClientSecret
		v, err := f.p.Apps.RotateSecret(ctx, platform.CLI, f.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		second := v.ClientSecret
		auth := func(secret string) error {
			_, _, err := f.p.Apps.AuthenticateClient(ctx, f.app.ID, secret)
			return err
		}
		if auth(first) != nil || auth(second) != nil {
			t.Fatal("right after a rotation both secrets must work")
		}
		f.clock.Advance(platform.OldSecretGrace - time.Second)
		if auth(first) != nil {
			t.Fatal("the old secret stopped working inside its grace period")
		}
		f.clock.Advance(time.Second)
		if auth(first) != platform.ErrBadSecret || auth(second) != nil {
			t.Fatal("after the grace period only the new secret works")
		}
		if _, err := f.p.Apps.RetireSecret(ctx, platform.CLI, f.app.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Apps.RetireSecret(ctx, platform.CLI, f.app.ID); platform.KindOf(err) != platform.Conflict {
			t.Fatalf("retiring with no old secret: %v, want a conflict", err)
		}
	})
}

func TestConcurrentRotationsLoseNone(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		var wg sync.WaitGroup
		views := make([]platform.AppView, 2)
		for i := range views {
			wg.Go(func() {
				v, err := f.p.Apps.RotateSecret(ctx, platform.CLI, f.app.ID)
				if err != nil {
					t.Error(err)
				}
				views[i] = v
			})
		}
		wg.Wait()
		// Serialised, the second rotation keeps the first one's new secret
		// as its old one: the original secret is gone, two secrets work.
		got, err := f.p.Apps.App(ctx, platform.CLI, f.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		newer := map[string]bool{views[0].ClientSecret: true, views[1].ClientSecret: true}
		if len(newer) != 2 || !newer[got.ClientSecret] || !newer[got.OldClientSecret] {
			t.Fatalf("after two rotations at once: current %q, old %q; want the two new secrets", got.ClientSecret, got.OldClientSecret)
		}
		if _, _, err := f.p.Apps.AuthenticateClient(ctx, f.app.ID, f.app.ClientSecret); err != platform.ErrBadSecret {
			t.Fatalf("the original secret after two rotations: %v, want refused", err)
		}
	})
}

func TestServiceTokenRegeneratedWhileChecked(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := f.p.Apps.NewServiceToken(ctx, platform.CLI, f.app.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		v, err := f.p.Apps.App(ctx, platform.CLI, f.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Tokens.CheckToken(ctx, v.ServiceToken); err != nil {
			t.Fatalf("the service token the app shows does not work: %v", err)
		}
		if _, err := f.p.Tokens.CheckToken(ctx, f.app.ServiceToken); !errors.Is(err, platform.ErrTokenRevoked) {
			t.Fatalf("the first service token: %v, want revoked", err)
		}
	})
}

func TestWhoMayDoWhat(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		stranger := f.user(t, "stranger")
		as := platform.Actor{UserID: stranger.ID}
		owner := platform.Actor{UserID: f.owner.ID}
		forbidden := func(name string, err error) {
			t.Helper()
			if platform.KindOf(err) != platform.Forbidden {
				t.Errorf("%s by a stranger: %v, want forbidden", name, err)
			}
		}
		_, err := f.p.Apps.App(ctx, as, f.app.ID)
		forbidden("seeing an app", err)
		_, err = f.p.Apps.RotateSecret(ctx, as, f.app.ID)
		forbidden("rotating the secret", err)
		_, err = f.p.Apps.NewServiceToken(ctx, as, f.app.ID)
		forbidden("a new service token", err)
		_, err = f.p.Apps.UpdateAppSettings(ctx, as, f.app.ID, platform.AppSettings{Title: "Mine now"})
		forbidden("editing settings", err)
		_, err = f.p.Apps.DeleteApp(ctx, as, f.app.ID)
		forbidden("deleting", err)
		if v, err := f.p.Apps.App(ctx, owner, f.app.ID); err != nil || v.Title != "Rules" || v.ClientSecret != f.app.ClientSecret {
			t.Fatalf("the app after a stranger's attempts: %+v, %v", v.App, err)
		}

		c, err := f.p.Communities.CreateCommunity(ctx, owner, f.owner.ID, "Club")
		if err != nil {
			t.Fatal(err)
		}
		forbidden("adding an admin", f.p.Communities.AddCommunityAdmin(ctx, as, c.ID, stranger.ID))
		_, err = f.p.Communities.CreateCommunityToken(ctx, as, c.ID, 0, scope.CommunityMessages)
		forbidden("creating a community token", err)
		forbidden("granting for a community", f.p.Communities.MayGrantFor(ctx, stranger.ID, []int64{c.ID}))
		if err := f.p.Communities.MayGrantFor(ctx, f.owner.ID, []int64{c.ID}); err != nil {
			t.Fatalf("an admin granting for the community: %v", err)
		}
		if err := f.p.Communities.MayGrantFor(ctx, f.owner.ID, []int64{c.ID + 100}); platform.KindOf(err) != platform.NotFound {
			t.Fatalf("granting for a community that does not exist: %v, want not found", err)
		}
		if err := f.p.Communities.RemoveCommunityAdmin(ctx, owner, c.ID, f.owner.ID); !errors.Is(err, platform.ErrLastAdmin) {
			t.Fatalf("removing the last admin: %v", err)
		}
	})
}

func TestSessionsEndAtLogoutOneByOneAndWhenDisabled(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		start := func() (string, platform.Session) {
			t.Helper()
			secret, s, err := f.p.Sessions.Start(ctx, f.owner.ID, []string{platform.AMRPassword}, "Firefox", "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			return secret, s
		}
		a, as := start()
		b, _ := start()
		if s, err := f.p.Sessions.Current(ctx, f.owner.ID, a, "192.0.2.1"); err != nil || s.ID != as.ID || s.User.ID != f.owner.ID || s.ACR() != platform.ACRPassword {
			t.Fatalf("a fresh session: %+v %v", s, err)
		}
		if _, err := f.p.Sessions.Current(ctx, f.owner.ID+1, a, ""); err != platform.ErrSessionEnded {
			t.Fatalf("a session under another user's id: %v, want ended", err)
		}
		if _, err := f.p.Sessions.Current(ctx, f.owner.ID, "made-up", ""); err != platform.ErrSessionEnded {
			t.Fatalf("a made-up session: %v, want ended", err)
		}
		if err := f.p.Sessions.End(ctx, platform.Actor{UserID: f.owner.ID}, f.owner.ID, as.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Sessions.Current(ctx, f.owner.ID, a, ""); err != platform.ErrSessionEnded {
			t.Fatalf("an ended session: %v", err)
		}
		if _, err := f.p.Sessions.Current(ctx, f.owner.ID, b, ""); err != nil {
			t.Fatalf("the other session ended with it: %v", err)
		}
		if err := f.p.Users.Logout(ctx, f.owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Sessions.Current(ctx, f.owner.ID, b, ""); err != platform.ErrSessionEnded {
			t.Fatalf("a session from before logout: %v, want ended", err)
		}
		c, _ := start()
		if _, err := f.p.Users.DisableUser(ctx, platform.CLI, f.owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Sessions.Current(ctx, f.owner.ID, c, ""); err != platform.ErrSessionEnded {
			t.Fatalf("a session of a disabled user: %v, want ended", err)
		}
	})
}

func TestSecondFactorRaisesTheSessionsLevel(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		secret, s, err := f.p.Sessions.Start(ctx, f.owner.ID, []string{platform.AMRPassword}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		if err := f.p.Sessions.Raise(ctx, &s, platform.AMROTP); err != nil {
			t.Fatal(err)
		}
		got, err := f.p.Sessions.Current(ctx, f.owner.ID, secret, "")
		if err != nil || got.ACR() != platform.ACRMultiFactor || !slices.Equal(got.AMR, []string{"pwd", "otp", "mfa"}) || !got.AuthTime.Equal(f.clock.Now().Truncate(time.Second)) {
			t.Fatalf("after a code: %+v %v, want mfa now", got, err)
		}
		if got := platform.ACROf(platform.WithFactor(nil, platform.AMRHardware, platform.AMRUser)); got != platform.ACRPhishingResistant {
			t.Fatalf("a passkey alone: %q, want phr", got)
		}
	})
}

// A refresh token replayed while a rotation is between its writes (the old
// token spent, the next one not yet stored) revokes the grant, and the
// rotation then stores nothing: the thief who replayed it keeps no chain,
// and no access token can be issued into the revoked grant either.
func TestRotationRacingAReplayLeavesNothingLive(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "racer")
		family := token.HashOf("the grant's code")
		first, err := f.p.Refreshes.Issue(ctx, platform.Grant{Family: family, AppID: f.app.ID, UserID: u.ID, Scope: scope.Friends})
		if err != nil {
			t.Fatal(err)
		}
		_, second, err := f.p.Refreshes.Rotate(ctx, first, f.app.ID, storage.Holder{})
		if err != nil {
			t.Fatal(err)
		}
		spent, resume := make(chan struct{}), make(chan struct{})
		platform.PauseRotation(f.p.Refreshes, func() { close(spent); <-resume })
		done := make(chan error, 1)
		go func() {
			_, _, err := f.p.Refreshes.Rotate(ctx, second, f.app.ID, storage.Holder{})
			done <- err
		}()
		<-spent // the rotation has spent second and not yet stored the next
		platform.PauseRotation(f.p.Refreshes, nil)
		if _, _, err := f.p.Refreshes.Rotate(ctx, first, f.app.ID, storage.Holder{}); !errors.Is(err, platform.ErrRefreshInvalid) {
			t.Fatalf("the replay of a spent refresh token: %v", err)
		}
		close(resume)
		if err := <-done; err == nil {
			t.Fatal("the rotation finished after its grant was revoked, with a live refresh token")
		}
		if _, _, err := f.p.Tokens.IssueToken(ctx, storage.Token{Kind: token.User, AppID: f.app.ID, UserID: u.ID, Scope: scope.Friends, Flow: storage.FlowRefresh, CodeHash: &family}, time.Hour); !errors.Is(err, platform.ErrGrantRevoked) {
			t.Fatalf("an access token issued into the revoked grant: %v", err)
		}
		if n, err := f.store.RevokeRefreshTokens(ctx, &family, 0, 0, f.clock.Now()); err != nil || n != 0 {
			t.Fatalf("%d refresh tokens of the revoked grant were live (%v)", n, err)
		}
	})
}

// A refresh token bound to a DPoP key or a VK ID device is refused to any
// other holder, and left unspent for its own.
func TestBoundRefreshTokensServeTheirHolder(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "holder")
		bound := storage.Holder{JKT: "the key's thumbprint", DeviceID: "the phone"}
		raw, err := f.p.Refreshes.Issue(ctx, platform.Grant{Family: token.HashOf("bound grant"), AppID: f.app.ID, UserID: u.ID, Scope: scope.Friends, JKT: bound.JKT, DeviceID: bound.DeviceID})
		if err != nil {
			t.Fatal(err)
		}
		for _, by := range []storage.Holder{{JKT: bound.JKT, DeviceID: "a tablet"}, {JKT: "another key", DeviceID: bound.DeviceID}, {}} {
			if _, _, err := f.p.Refreshes.Rotate(ctx, raw, f.app.ID, by); !errors.Is(err, platform.ErrRefreshInvalid) {
				t.Fatalf("rotated by %+v: %v, want refused", by, err)
			}
		}
		if _, next, err := f.p.Refreshes.Rotate(ctx, raw, f.app.ID, bound); err != nil || next == "" {
			t.Fatalf("rotated by its holder after the refusals: %q %v, want the next token (the refusals spent nothing)", next, err)
		}
	})
}
