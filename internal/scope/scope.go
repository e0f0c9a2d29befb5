// Package scope holds the permission vocabulary of vk-wire.md §3: the user and
// community scope bits, and the parser for the `scope` parameter of /authorize.
//
// It imports only the token kinds (whose vocabulary a mask is in), and
// everything may import it.
package scope

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"latchkey/internal/token"
)

// Mask is a set of permissions as VK encodes them: one bit per scope.
type Mask int64

// Has reports whether every bit of want is in m.
func (m Mask) Has(want Mask) bool { return m&want == want }

// Audience says which vocabulary a mask belongs to: that of the kind of
// token it is for. User tokens and community tokens share bit positions but
// not meanings.
type Audience = token.Kind

// The two audiences with scopes of their own.
const (
	User      = token.User
	Community = token.Community
)

// Scope is one named permission.
type Scope struct {
	Name string
	Bit  Mask
	// Description is the plain-words text the consent dialog shows.
	Description string
}

// User scope bits (vk-wire.md §3).
const (
	Notify        Mask = 1
	Friends       Mask = 2
	Photos        Mask = 4
	Audio         Mask = 8
	Video         Mask = 16
	Stories       Mask = 64
	Pages         Mask = 128
	Menu          Mask = 256
	Status        Mask = 1024
	Notes         Mask = 2048
	Messages      Mask = 4096
	Wall          Mask = 8192
	Ads           Mask = 32768
	Offline       Mask = 65536
	Docs          Mask = 131072
	Groups        Mask = 262144
	Notifications Mask = 524288
	Stats         Mask = 1048576
	Email         Mask = 4194304
	Market        Mask = 134217728
	Phone         Mask = 268435456
	// OpenID Connect's scopes (no VK bits): far above VK's, so that no VK
	// mask ever carries them by accident.
	OpenID  Mask = 1 << 40
	Profile Mask = 1 << 41
)

// Community scope bits (vk-wire.md §3).
const (
	CommunityStories   Mask = 1
	CommunityPhotos    Mask = 4
	CommunityAppWidget Mask = 64
	CommunityMessages  Mask = 4096
	CommunityDocs      Mask = 131072
	CommunityManage    Mask = 262144
)

var userScopes = []Scope{
	{"notify", Notify, "Send you notifications"},
	{"friends", Friends, "Access your friends"},
	{"photos", Photos, "Access your photos"},
	{"audio", Audio, "Access your audio"},
	{"video", Video, "Access your videos"},
	{"stories", Stories, "Access your stories"},
	{"pages", Pages, "Access your wiki pages"},
	{"menu", Menu, "Add a link to the app in your menu"},
	{"status", Status, "Access your status"},
	{"notes", Notes, "Access your notes"},
	{"messages", Messages, "Access your messages"},
	{"wall", Wall, "Access your wall"},
	{"ads", Ads, "Manage your ads"},
	{"offline", Offline, "Access at any time, even when you are offline"},
	{"docs", Docs, "Access your documents"},
	{"groups", Groups, "Access your communities"},
	{"notifications", Notifications, "Access your notifications"},
	{"stats", Stats, "Access statistics of your communities and apps"},
	{"email", Email, "See your email address"},
	{"market", Market, "Access your market"},
	{"phone", Phone, "See your phone number"},
	{"openid", OpenID, "Log you in to the app with your account"},
	{"profile", Profile, "See your name and picture"},
	// VK ID's basic profile (name, photo, sex, birthday) is implied by every
	// VK ID request and is what every token may read anyway: a name with no
	// bit, accepted and never listed.
	{PersonalInfo, 0, "See your name, photo, sex and birthday"},
}

// PersonalInfo is VK ID's implied scope (vkid-wire.md §1).
const PersonalInfo = "vkid.personal_info"

// aliases are other names of scopes: VK ID says videos for video.
var aliases = map[string]string{"videos": "video"}

var communityScopes = []Scope{
	{"stories", CommunityStories, "Manage the community's stories"},
	{"photos", CommunityPhotos, "Access the community's photos"},
	{"app_widget", CommunityAppWidget, "Manage the community's app widget"},
	{"messages", CommunityMessages, "Access the community's messages"},
	{"docs", CommunityDocs, "Access the community's documents"},
	{"manage", CommunityManage, "Manage the community"},
}

// All lists the scopes of an audience in bit order.
func All(a Audience) []Scope {
	if a == Community {
		return communityScopes
	}
	return userScopes
}

// Known is the mask of every bit that has a meaning for the audience.
func Known(a Audience) Mask {
	var m Mask
	for _, s := range All(a) {
		m |= s.Bit
	}
	return m
}

// Error is returned for a scope the audience does not know. Its message is
// fit to show to a developer as an OAuth error_description.
type Error struct {
	Audience Audience
	Name     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("unknown %s scope %q", e.Audience, e.Name)
}

// Parse reads a `scope` parameter: names or decimal bitmasks, separated by
// commas and/or spaces, in any mix ("friends,photos", "friends photos",
// "6", "friends,4"). An unknown name is an *Error, never dropped silently.
// Bits of a numeric mask that have no meaning for the audience are dropped,
// as VK does, so old clients that send a wide mask keep working.
func Parse(a Audience, s string) (Mask, error) {
	var m Mask
	known := Known(a)
	for field := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == '+' || r == '\t' }) {
		if isDigits(field) {
			n, err := strconv.ParseInt(field, 10, 64)
			if err != nil {
				return 0, &Error{a, field}
			}
			m |= Mask(n) & known
			continue
		}
		bit, ok := lookup(a, strings.ToLower(field))
		if !ok {
			return 0, &Error{a, field}
		}
		m |= bit
	}
	return m, nil
}

func lookup(a Audience, name string) (Mask, bool) {
	if n, ok := aliases[name]; ok && a == User {
		name = n
	}
	for _, s := range All(a) {
		if s.Name == name {
			return s.Bit, true
		}
	}
	return 0, false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Scopes returns the named scopes set in m, in bit order.
func (m Mask) Scopes(a Audience) []Scope {
	out := make([]Scope, 0, bits.OnesCount64(uint64(m)))
	for _, s := range All(a) {
		if m&s.Bit != 0 {
			out = append(out, s)
		}
	}
	return out
}

// Names returns the names of the scopes set in m, in bit order.
func (m Mask) Names(a Audience) []string {
	scopes := m.Scopes(a)
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = s.Name
	}
	return out
}

// Text is the space-separated names, the form of the OAuth `scope` field.
func (m Mask) Text(a Audience) string { return strings.Join(m.Names(a), " ") }
