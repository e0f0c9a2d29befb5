package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// Every page a signed-in person can open renders: status 200, the layout
// around it, and no template error. Each page has a view type of its own,
// so a template that names a field its view lacks fails here.
func TestEveryPageRenders(t *testing.T) {
	e := newEnv(t)
	u := e.user("pat", "pat@example.com")
	app := e.app(u.ID, storage.Web, "https://pat.example/cb")
	native := e.app(u.ID, storage.Standalone, "http://127.0.0.1/cb")
	frame, err := e.P.Apps.CreateApp(context.Background(), platform.CLI, platform.NewApp{OwnerID: u.ID, Title: "Frame", Type: storage.IFrame,
		IFrameURL: "https://frame.example/app"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.P.Communities.CreateCommunity(context.Background(), platform.CLI, u.ID, "Pat's club")
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("pat", "password-pat")

	pages := []struct{ path, want string }{
		{"/", "Hello, Pat"},
		{"/logout", "Log out"},
		{"/signup", "Create account"},
		{"/apps", "Test web app"},
		{"/apps/new", "Create app"},
		{fmt.Sprintf("/apps/%d", app.ID), app.ClientSecret},
		{fmt.Sprintf("/apps/%d", app.ID), e.URL + "/.well-known/openid-configuration"},
		{fmt.Sprintf("/apps/%d", app.ID), "Confidential: authenticates with its secure key"},
		{fmt.Sprintf("/apps/%d", native.ID), "Public: exchanges codes and refreshes tokens with PKCE and no secret"},
		{fmt.Sprintf("/apps/%d/confirm/delete", app.ID), "Delete this app?"},
		{"/communities", "Pat&#39;s club"},
		{fmt.Sprintf("/communities/%d", c.ID), "Add an admin"},
		{fmt.Sprintf("/communities/%d/api", c.ID), "Create token"},
		{fmt.Sprintf("/app%d", frame.ID), "asks for access"},
		{"/settings/apps", "Authorized apps"},
		{"/settings/profile", "First name"},
		{"/inbox", "Nothing here yet"},
		{fmt.Sprintf("/widget/button?app_id=%d&origin=https://pat.example&mode=callback", app.ID), "Log in with Latchkey"},
		{fmt.Sprintf("/widget/auth?app_id=%d&origin=https://pat.example&mode=callback", app.ID), "asks for access"},
		{fmt.Sprintf("/authorize?client_id=%d&redirect_uri=https://pat.example/cb&scope=friends", app.ID), "asks for access"},
		{"/apps/999", "No app with id 999."},
	}
	for _, p := range pages {
		b.get(e.URL + p.path)
		wantStatus := http.StatusOK
		if strings.HasPrefix(p.path, "/apps/999") {
			wantStatus = http.StatusNotFound
		}
		if b.status != wantStatus || !strings.Contains(b.page, p.want) || !strings.Contains(b.page, "</html>") {
			t.Errorf("GET %s: status %d, want %d with %q; page:\n%.600s", p.path, b.status, wantStatus, p.want, b.page)
		}
	}
}

// Every page's template renders its view's zero value in both languages:
// a template that names a field its view lacks fails here.
func TestEveryPageRendersItsView(t *testing.T) {
	e := newEnv(t)
	if err := e.Node.Server.CheckPages(); err != nil {
		t.Fatal(err)
	}
}
