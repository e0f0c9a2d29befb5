package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"latchkey/internal/storage"
)

// Whatever the query and body, the VK ID endpoints answer JSON: an error
// of vkid-wire.md §8 with a description (and the request's state), never
// a 5xx, and no tokens without a code the stub never redeems.
func FuzzVKIDEndpoints(f *testing.F) {
	for _, c := range []struct{ path, query, body string }{
		{"/oauth2/auth", "grant_type=authorization_code&client_id=1&device_id=d&state=s&code_verifier=" + strings.Repeat("a", 43), "code=x"},
		{"/oauth2/auth", "grant_type=refresh_token&client_id=1&device_id=d&state=s&scope=email", "refresh_token=lkr1x"},
		{"/oauth2/auth", "grant_type=access_token&client_id=1&device_id=d&code_challenge=" + strings.Repeat("a", 43), "access_token=x"},
		{"/oauth2/user_info", "client_id=1", "access_token=x"},
		{"/oauth2/public_info", "client_id=1", "id_token=a.b.c"},
		{"/oauth2/logout", "client_id=1&client_secret=bad", ""},
		{"/oauth2/revoke", "client_id=%zz", "%zz"},
	} {
		f.Add(c.path, c.query, c.body)
	}
	f.Fuzz(func(t *testing.T, path, query, body string) {
		s := &stub{}
		p := newTestProvider(s)
		handlers := map[string]http.HandlerFunc{"/oauth2/auth": p.VKIDAuth, "/oauth2/user_info": p.VKIDUserInfo,
			"/oauth2/public_info": p.VKIDPublicInfo, "/oauth2/logout": p.VKIDLogout, "/oauth2/revoke": p.VKIDRevoke}
		h, ok := handlers[path]
		if !ok {
			return
		}
		req, err := http.NewRequest("POST", "http://lk.example"+path+"?"+query, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h(w, req)
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%d %q is not JSON", w.Code, w.Body.String())
		}
		if w.Code < 400 || w.Code >= 500 || m["error"] == nil || m["error_description"] == nil || s.issued != 0 {
			t.Fatalf("%s?%s %q: %d %v, want a 4xx error with a description and nothing issued", path, query, body, w.Code, m)
		}
	})
}

// downStub is storage that cannot be reached.
type downStub struct{ *stub }

func (downStub) LookupApp(context.Context, int64) (storage.App, error) {
	return storage.App{}, storage.ErrUnavailable
}

// While storage is down, VK ID answers temporarily_unavailable, 503 with
// Retry-After, with the request's state.
func TestVKIDStorageDown(t *testing.T) {
	p := newTestProvider(&stub{})
	p.p = downStub{&stub{}}
	req := httptest.NewRequest("POST", "/oauth2/auth?client_id=1&state=st&grant_type=refresh_token", strings.NewReader("refresh_token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	p.VKIDAuth(w, req)
	var m map[string]any
	json.Unmarshal(w.Body.Bytes(), &m)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || m["error"] != "temporarily_unavailable" || m["state"] != "st" || m["error_description"] == nil {
		t.Fatalf("%d %v %v", w.Code, w.Header(), m)
	}
}
