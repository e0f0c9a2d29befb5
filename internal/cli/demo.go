package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/web/demo"
)

// Demo credentials: `serve --demo` is for trying Latchkey on one's own
// machine, so the password is printed and fixed.
const (
	demoLogin    = "demo"
	demoPassword = "demo-password"
)

// seedDemo creates, once, a demo user, a standalone app, a web app and a
// community, points the web app at this server's demo callback page, and
// prints how to log in, a ready /authorize URL for each app and what to do
// with the token. It returns the web app and its owner.
func seedDemo(ctx context.Context, p *platform.Platform, public *url.URL, out io.Writer) (webApp, owner int64, err error) {
	callback := public.JoinPath(demo.Path).String()
	user, err := p.Users.UserByLogin(ctx, demoLogin)
	switch {
	case errors.Is(err, platform.ErrNoSuchLogin):
		if user, err = p.Users.CreateUser(ctx, platform.NewUser{Login: demoLogin, Password: demoPassword, FirstName: "Demo", LastName: "User", Email: "demo@example.com"}); err != nil {
			return 0, 0, err
		}
		if _, err := p.Apps.CreateApp(ctx, platform.CLI, platform.NewApp{OwnerID: user.ID, Title: "Demo standalone app", Type: storage.Standalone}); err != nil {
			return 0, 0, err
		}
		if _, err := p.Apps.CreateApp(ctx, platform.CLI, platform.NewApp{OwnerID: user.ID, Title: "Demo web app", Type: storage.Web,
			RedirectURIs: []string{callback}}); err != nil {
			return 0, 0, err
		}
		if _, err := p.Communities.CreateCommunity(ctx, platform.CLI, user.ID, "Demo community"); err != nil {
			return 0, 0, err
		}
	case err != nil:
		return 0, 0, err
	}
	apps, err := p.Apps.AppsOf(ctx, user.ID)
	if err != nil || len(apps) < 2 {
		return 0, 0, fmt.Errorf("demo apps missing: %v", err)
	}
	standalone, web := apps[0], apps[len(apps)-1]
	if !slices.Contains(web.RedirectURIs, callback) {
		// The server is reached at another URL than when the demo was made.
		if _, err := p.Apps.UpdateAppSettings(ctx, platform.CLI, web.ID, platform.AppSettings{Title: web.Title, Description: web.Description,
			RedirectURIs: append(web.RedirectURIs, callback)}); err != nil {
			return 0, 0, err
		}
	}
	communities, _ := p.Communities.CommunitiesOf(ctx, user.ID)

	implicit := public.JoinPath("/authorize")
	implicit.RawQuery = url.Values{
		"client_id": {fmt.Sprint(standalone.ID)}, "redirect_uri": {public.JoinPath("/blank.html").String()}, "response_type": {"token"},
		"scope": {"friends,email,offline"}, "display": {"page"}, "v": {"5.199"}, "state": {"demo"},
	}.Encode()
	code := public.JoinPath("/authorize")
	code.RawQuery = url.Values{"client_id": {fmt.Sprint(web.ID)}, "redirect_uri": {callback}, "response_type": {"code"},
		"scope": {"friends,email"}, "state": {"demo"}}.Encode()
	fmt.Fprintf(out, "Demo ready at %s\n", public)
	fmt.Fprintf(out, "  log in with   login %q, password %q\n", demoLogin, demoPassword)
	fmt.Fprintf(out, "  standalone app client_id=%d, web app client_id=%d", standalone.ID, web.ID)
	if len(communities) > 0 {
		fmt.Fprintf(out, ", community id=%d", communities[0].ID)
	}
	fmt.Fprintf(out, "\n  get a user token (it ends up in the address bar): %s\n", implicit)
	fmt.Fprintf(out, "  then call the API: curl '%s?v=5.199&access_token=TOKEN'\n", public.JoinPath("/method/users.get"))
	fmt.Fprintf(out, "  or the code flow of the web app, whose callback page shows the exchange: %s\n", code)
	fmt.Fprintf(out, "  per-token API rate limits are off in the demo\n")
	return web.ID, user.ID, nil
}
