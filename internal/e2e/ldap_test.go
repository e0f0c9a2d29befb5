package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"latchkey/internal/testenv"
)

const directoryPeople = `dn: uid=dana,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dana
cn: Dana Scully
givenName: Dana
sn: Scully
mail: dana@example.org
userPassword: dana-password

dn: uid=fox,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: fox
cn: Fox Mulder
givenName: Fox
sn: Mulder
userPassword: fox-password
`

// A real OpenLDAP server (slapd, started here on a free loopback port):
// the directory's password signs in (a user made at the first sign-in,
// found at the next), a wrong one is refused and throttled as local ones
// are, filter injection signs nobody in, and a directory that is down
// gives a clear page at once.
func TestLDAPDirectory(t *testing.T) {
	dir := testenv.Slapd(t, directoryPeople)
	e := newEnv(t)
	ctx := context.Background()
	runCLI(t, "sqlite:"+e.DB, "upstream", "add-ldap", "--name", "dir", "--url", dir.URL, "--bind-dn", dir.AdminDN,
		"--bind-password", dir.AdminPassword, "--base-dn", "ou=people,"+dir.Suffix, "--filter", "(&(objectClass=inetOrgPerson)(uid={login}))")
	login := func(name, password string) *browser {
		t.Helper()
		b := e.browser()
		b.get(e.URL + "/login?next=%2Fsettings%2Fprofile")
		b.login(name, password)
		return b
	}
	signedIn := func(b *browser) bool {
		return strings.HasSuffix(b.pageURL, "/settings/profile") && b.status == http.StatusOK
	}

	b := login("dana", "dana-password")
	if !signedIn(b) || !strings.Contains(b.page, "Dana") {
		t.Fatalf("the directory's password: %s %d", b.pageURL, b.status)
	}
	users, _ := e.Store.ListUsers(ctx, 0, 100)
	if len(users) != 1 || users[0].Login != "dana" || users[0].FirstName != "Dana" || users[0].LastName != "Scully" || users[0].PasswordHash != "" {
		t.Fatalf("the user made for dana: %+v", users)
	}
	if b := login("dana", "dana-password"); !signedIn(b) {
		t.Fatal("the second sign-in")
	}
	if again, _ := e.Store.ListUsers(ctx, 0, 100); len(again) != 1 {
		t.Fatalf("the second sign-in made another user: %+v", again)
	}
	// A person from a directory adds an authenticator app like anyone:
	// their next sign-in asks for its code after the directory's password.
	secret, _ := e.enrolApp(b)
	e.Clock.Advance(30 * time.Second)
	if b := login("dana", "dana-password"); !strings.Contains(b.pageURL, "/login/factor") {
		t.Fatalf("dana with an authenticator app: %s", b.pageURL)
	} else if b.submit(b.formWith("otp"), map[string]string{"otp": e.codeOf(secret)}); !signedIn(b) {
		t.Fatalf("dana's code: %s %d", b.pageURL, b.status)
	}

	// Filter injection finds no one, and an empty password is never an
	// unauthenticated bind.
	for _, name := range []string{"*", "*)(uid=*", "dana)(|(uid=*", `\00`, "dana\x00", "*)(objectClass=*"} {
		if b := login(name, "dana-password"); signedIn(b) || b.status != http.StatusUnauthorized {
			t.Fatalf("login %q: %s %d", name, b.pageURL, b.status)
		}
	}
	if b := login("fox", ""); signedIn(b) {
		t.Fatal("an empty password signed fox in")
	}

	// Wrong passwords count as local ones do (the empty one above was the
	// first): the sixth attempt is refused whatever the password.
	for i := range 4 {
		if b := login("fox", "wrong"); b.status != http.StatusUnauthorized || !strings.Contains(b.page, "Wrong login or password") {
			t.Fatalf("wrong password %d: %d", i+1, b.status)
		}
	}
	if b := login("fox", "fox-password"); signedIn(b) || b.status != http.StatusTooManyRequests {
		t.Fatalf("the sixth attempt: %d", b.status)
	}

	// A directory that is down: a clear page (connecting and every answer
	// are bounded by a timeout), and nobody signed in.
	dir.Stop()
	b = login("dana", "dana-password")
	if b.status != http.StatusServiceUnavailable || !strings.Contains(b.page, "directory cannot be reached") {
		t.Fatalf("the directory down: %d\n%s", b.status, b.page)
	}
}
