package platform_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/dpop"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
	"latchkey/internal/tokencache"
)

// What a grant hands out, by dialect, flow and scopes: the lifetime, the
// refresh token, the id_token and the e-mail are decided in one place.
func TestIssueByDialectAndFlow(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u, err := f.p.Users.CreateUser(ctx, platform.NewUser{Login: "issued", Password: "issued-password", FirstName: "Ivan", LastName: "Petrov", Email: "ivan@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		openid := scope.OpenID | scope.Email | scope.Profile
		cases := []struct {
			name           string
			dialect        platform.Dialect
			flow           storage.Flow
			scope          scope.Mask
			ttl            time.Duration
			refresh, idTok bool
			email          string
		}{
			{"a code's token expires with a refresh token", platform.Legacy, storage.FlowCode, scope.Friends, 12 * time.Hour, true, false, ""},
			{"offline never expires and needs no refresh token", platform.Legacy, storage.FlowCode, scope.Friends | scope.Offline, 0, false, false, ""},
			{"openid adds an id_token, email the e-mail", platform.Legacy, storage.FlowDevice, openid, 12 * time.Hour, true, true, "ivan@example.com"},
			{"the implicit flow: its lifetime, no refresh token, no id_token", platform.Legacy, storage.FlowImplicit, openid, 24 * time.Hour, false, false, "ivan@example.com"},
			{"VK ID: an hour, a refresh token and an id_token, even offline", platform.VKID, storage.FlowCode, scope.Friends | scope.Offline, time.Hour, true, true, ""},
			{"VK ID never puts the e-mail in the answer", platform.VKID, storage.FlowCode, scope.Email, time.Hour, true, true, ""},
		}
		for _, c := range cases {
			family := token.HashOf(c.name)
			if c.flow == storage.FlowImplicit {
				family = token.Hash{}
			}
			got, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: family, AppID: f.app.ID, UserID: u.ID, Scope: c.scope, Nonce: "n-" + c.name},
				Dialect: c.dialect, Flow: c.flow, IP: "198.51.100.1"})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got.TTL != c.ttl || (got.Refresh != "") != c.refresh || (got.IDToken != "") != c.idTok || got.Email != c.email {
				t.Errorf("%s: ttl %v refresh %t id_token %t email %q; want %v %t %t %q", c.name, got.TTL, got.Refresh != "", got.IDToken != "", got.Email, c.ttl, c.refresh, c.idTok, c.email)
			}
			stored, err := f.p.Tokens.CheckToken(ctx, got.Access)
			if err != nil {
				t.Fatalf("%s: the access token: %v", c.name, err)
			}
			if wantExpiry := f.clock.Now().UTC().Truncate(time.Second).Add(c.ttl); c.ttl > 0 && !stored.ExpiresAt.Equal(wantExpiry) || c.ttl == 0 && !stored.ExpiresAt.IsZero() {
				t.Errorf("%s: stored expiry %v, want %v after issue", c.name, stored.ExpiresAt, c.ttl)
			}
			if (stored.CodeHash != nil) != (family != token.Hash{}) {
				t.Errorf("%s: the token's grant is %v, want the family %v", c.name, stored.CodeHash, family)
			}
			if got.IDToken != "" {
				claims, err := f.p.Issuer.IDTokenOf(ctx, got.IDToken, f.app.ID)
				if err != nil {
					t.Fatalf("%s: the id_token: %v", c.name, err)
				}
				if claims.Nonce != "n-"+c.name || claims.Issuer != "https://lk.example" || claims.Subject != strconv.FormatInt(u.ID, 10) {
					t.Errorf("%s: id_token claims %+v", c.name, claims)
				}
				if (claims.Email != "") != c.scope.Has(scope.Email) || (claims.Name != "") != c.scope.Has(scope.Profile) {
					t.Errorf("%s: the id_token discloses %+v for scopes %v", c.name, claims.UserClaims, c.scope.Names(scope.User))
				}
				if _, err := f.p.Issuer.IDTokenOf(ctx, got.IDToken, f.app.ID+1); !errors.Is(err, platform.ErrBadIDToken) {
					t.Errorf("%s: the id_token accepted for another app: %v", c.name, err)
				}
			}
		}
	})
}

