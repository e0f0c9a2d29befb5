package scope

import (
	"errors"
	"testing"
)

var parseCases = []struct {
	name     string
	audience Audience
	in       string
	want     Mask
	wantErr  bool
}{
	{"empty is no scope", User, "", 0, false},
	{"one name", User, "friends", Friends, false},
	{"names with commas", User, "friends,photos", Friends | Photos, false},
	{"names with spaces", User, "friends photos offline", Friends | Photos | Offline, false},
	{"decimal mask", User, "6", Friends | Photos, false},
	{"mix of names and numbers", User, "friends,4, email", Friends | Photos | Email, false},
	{"names are case-insensitive", User, "Friends,EMAIL", Friends | Email, false},
	{"unknown bits of a number are dropped", User, "32", 0, false},
	{"repeated separators", User, ",,friends,, ,photos,", Friends | Photos, false},
	{"unknown name", User, "friends,teleport", 0, true},
	{"community names", Community, "manage,messages,app_widget", CommunityManage | CommunityMessages | CommunityAppWidget, false},
	{"user-only name in community scope", Community, "friends", 0, true},
	{"community-only name in user scope", User, "manage", 0, true},
	{"number too large", User, "99999999999999999999999", 0, true},
	{"VK ID's space-separated names", User, "vkid.personal_info email phone", Email | Phone, false},
	{"videos is video", User, "videos", Video, false},
	{"videos is no community scope", Community, "videos", 0, true},
}

func TestParse(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse(c.audience, c.in)
			if c.wantErr {
				var se *Error
				if !errors.As(err, &se) {
					t.Fatalf("Parse(%q) error = %v, want *scope.Error", c.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("Parse(%q) = %d, want %d", c.in, got, c.want)
			}
		})
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for _, a := range []Audience{User, Community} {
		all := Known(a)
		back, err := Parse(a, all.Text(a))
		if err != nil || back != all {
			t.Fatalf("%v: Parse(Text(all)) = %d, %v; want %d", a, back, err, all)
		}
	}
	if got := (Friends | Email).Text(User); got != "friends email" {
		t.Fatalf("Text = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add(int(c.audience), c.in)
	}
	f.Fuzz(func(t *testing.T, a int, s string) {
		aud := Audience(a & 1)
		m, err := Parse(aud, s)
		if err != nil {
			return
		}
		if m&^Known(aud) != 0 {
			t.Fatalf("Parse(%q) = %d has unknown bits", s, m)
		}
		back, err := Parse(aud, m.Text(aud))
		if err != nil || back != m {
			t.Fatalf("round trip of %d: %d, %v", m, back, err)
		}
	})
}
