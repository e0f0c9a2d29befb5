package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestProfileRenameAndAvatar(t *testing.T) {
	e := newAPIEnv(t)
	b := e.browser()
	b.get(e.URL + "/settings/profile")
	b.login("alice", "password-alice")
	b.submit(b.formWith("first_name"), map[string]string{"first_name": "Alicia", "last_name": "Keys"})
	if b.status != 200 || !strings.Contains(b.page, "Profile saved") {
		t.Fatalf("after saving: %d", b.status)
	}
	b.submit(b.formWith("first_name"), map[string]string{"first_name": strings.Repeat("x", 101)})
	if b.status != 422 {
		t.Fatalf("a 101-character name: %d, want 422", b.status)
	}
	m := e.call("users.get", e.user, map[string]string{"fields": "photo_100"})
	u := m["response"].([]any)[0].(map[string]any)
	photo, _ := u["photo_100"].(string)
	if u["first_name"] != "Alicia" || u["last_name"] != "Keys" || photo != fmt.Sprintf("%s/avatar/%d.svg?size=100", e.URL, e.alice.ID) {
		t.Fatalf("users.get after rename: %v", u)
	}
	resp, err := http.Get(photo)
	if err != nil {
		t.Fatal(err)
	}
	svg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(svg), ">AK</text>") ||
		!strings.Contains(string(svg), `width="100"`) || strings.Contains(string(svg), "<script") {
		t.Fatalf("avatar: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), svg)
	}
	for _, bad := range []string{"/avatar/999.svg", "/avatar/abc.svg", "/avatar/1.png"} {
		resp, err := http.Get(e.URL + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("%s: %d, want 404", bad, resp.StatusCode)
		}
	}
}