// A refresh hands out the rotated refresh token, never an id_token nonce,
// and may narrow the scopes, never widen them; a spent refresh token
// presented again revokes the grant, unless within the grace period.
func TestRefreshNarrowsAndReuseRevokes(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "refresher")
		first, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: token.HashOf("refresh grant"), AppID: f.app.ID, UserID: u.ID,
			Scope: scope.Friends | scope.Photos | scope.OpenID, Nonce: "first"}, Flow: storage.FlowCode})
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(raw string, narrow scope.Mask) (platform.Issued, error) {
			g, next, err := f.p.Refreshes.Rotate(ctx, raw, f.app.ID, storage.Holder{})
			if err != nil {
				return platform.Issued{}, err
			}
			return f.p.Issuer.Issue(ctx, platform.Issuance{Grant: g, Flow: storage.FlowRefresh, Refresh: next, Narrow: narrow})
		}
		f.clock.Advance(time.Minute)
		second, err := refresh(first.Refresh, scope.Friends|scope.OpenID)
		if err != nil {
			t.Fatal(err)
		}
		if second.Scope != scope.Friends|scope.OpenID || second.Refresh == "" || second.Refresh == first.Refresh || second.TTL != 12*time.Hour {
			t.Fatalf("the refresh: scope %v, refresh %q, ttl %v", second.Scope.Names(scope.User), second.Refresh, second.TTL)
		}
		if c, err := f.p.Issuer.IDTokenOf(ctx, second.IDToken, f.app.ID); err != nil || c.Nonce != "" {
			t.Fatalf("a refreshed id_token: %+v %v, want one without the nonce", c, err)
		}
		if _, err := refresh(second.Refresh, scope.Friends|scope.Wall); !errors.Is(err, platform.ErrWiderScope) {
			t.Fatalf("a wider scope on refresh: %v", err)
		}
		// The first refresh token again: a copy. The grant dies.
		f.clock.Advance(time.Minute)
		if _, err := refresh(first.Refresh, 0); !errors.Is(err, platform.ErrRefreshInvalid) {
			t.Fatalf("a reused refresh token: %v", err)
		}
		for _, raw := range []string{first.Access, second.Access} {
			if _, err := f.p.Tokens.CheckToken(ctx, raw); !errors.Is(err, platform.ErrTokenRevoked) {
				t.Fatalf("an access token of the grant after the reuse: %v, want revoked", err)
			}
		}

		// With a grace period, a retry within it is no alarm; after it, it is.
		f.p.Refreshes.Grace = 10 * time.Second
		g, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: token.HashOf("graced grant"), AppID: f.app.ID, UserID: u.ID, Scope: scope.Friends}, Flow: storage.FlowCode})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := refresh(g.Refresh, 0); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(5 * time.Second)
		retried, err := refresh(g.Refresh, 0)
		if err != nil {
			t.Fatalf("a retry within the grace period: %v", err)
		}
		f.clock.Advance(10 * time.Second)
		if _, err := refresh(g.Refresh, 0); !errors.Is(err, platform.ErrRefreshInvalid) {
			t.Fatalf("a reuse after the grace period: %v", err)
		}
		if _, err := f.p.Tokens.CheckToken(ctx, retried.Access); !errors.Is(err, platform.ErrTokenRevoked) {
			t.Fatalf("the retry's token after the reuse: %v, want revoked", err)
		}
	})
}

// Token exchange narrows, never widens, never outlives its subject, only
// takes a live user token of the app, and dies with the subject.
func TestExchangeNeverBroader(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "exchanger")
		subject, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: token.HashOf("exchanged grant"), AppID: f.app.ID, UserID: u.ID,
			Scope: scope.Friends | scope.Photos}, Flow: storage.FlowCode})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.p.Issuer.Exchange(ctx, exchange(f.app.ID, subject.Access, "friends"))
		if err != nil || got.Scope != scope.Friends || got.TTL != 12*time.Hour {
			t.Fatalf("an exchange for fewer scopes: %+v %v", got, err)
		}
		if all, err := f.p.Issuer.Exchange(ctx, exchange(f.app.ID, subject.Access, "")); err != nil || all.Scope != subject.Scope {
			t.Fatalf("an exchange without scope: %v %v, want the subject's scopes", all.Scope.Names(scope.User), err)
		}
		if _, err := f.p.Issuer.Exchange(ctx, exchange(f.app.ID, subject.Access, "friends,wall")); !errors.Is(err, platform.ErrWiderScope) {
			t.Fatalf("an exchange for more scopes: %v", err)
		}
		if _, err := f.p.Issuer.Exchange(ctx, exchange(f.app.ID+1, subject.Access, "")); !errors.Is(err, platform.ErrSubjectInvalid) {
			t.Fatalf("another app's exchange: %v", err)
		}
		if _, err := f.p.Issuer.Exchange(ctx, exchange(f.app.ID, f.app.ServiceToken, "")); !errors.Is(err, platform.ErrSubjectInvalid) {
			t.Fatalf("a service token exchanged: %v", err)
		}
		f.clock.Advance(11*time.Hour + 30*time.Minute)
		if late, err := f.p.Issuer.Exchange(ctx, exchange(f.app.ID, subject.Access, "")); err != nil || late.TTL != 30*time.Minute {
			t.Fatalf("an exchange half an hour before the subject expires: ttl %v %v, want 30m", late.TTL, err)
		}
		f.clock.Advance(30*time.Minute - 500*time.Millisecond)
		if _, err := f.p.Issuer.Exchange(ctx, exchange(f.app.ID, subject.Access, "")); !errors.Is(err, platform.ErrSubjectExpiring) {
			t.Fatalf("an exchange with half a second left: %v", err)
		}
		if err := f.p.Tokens.RevokeToken(ctx, platform.CLI, f.app.ID, subject.Access); err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Tokens.CheckToken(ctx, got.Access); !errors.Is(err, platform.ErrTokenRevoked) {
			t.Fatalf("the exchanged token after its subject's revocation: %v", err)
		}
	})
}

