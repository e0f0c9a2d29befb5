package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// Demo credentials: `serve --demo` is for trying Latchkey on one's own
// machine, so the password is printed and fixed.
const (
	demoLogin    = "demo"
	demoPassword = "demo-password"
)

// seedDemo creates, once, a demo user, a standalone app, a web app and a
// community, and prints how to log in and a ready /authorize URL.
func seedDemo(ctx context.Context, p *platform.Platform, public *url.URL, out io.Writer) error {
	user, err := p.UserByLogin(ctx, demoLogin)
	switch {
	case errors.Is(err, platform.ErrNoSuchLogin):
		if user, err = p.CreateUser(ctx, platform.NewUser{Login: demoLogin, Password: demoPassword, FirstName: "Demo", LastName: "User", Email: "demo@example.com"}); err != nil {
			return err
		}
		if _, err := p.CreateApp(ctx, platform.CLI, platform.NewApp{OwnerID: user.ID, Title: "Demo standalone app", Type: storage.Standalone}); err != nil {
			return err
		}
		if _, err := p.CreateApp(ctx, platform.CLI, platform.NewApp{OwnerID: user.ID, Title: "Demo web app", Type: storage.Web,
			RedirectURIs: []string{"http://127.0.0.1:8000/callback"}}); err != nil {
			return err
		}
		if _, err := p.CreateCommunity(ctx, platform.CLI, user.ID, "Demo community"); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	apps, err := p.Apps(ctx, user.ID)
	if err != nil || len(apps) == 0 {
		return fmt.Errorf("demo apps missing: %v", err)
	}
	communities, _ := p.CommunitiesOf(ctx, user.ID)

	blank := public.JoinPath("/blank.html").String()
	auth := public.JoinPath("/authorize")
	auth.RawQuery = url.Values{
		"client_id": {fmt.Sprint(apps[0].ID)}, "redirect_uri": {blank}, "response_type": {"token"},
		"scope": {"friends,email,offline"}, "display": {"page"}, "v": {"5.199"}, "state": {"demo"},
	}.Encode()
	fmt.Fprintf(out, "Demo ready at %s\n", public)
	fmt.Fprintf(out, "  log in with   login %q, password %q\n", demoLogin, demoPassword)
	fmt.Fprintf(out, "  standalone app client_id=%d, web app client_id=%d", apps[0].ID, apps[len(apps)-1].ID)
	if len(communities) > 0 {
		fmt.Fprintf(out, ", community id=%d", communities[0].ID)
	}
	fmt.Fprintf(out, "\n  get a user token: %s\n", auth)
	return nil
}
