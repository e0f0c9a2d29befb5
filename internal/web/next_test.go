package web

import "testing"

func TestLocalNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/apps", "/apps"},
		{"/authorize?client_id=1&scope=friends", "/authorize?client_id=1&scope=friends"},
		{"/a%20b", "/a%20b"},
		{"https://evil.example/", "/"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"/\t/evil.example/x", "/"}, // next=/%09/evil.example/x once the form is decoded
		{"/%09/evil.example/x", "/"},
		{"/\t\\evil", "/"},
		{"/../\\evil", "/"},
		{"/..//evil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/%2f/evil.example", "/%2f/evil.example"}, // stays a path: browsers do not decode it
		{"/x\r\nLocation: https://evil.example", "/"},
		{"/x%0d%0aSet-Cookie:a=b", "/"},
		{"/x#frag", "/"},
		{"javascript:alert(1)", "/"},
		{"/\x00", "/"},
	}
	for _, tc := range tests {
		if got := LocalNext(tc.in); got != tc.want {
			t.Errorf("LocalNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzLocalNext(f *testing.F) {
	for _, s := range []string{"/apps", "//evil", "/\t/evil", "/%09/x", "/../\\x", "/a?b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := LocalNext(s)
		if got == "/" {
			return
		}
		if got[0] != '/' || len(got) > 1 && (got[1] == '/' || got[1] == '\\') {
			t.Fatalf("LocalNext(%q) = %q leaves the site", s, got)
		}
		for _, c := range got {
			if c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("LocalNext(%q) = %q carries %q", s, got, c)
			}
		}
	})
}