// A DPoP-bound token is presented only as DPoP with a fresh proof of its
// key, bound to it by ath, once; an unbound one only as a bearer token.
func TestDPoPBinding(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "binder")
		key, thief := newProofSigner(t), newProofSigner(t)
		bound, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: token.HashOf("bound"), AppID: f.app.ID, UserID: u.ID,
			Scope: scope.Friends, JKT: key.JKT()}, Flow: storage.FlowCode})
		if err != nil {
			t.Fatal(err)
		}
		unbound, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: token.HashOf("unbound"), AppID: f.app.ID, UserID: u.ID,
			Scope: scope.Friends}, Flow: storage.FlowCode})
		if err != nil {
			t.Fatal(err)
		}
		const target = "https://lk.example/method/users.get"
		proof := func(s *dpop.Signer, raw, jti string) string {
			p, err := s.Proof("POST", target, raw, jti, f.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		present := func(raw string, dpopScheme bool, proof string) error {
			tok, err := f.p.Tokens.CheckToken(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			return f.p.Tokens.CheckBinding(ctx, tok, dpopScheme, proof, "POST", target, raw)
		}
		var be *platform.ErrBinding
		for _, c := range []struct {
			name       string
			raw        string
			dpopScheme bool
			proof      string
			ok         bool
		}{
			{"a bound token as a bearer token", bound.Access, false, "", false},
			{"a bound token without a proof", bound.Access, true, "", false},
			{"a bound token with the thief's proof", bound.Access, true, proof(thief, bound.Access, "thief"), false},
			{"a bound token with a proof for another token", bound.Access, true, proof(key, unbound.Access, "other"), false},
			{"a bound token with its key's proof", bound.Access, true, proof(key, bound.Access, "one"), true},
			{"the same proof again", bound.Access, true, proof(key, bound.Access, "one"), false},
			{"an unbound token as DPoP", unbound.Access, true, proof(key, unbound.Access, "two"), false},
			{"an unbound token as a bearer token", unbound.Access, false, "", true},
		} {
			err := present(c.raw, c.dpopScheme, c.proof)
			if c.ok && err != nil || !c.ok && !errors.As(err, &be) {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	})
}

func newProofSigner(t *testing.T) *dpop.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return dpop.NewSigner(k, jose.ES256)
}

// The device flow ends in the same consent as /authorize: an approval
// records it (so a later request for those scopes skips the dialog), a
// refusal records nothing, and the device then gets its tokens from the
// one issuer.
func TestDeviceApprovalRecordsConsent(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "tv-owner")
		covered := func(want scope.Mask) bool {
			d, err := f.p.Consents.Check(ctx, u.ID, f.app.ID, want, false)
			if err != nil {
				t.Fatal(err)
			}
			return d.Covered
		}
		_, denied, err := f.p.Devices.Start(ctx, f.app.ID, scope.Wall, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Devices.Decide(ctx, platform.Actor{UserID: u.ID}, denied, false); err != nil {
			t.Fatal(err)
		}
		if covered(scope.Wall) {
			t.Fatal("a refused device request recorded consent")
		}
		device, user, err := f.p.Devices.Start(ctx, f.app.ID, scope.Friends|scope.Photos, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Devices.Decide(ctx, platform.Actor{UserID: u.ID}, user, true); err != nil {
			t.Fatal(err)
		}
		if !covered(scope.Friends) || !covered(scope.Friends|scope.Photos) || covered(scope.Friends|scope.Wall) {
			t.Fatal("an approved device request did not record exactly its scopes as consent")
		}
		f.clock.Advance(platform.DeviceInterval)
		dc, err := f.p.Devices.Poll(ctx, device, f.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: dc.Hash, AppID: dc.AppID, UserID: dc.UserID, Scope: dc.Scope}, Flow: storage.FlowDevice})
		if err != nil || got.UserID != u.ID || got.Refresh == "" {
			t.Fatalf("the approved device's tokens: %+v %v", got, err)
		}
	})
}

