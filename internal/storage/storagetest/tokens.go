package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

func testTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	v := newUser(t, s, "v")
	a := newApp(t, s, u.ID)
	b := newApp(t, s, u.ID)
	code := hash("the code")
	tok := storage.Token{Hash: hash("t1"), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Friends | scope.Email,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), IP: "192.0.2.1", Flow: storage.FlowCode, CodeHash: &code}
	must(t, s.CreateToken(ctx(), tok))
	wantErr(t, s.CreateToken(ctx(), tok), storage.ErrConflict)
	got, err := s.GetToken(ctx(), tok.Hash)
	must(t, err)
	if got.Hash != tok.Hash || got.Kind != token.User || got.AppID != a.ID || got.UserID != u.ID || got.Scope != tok.Scope ||
		!got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(tok.ExpiresAt) || got.IP != tok.IP || got.Flow != storage.FlowCode ||
		got.CodeHash == nil || *got.CodeHash != code || !got.RevokedAt.IsZero() {
		t.Fatalf("GetToken = %+v, want %+v", got, tok)
	}
	if got.Expired(t0.Add(59*time.Minute)) || !got.Expired(t0.Add(time.Hour)) {
		t.Fatal("Expired is wrong around ExpiresAt")
	}
	_, err = s.GetToken(ctx(), hash("missing"))
	wantErr(t, err, storage.ErrNotFound)

	svc := newToken(t, s, "svc", token.Service, a.ID, 0, 0)
	if svc.Expired(t0.Add(100 * 365 * 24 * time.Hour)) {
		t.Fatal("a token without expiry expired")
	}
	newToken(t, s, "t2", token.User, a.ID, u.ID, 0)
	newToken(t, s, "t3", token.User, a.ID, v.ID, 0)
	newToken(t, s, "t4", token.User, b.ID, u.ID, 0)
	newToken(t, s, "g1", token.Community, a.ID, u.ID, 77)
	wantErr(t, s.CreateToken(ctx(), storage.Token{Hash: hash("orphan"), Kind: token.User, AppID: 999999, IssuedAt: t0, Flow: storage.FlowCode}), storage.ErrNotFound)

	list, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID, Kind: token.User})
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("ListTokens(app a, user u) = %d tokens, want 2", len(list))
	}
	list, err = s.ListTokens(ctx(), storage.TokenFilter{CommunityID: 77})
	must(t, err)
	if len(list) != 1 || list[0].Kind != token.Community || list[0].CommunityID != 77 {
		t.Fatalf("ListTokens(community) = %+v", list)
	}

	// The user revokes app a: only u's tokens of a go, and only once.
	revoked, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID, Kind: token.User}, storage.RevokedByUser, t0.Add(time.Minute))
	must(t, err)
	if len(revoked) != 2 {
		t.Fatalf("RevokeTokens returned %d hashes, want 2", len(revoked))
	}
	got, _ = s.GetToken(ctx(), tok.Hash)
	if !got.RevokedAt.Equal(t0.Add(time.Minute)) || got.RevokeReason != storage.RevokedByUser {
		t.Fatalf("RevokedAt = %v, reason %q", got.RevokedAt, got.RevokeReason)
	}
	again, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID}, storage.RevokedByAdmin, t0.Add(2*time.Minute))
	must(t, err)
	if len(again) != 1 || again[0] != hash("g1") {
		t.Fatalf("second revoke returned %d hashes; already revoked tokens must not be returned again", len(again))
	}
	live, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, LiveOnly: true})
	must(t, err)
	if len(live) != 3 { // the app's own service token, svc, t3
		t.Fatalf("live tokens of app a = %d, want 3", len(live))
	}
	secret := hash("a client secret")
	cc := storage.Token{Hash: hash("cc"), Kind: token.Service, AppID: b.ID, IssuedAt: t0, Flow: storage.FlowClientCredentials, SecretHash: &secret}
	must(t, s.CreateToken(ctx(), cc))
	if got, _ := s.GetToken(ctx(), cc.Hash); got.SecretHash == nil || *got.SecretHash != secret {
		t.Fatalf("SecretHash not stored: %+v", got)
	}
	bySecret, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: b.ID, SecretHash: &secret}, storage.RevokedSecret, t0)
	must(t, err)
	if len(bySecret) != 1 || bySecret[0] != cc.Hash {
		t.Fatalf("revoking by secret revoked %d tokens, want the one minted with it", len(bySecret))
	}
	byCode, err := s.RevokeTokens(ctx(), storage.TokenFilter{CodeHash: &code}, storage.RevokedCodeReplay, t0)
	must(t, err)
	if len(byCode) != 0 {
		t.Fatal("revoking by code returned an already revoked token")
	}
	if g, _ := s.GetToken(ctx(), hash("t4")); !g.RevokedAt.IsZero() {
		t.Fatal("another app's token was revoked")
	}
}

func testDerivedTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "deriver")
	a := newApp(t, s, u.ID)
	tree := map[string]string{"root": "", "child": "root", "grandchild": "child", "other child": "root", "stranger": ""}
	for _, name := range []string{"root", "stranger", "child", "other child", "grandchild"} {
		tok := storage.Token{Hash: hash(name), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowExchange}
		if p := tree[name]; p != "" {
			parent := hash(p)
			tok.Parent = &parent
		}
		must(t, s.CreateToken(ctx(), tok))
	}
	derived := func(name string) []token.Hash {
		h := hash(name)
		ts, err := s.ListTokens(ctx(), storage.TokenFilter{DerivedFrom: &h})
		must(t, err)
		var out []token.Hash
		for _, tok := range ts {
			out = append(out, tok.Hash)
		}
		slices.SortFunc(out, func(a, b token.Hash) int { return slices.Compare(a[:], b[:]) })
		return out
	}
	sorted := func(names ...string) []token.Hash {
		var out []token.Hash
		for _, n := range names {
			out = append(out, hash(n))
		}
		slices.SortFunc(out, func(a, b token.Hash) int { return slices.Compare(a[:], b[:]) })
		return out
	}
	if got := derived("root"); !slices.Equal(got, sorted("child", "grandchild", "other child")) {
		t.Fatalf("derived from root: %x", got)
	}
	if got := derived("grandchild"); len(got) != 0 {
		t.Fatalf("derived from a leaf: %x", got)
	}
	child := hash("child")
	revoked, err := s.RevokeTokens(ctx(), storage.TokenFilter{DerivedFrom: &child}, storage.RevokedByApp, t0)
	must(t, err)
	if !slices.Equal(revoked, []token.Hash{hash("grandchild")}) {
		t.Fatalf("revoking what came from child revoked %x", revoked)
	}
}

func testAppLessTokenAndTouch(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	tok := storage.Token{Hash: hash("community, created here"), Kind: token.Community, UserID: u.ID, CommunityID: 5, Scope: scope.CommunityManage, IssuedAt: t0, Flow: storage.FlowConsole}
	must(t, s.CreateToken(ctx(), tok))
	got, err := s.GetToken(ctx(), tok.Hash)
	must(t, err)
	if got.AppID != 0 || got.Flow != storage.FlowConsole || !got.LastUsedAt.IsZero() {
		t.Fatalf("app-less token = %+v", got)
	}
	must(t, s.TouchTokens(ctx(), map[token.Hash]time.Time{tok.Hash: t0.Add(time.Hour), hash("unknown"): t0}))
	must(t, s.TouchTokens(ctx(), map[token.Hash]time.Time{tok.Hash: t0.Add(time.Minute)})) // older: ignored
	got, _ = s.GetToken(ctx(), tok.Hash)
	if !got.LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, t0.Add(time.Hour))
	}
	list, err := s.ListTokens(ctx(), storage.TokenFilter{CommunityID: 5, LiveOnly: true})
	must(t, err)
	if len(list) != 1 || list[0].AppID != 0 {
		t.Fatalf("ListTokens(community) = %+v", list)
	}
}