func exchange(appID int64, subject, scopes string) platform.ExchangeRequest {
	return platform.ExchangeRequest{Actor: platform.CLI, AppID: appID, Subject: subject, Scope: scopes}
}

// A proof with this node's nonce is remembered by this node alone (no
// storage write): a second use is refused here, and every other node
// refuses the nonce itself, as it refuses an old or a made-up one; a proof
// without a nonce is remembered in storage, across nodes, as before.
func TestDPoPNonces(t *testing.T) {
	onBoth(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		u := f.user(t, "noncer")
		key := newProofSigner(t)
		bound, err := f.p.Issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{Family: token.HashOf("nonced"), AppID: f.app.ID, UserID: u.ID,
			Scope: scope.Friends, JKT: key.JKT()}, Flow: storage.FlowCode})
		if err != nil {
			t.Fatal(err)
		}
		// A second node: the same storage and secret, a process of its own.
		public, _ := url.Parse("https://lk.example")
		other := platform.New(platform.Options{Store: f.store, Keys: mustKeys(t, "rules-test-secret-0123456789abcdefghijkl"), Now: f.clock.Now,
			Cache: tokencache.New(1000), PublicURL: public})
		const target = "https://lk.example/method/users.get"
		present := func(p *platform.Platform, jti, nonce string) error {
			t.Helper()
			proof, err := key.ProofWithNonce("POST", target, bound.Access, jti, nonce, f.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			tok, err := p.Tokens.CheckToken(ctx, bound.Access)
			if err != nil {
				t.Fatal(err)
			}
			return p.Tokens.CheckBinding(ctx, tok, true, proof, "POST", target, bound.Access)
		}
		useNonce := func(err error) bool {
			var be *platform.ErrBinding
			return errors.As(err, &be) && be.UseNonce
		}
		replay := func(err error) bool {
			var be *platform.ErrBinding
			return errors.As(err, &be) && !be.UseNonce && strings.Contains(be.Reason, "jti was used before")
		}
		n := f.p.Tokens.DPoPNonce()
		if n == "" || n == other.Tokens.DPoPNonce() {
			t.Fatalf("nonces %q and %q: want one per node", n, other.Tokens.DPoPNonce())
		}
		if err := present(f.p, "a", n); err != nil {
			t.Fatalf("a proof with the node's nonce: %v", err)
		}
		if err := present(f.p, "a", n); !replay(err) {
			t.Fatalf("the same proof again on its node: %v", err)
		}
		if err := present(other, "a", n); !useNonce(err) {
			t.Fatalf("the same proof on another node: %v", err)
		}
		if err := present(other, "b", n); !useNonce(err) {
			t.Fatalf("a new proof with another node's nonce: %v", err)
		}
		for _, bad := range []string{"made-up", n[:len(n)-2] + "AA", strings.Repeat("A", len(n))} {
			if err := present(f.p, "c-"+bad, bad); !useNonce(err) {
				t.Fatalf("nonce %q: %v", bad, err)
			}
		}
		// The nonce holds for its step and the next; then it is refused,
		// and the node's new one works.
		f.clock.Advance(30 * time.Second)
		if err := present(f.p, "d", n); err != nil {
			t.Fatalf("a proof with the nonce of the step before: %v", err)
		}
		if err := present(f.p, "a", n); !replay(err) {
			t.Fatalf("the first proof again, a step later: %v", err)
		}
		f.clock.Advance(30 * time.Second)
		if err := present(f.p, "e", n); !useNonce(err) {
			t.Fatalf("a proof with a nonce two steps old: %v", err)
		}
		if err := present(f.p, "e", f.p.Tokens.DPoPNonce()); err != nil {
			t.Fatalf("a proof with the new nonce: %v", err)
		}
		// Without a nonce, storage remembers the proof for every node.
		if err := present(f.p, "f", ""); err != nil {
			t.Fatalf("a proof without a nonce: %v", err)
		}
		if err := present(other, "f", ""); !replay(err) {
			t.Fatalf("a proof without a nonce, again on another node: %v", err)
		}
	})
}