func testRevokeByUser(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	other := newUser(t, s, "other")
	a, b := newApp(t, s, u.ID), newApp(t, s, u.ID)
	mine := []storage.Token{
		{Hash: hash("in a"), Kind: token.User, AppID: a.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowCode},
		{Hash: hash("in b"), Kind: token.User, AppID: b.ID, UserID: u.ID, IssuedAt: t0, Flow: storage.FlowImplicit},
		{Hash: hash("no app"), Kind: token.Community, UserID: u.ID, CommunityID: 9, IssuedAt: t0, Flow: storage.FlowConsole},
	}
	theirs := storage.Token{Hash: hash("theirs"), Kind: token.User, AppID: a.ID, UserID: other.ID, IssuedAt: t0, Flow: storage.FlowCode}
	for _, tok := range append(mine, theirs) {
		must(t, s.CreateToken(ctx(), tok))
	}
	revoked, err := s.RevokeTokens(ctx(), storage.TokenFilter{UserID: u.ID}, storage.RevokedByAdmin, t0)
	must(t, err)
	if len(revoked) != len(mine) {
		t.Fatalf("revoking by user revoked %d tokens, want the user's %d in every app and none", len(revoked), len(mine))
	}
	if got, _ := s.GetToken(ctx(), theirs.Hash); !got.RevokedAt.IsZero() {
		t.Fatal("another user's token was revoked")
	}
	for i, app := range []int64{a.ID, b.ID} {
		must(t, s.CreateRefreshToken(ctx(), storage.RefreshToken{Hash: hash(fmt.Sprint("refresh ", i)), Family: hash(fmt.Sprint("family ", i)), AppID: app, UserID: u.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	must(t, s.CreateRefreshToken(ctx(), storage.RefreshToken{Hash: hash("their refresh"), Family: hash("their family"), AppID: a.ID, UserID: other.ID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	if n, err := s.RevokeRefreshTokens(ctx(), nil, 0, u.ID, t0); err != nil || n != 2 {
		t.Fatalf("revoking a user's refresh tokens in every app: %d, %v; want 2", n, err)
	}
}

func testCreateTokens(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	var ts []storage.Token
	for i := range 1203 { // more than one statement's worth, and a remainder
		code := hash(fmt.Sprint("code-", i%7))
		ts = append(ts, storage.Token{Hash: hash(fmt.Sprint("bulk-", i)), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Mask(i),
			IssuedAt: t0, ExpiresAt: t0.Add(time.Duration(i) * time.Second), Flow: storage.FlowCode, CodeHash: &code, IP: "192.0.2.1"})
	}
	must(t, s.CreateTokens(ctx(), ts))
	for _, i := range []int{0, 499, 500, 1202} {
		got, err := s.GetToken(ctx(), ts[i].Hash)
		must(t, err)
		if got.Scope != ts[i].Scope || !got.ExpiresAt.Equal(ts[i].ExpiresAt) || *got.CodeHash != *ts[i].CodeHash || got.IP != "192.0.2.1" || got.AppID != a.ID {
			t.Fatalf("bulk token %d read back as %+v, want %+v", i, got, ts[i])
		}
	}
	listed, err := s.ListTokens(ctx(), storage.TokenFilter{AppID: a.ID, UserID: u.ID})
	must(t, err)
	if len(listed) != len(ts) {
		t.Fatalf("%d tokens listed after a bulk create of %d", len(listed), len(ts))
	}
	// One taken hash in the last statement: nothing of the call is kept.
	more := []storage.Token{{Hash: hash("fresh-1"), Kind: token.User, AppID: a.ID, IssuedAt: t0, Flow: storage.FlowCode}}
	for i := range 600 {
		more = append(more, storage.Token{Hash: hash(fmt.Sprint("fresh-more-", i)), Kind: token.User, AppID: a.ID, IssuedAt: t0, Flow: storage.FlowCode})
	}
	more = append(more, ts[5])
	wantErr(t, s.CreateTokens(ctx(), more), storage.ErrConflict)
	if _, err := s.GetToken(ctx(), hash("fresh-1")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a bulk create that failed kept its first token: %v", err)
	}
}

func testEmptyFilter(t *testing.T, s storage.Storage) {
	if _, err := s.RevokeTokens(ctx(), storage.TokenFilter{}, storage.RevokedByApp, t0); err == nil {
		t.Fatal("RevokeTokens with an empty filter must fail, not revoke everything")
	}
	if _, err := s.ListTokens(ctx(), storage.TokenFilter{LiveOnly: true}); err == nil {
		t.Fatal("ListTokens with an empty filter must fail")
	}
}

func testRevocationLog(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	start, err := s.LastRevocation(ctx())
	must(t, err)
	t1 := newToken(t, s, "t1", token.User, a.ID, u.ID, 0)
	t2 := newToken(t, s, "t2", token.User, a.ID, u.ID, 0)
	_, err = s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, Kind: token.User}, storage.RevokedByUser, t0)
	must(t, err)
	if _, err := s.RevokeTokens(ctx(), storage.TokenFilter{AppID: a.ID, Kind: token.User}, storage.RevokedByUser, t0); err != nil {
		t.Fatal(err) // nothing live: nothing logged
	}
	svc := storage.Token{Hash: hash("next service"), Kind: token.Service, AppID: a.ID, IssuedAt: t0, Flow: storage.FlowServiceToken}
	replaced, err := s.ReplaceServiceToken(ctx(), svc, []byte("x"))
	must(t, err)
	deleted, err := s.DeleteApp(ctx(), a.ID)
	must(t, err)
	want := []token.Hash{t1.Hash, t2.Hash}
	slices.SortFunc(want, func(x, y token.Hash) int { return slices.Compare(x[:], y[:]) })
	want = append(append(want, replaced...), deleted...)
	var got []token.Hash
	seq := start
	for {
		page, next, err := s.RevocationsAfter(ctx(), seq, 2)
		must(t, err)
		if len(page) == 0 {
			if next != seq {
				t.Fatalf("an empty page moved the position from %d to %d", seq, next)
			}
			break
		}
		got, seq = append(got, page...), next
	}
	first2 := got[:min(2, len(got))]
	slices.SortFunc(first2, func(x, y token.Hash) int { return slices.Compare(x[:], y[:]) })
	if !slices.Equal(got, want) {
		t.Fatalf("the log holds %d hashes %x, want %d: the two revoked, the replaced service token, then the deleted app's", len(got), got, len(want))
	}
	last, err := s.LastRevocation(ctx())
	must(t, err)
	if last != seq {
		t.Fatalf("LastRevocation = %d, want %d", last, seq)
	}
	n, err := s.PruneRevocations(ctx(), t0.Add(time.Second))
	must(t, err)
	if n < 3 {
		t.Fatalf("pruned %d entries, want at least the three made at t0", n)
	}
}

func testReusableToken(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "u")
	a := newApp(t, s, u.ID)
	_, _, err := s.ReusableToken(ctx(), a.ID, u.ID, storage.FlowIFrame, scope.Friends, t0)
	wantErr(t, err, storage.ErrNotFound)
	tok := storage.Token{Hash: hash("launch"), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Friends,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), Flow: storage.FlowIFrame, Sealed: []byte("sealed launch")}
	must(t, s.CreateToken(ctx(), tok))
	// Not kept sealed: never handed out again.
	must(t, s.CreateToken(ctx(), storage.Token{Hash: hash("plain"), Kind: token.User, AppID: a.ID, UserID: u.ID, Scope: scope.Friends,
		IssuedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour), Flow: storage.FlowIFrame}))
	got, sealed, err := s.ReusableToken(ctx(), a.ID, u.ID, storage.FlowIFrame, scope.Friends, t0.Add(30*time.Minute))
	if err != nil || got.Hash != tok.Hash || string(sealed) != "sealed launch" {
		t.Fatalf("ReusableToken = %x %q %v, want the sealed launch token", got.Hash, sealed, err)
	}
	if again, err := s.GetToken(ctx(), tok.Hash); err != nil || again.Sealed != nil {
		t.Fatalf("GetToken carries the sealed token (%q, %v): only ReusableToken reads it", again.Sealed, err)
	}
	for name, q := range map[string]struct {
		m     scope.Mask
		until time.Time
		user  int64
	}{
		"other scopes":              {scope.Friends | scope.Photos, t0, u.ID},
		"expires before validUntil": {scope.Friends, t0.Add(2 * time.Hour), u.ID},
		"another user":              {scope.Friends, t0, u.ID + 1},
	} {
		if _, _, err := s.ReusableToken(ctx(), a.ID, q.user, storage.FlowIFrame, q.m, q.until); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
	_, err = s.RevokeTokens(ctx(), storage.TokenFilter{Hash: &tok.Hash}, storage.RevokedByUser, t0)
	must(t, err)
	_, _, err = s.ReusableToken(ctx(), a.ID, u.ID, storage.FlowIFrame, scope.Friends, t0)
	wantErr(t, err, storage.ErrNotFound)
}

func testProofs(t *testing.T, s storage.Storage) {
	h := hash("key thumbprint + jti")
	must(t, s.UseProof(ctx(), h, t0.Add(time.Minute)))
	wantErr(t, s.UseProof(ctx(), h, t0.Add(time.Minute)), storage.ErrConflict)
	must(t, s.UseProof(ctx(), hash("another jti"), t0.Add(time.Minute)))
}
