package cli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"latchkey/internal/admin/view"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

func (e *env) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users"}
	var u platform.NewUser
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a user; prints {\"id\":N,\"login\":\"L\"}",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := u.Validate(); err != nil {
				return err
			}
			p, done, err := e.platform(cmd.Context(), use{})
			if err != nil {
				return err
			}
			defer done()
			rec, err := p.Users.CreateUser(cmd.Context(), u)
			if err != nil {
				return err
			}
			return e.printJSON(map[string]any{"id": rec.ID, "login": rec.Login})
		},
	}
	f := create.Flags()
	f.StringVar(&u.Login, "login", "", "login (3-32 Latin letters, digits, '.', '_', '-')")
	f.StringVar(&u.Password, "password", "", "password (at least 8 characters)")
	f.StringVar(&u.FirstName, "first-name", "", "first name")
	f.StringVar(&u.LastName, "last-name", "", "last name")
	f.StringVar(&u.Email, "email", "", "email address")
	create.MarkFlagRequired("login")
	create.MarkFlagRequired("password")
	cmd.AddCommand(create, e.requireMFACmd(), e.resetFactorsCmd())
	return cmd
}

// withUser runs fn with the platform and the user a --user flag names: an
// id, or a login.
func (e *env) withUser(cmd *cobra.Command, name string, fn func(*platform.Platform, storage.User) error) error {
	p, done, err := e.platform(cmd.Context(), use{})
	if err != nil {
		return err
	}
	defer done()
	var u storage.User
	if id, perr := strconv.ParseInt(name, 10, 64); perr == nil {
		u, err = p.Users.User(cmd.Context(), id)
	} else {
		u, err = p.Users.UserByLogin(cmd.Context(), name)
	}
	if err != nil {
		return err
	}
	return fn(p, u)
}

func (e *env) requireMFACmd() *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:   "require-mfa --user U on|off",
		Short: "Make a second factor mandatory for a user (on) or not (off); prints {\"id\":N,\"require_mfa\":B}",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "on" && args[0] != "off" {
				return fmt.Errorf("%q: want on or off", args[0])
			}
			return e.withUser(cmd, user, func(p *platform.Platform, u storage.User) error {
				if err := p.Factors.SetRequired(cmd.Context(), platform.CLI, u.ID, args[0] == "on"); err != nil {
					return err
				}
				return e.printJSON(map[string]any{"id": u.ID, "require_mfa": args[0] == "on"})
			})
		},
	}
	c.Flags().StringVar(&user, "user", "", "the user's id or login")
	c.MarkFlagRequired("user")
	return c
}

func (e *env) resetFactorsCmd() *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:   "reset-factors --user U",
		Short: "Remove every passkey, authenticator app and recovery code of a user (a lost authenticator); prints {\"id\":N,\"removed\":N}",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withUser(cmd, user, func(p *platform.Platform, u storage.User) error {
				removed, err := p.Factors.Reset(cmd.Context(), platform.CLI, u.ID)
				if err != nil {
					return err
				}
				return e.printJSON(map[string]any{"id": u.ID, "removed": len(removed)})
			})
		},
	}
	c.Flags().StringVar(&user, "user", "", "the user's id or login")
	c.MarkFlagRequired("user")
	return c
}

func (e *env) groupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Manage communities (groups, events, public pages)"}
	var owner int64
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a community whose first admin is the owner; prints {\"id\":N}",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true})
			if err != nil {
				return err
			}
			defer done()
			c, err := p.Communities.CreateCommunity(cmd.Context(), platform.CLI, owner, name)
			if err != nil {
				return err
			}
			return e.printJSON(map[string]any{"id": c.ID})
		},
	}
	create.Flags().Int64Var(&owner, "owner", 0, "user id of the first admin")
	create.Flags().StringVar(&name, "name", "", "community name")
	create.MarkFlagRequired("owner")
	create.MarkFlagRequired("name")

	var group, user int64
	addAdmin := &cobra.Command{
		Use:   "add-admin",
		Short: "Make a user an admin of a community; prints {\"ok\":true}",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true})
			if err != nil {
				return err
			}
			defer done()
			if err := p.Communities.AddCommunityAdmin(cmd.Context(), platform.CLI, group, user); err != nil {
				return err
			}
			return e.printJSON(map[string]bool{"ok": true})
		},
	}
	addAdmin.Flags().Int64Var(&group, "group", 0, "community id")
	addAdmin.Flags().Int64Var(&user, "user", 0, "user id")
	addAdmin.MarkFlagRequired("group")
	addAdmin.MarkFlagRequired("user")
	var rmGroup, rmUser int64
	removeAdmin := &cobra.Command{
		Use:   "remove-admin",
		Short: "Take admin rights from a user (not the last admin); prints {\"ok\":true}",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true})
			if err != nil {
				return err
			}
			defer done()
			if err := p.Communities.RemoveCommunityAdmin(cmd.Context(), platform.CLI, rmGroup, rmUser); err != nil {
				return err
			}
			return e.printJSON(map[string]bool{"ok": true})
		},
	}
	removeAdmin.Flags().Int64Var(&rmGroup, "group", 0, "community id")
	removeAdmin.Flags().Int64Var(&rmUser, "user", 0, "user id")
	removeAdmin.MarkFlagRequired("group")
	removeAdmin.MarkFlagRequired("user")
	cmd.AddCommand(create, addAdmin, removeAdmin)
	return cmd
}

func (e *env) appCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "app", Short: "Manage apps and their credentials"}

	var a platform.NewApp
	var appType, iframeScope, jwksFile string
	var logoutURIs []string
	var backchannel string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an app; prints its client_id, client_secret and service_token",
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.Type = storage.AppType(appType)
			m, err := scope.Parse(scope.User, iframeScope)
			if err != nil {
				return usage("--iframe-scope: %v", err)
			}
			a.IFrameScope = m
			if a.Auth.JWKS, err = readJWKS(jwksFile); err != nil {
				return err
			}
			if err := a.Validate(); err != nil {
				return err
			}
			p, done, err := e.platform(cmd.Context(), use{existing: true, check: userExists(a.OwnerID), keys: true})
			if err != nil {
				return err
			}
			defer done()
			v, err := p.Apps.CreateApp(cmd.Context(), platform.CLI, a)
			if err != nil {
				return err
			}
			if len(logoutURIs) > 0 {
				if v, err = p.Apps.SetPostLogoutRedirectURIs(cmd.Context(), platform.CLI, v.ID, logoutURIs); err != nil {
					return err
				}
			}
			if backchannel != "" {
				if v, err = p.Apps.SetBackchannelLogoutURI(cmd.Context(), platform.CLI, v.ID, backchannel); err != nil {
					return err
				}
			}
			return e.printJSON(view.OfApp(v))
		},
	}
	f := create.Flags()
	f.Int64Var(&a.OwnerID, "owner", 0, "user id of the developer who owns the app")
	f.StringVar(&a.Title, "title", "", "app title")
	f.StringVar(&appType, "type", "", "standalone, web or iframe")
	f.StringArrayVar(&a.RedirectURIs, "redirect-uri", nil, "a redirect URI (repeat for several); matched exactly")
	f.StringVar(&a.IFrameURL, "iframe-url", "", "URL loaded in the iframe (iframe apps)")
	f.StringVar(&iframeScope, "iframe-scope", "", "permissions an iframe app asks for at first launch (names or mask)")
	f.StringVar(&a.Description, "description", "", "app description")
	authFlags(f, &a.Auth.Method, &jwksFile, &a.Auth.JWKSURI)
	f.StringArrayVar(&logoutURIs, "post-logout-redirect-uri", nil, "where the app may send a person after signing them out (repeat for several); matched exactly")
	f.StringVar(&backchannel, "backchannel-logout-uri", "", backchannelHelp)
	create.MarkFlagRequired("owner")
	create.MarkFlagRequired("title")
	create.MarkFlagRequired("type")
	cmd.AddCommand(create)

	type action func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.AppView, error)
	simple := func(name, short string, do action) *cobra.Command {
		var id int64
		c := &cobra.Command{
			Use:   name,
			Short: short,
			RunE: func(cmd *cobra.Command, _ []string) error {
				p, done, err := e.platform(cmd.Context(), use{existing: true, check: appExists(id), keys: true})
				if err != nil {
					return err
				}
				defer done()
				v, err := do(p, cmd, id)
				if err != nil {
					return err
				}
				return e.printJSON(view.OfApp(v))
			},
		}
		c.Flags().Int64Var(&id, "app", 0, "app id (client_id)")
		c.MarkFlagRequired("app")
		return c
	}
	cmd.AddCommand(
		simple("show", "Print the app's current state", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.AppView, error) {
			return p.Apps.App(cmd.Context(), platform.CLI, id)
		}),
		simple("rotate-secret", "Make a new client secret current; the old one works until retired or 7 days pass", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.AppView, error) {
			return p.Apps.RotateSecret(cmd.Context(), platform.CLI, id)
		}),
		simple("retire-secret", "Stop accepting the rotated-out client secret now", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.AppView, error) {
			return p.Apps.RetireSecret(cmd.Context(), platform.CLI, id)
		}),
		simple("new-service-token", "Generate a new service token; the old one stops working at once", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.AppView, error) {
			return p.Apps.NewServiceToken(cmd.Context(), platform.CLI, id)
		}),
		simple("delete", "Delete the app; every token of it stops working", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.AppView, error) {
			v, err := p.Apps.DeleteApp(cmd.Context(), platform.CLI, id)
			return v, err
		}),
	)

	var onOff, setScope, setJWKSFile string
	var settings platform.AppSettings
	var setAuth platform.ClientAuth
	var setLogoutURIs []string
	var setBackchannel string
	var setProfile string
	set := simple("set", "Change the app's settings: client credentials switch, title, description, redirect URIs, iframe URL", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.AppView, error) {
		ctx, f := cmd.Context(), cmd.Flags()
		if f.Changed("title") || f.Changed("description") || f.Changed("redirect-uri") || f.Changed("iframe-url") || f.Changed("iframe-scope") {
			cur, err := p.Apps.App(ctx, platform.CLI, id)
			if err != nil {
				return cur, err
			}
			s := platform.AppSettings{Title: cur.Title, Description: cur.Description, RedirectURIs: cur.RedirectURIs, IFrameURL: cur.IFrameURL, IFrameScope: cur.IFrameScope}
			if f.Changed("iframe-scope") {
				m, err := scope.Parse(scope.User, setScope)
				if err != nil {
					return platform.AppView{}, usage("--iframe-scope: %v", err)
				}
				s.IFrameScope = m
			}
			if f.Changed("title") {
				s.Title = settings.Title
			}
			if f.Changed("description") {
				s.Description = settings.Description
			}
			if f.Changed("redirect-uri") {
				s.RedirectURIs = settings.RedirectURIs
			}
			if f.Changed("iframe-url") {
				s.IFrameURL = settings.IFrameURL
			}
			if _, err := p.Apps.UpdateAppSettings(ctx, platform.CLI, id, s); err != nil {
				return platform.AppView{}, err
			}
		}
		if f.Changed("token-endpoint-auth-method") || f.Changed("jwks") || f.Changed("jwks-uri") {
			cur, err := p.Apps.App(ctx, platform.CLI, id)
			if err != nil {
				return cur, err
			}
			auth := platform.ClientAuth{Method: cur.AuthMethod, JWKS: cur.JWKS, JWKSURI: cur.JWKSURI}
			if f.Changed("token-endpoint-auth-method") {
				auth.Method = setAuth.Method
			}
			if f.Changed("jwks") || f.Changed("jwks-uri") {
				if auth.JWKS, err = readJWKS(setJWKSFile); err != nil {
					return platform.AppView{}, err
				}
				auth.JWKSURI = setAuth.JWKSURI
			}
			if auth.Method != platform.AuthPrivateKey && !f.Changed("jwks") && !f.Changed("jwks-uri") {
				auth.JWKS, auth.JWKSURI = "", "" // keys go with private_key_jwt
			}
			if _, err := p.Apps.SetAuth(ctx, platform.CLI, id, auth); err != nil {
				return platform.AppView{}, err
			}
		}
		if f.Changed("post-logout-redirect-uri") {
			if _, err := p.Apps.SetPostLogoutRedirectURIs(ctx, platform.CLI, id, setLogoutURIs); err != nil {
				return platform.AppView{}, err
			}
		}
		if f.Changed("backchannel-logout-uri") {
			if _, err := p.Apps.SetBackchannelLogoutURI(ctx, platform.CLI, id, setBackchannel); err != nil {
				return platform.AppView{}, err
			}
		}
		if f.Changed("profile") {
			profile := setProfile
			if profile == "none" {
				profile = ""
			}
			if _, err := p.Apps.SetProfile(ctx, platform.CLI, id, profile); err != nil {
				return platform.AppView{}, err
			}
		}
		if f.Changed("client-credentials") {
			return p.Apps.SetClientCredentials(ctx, platform.CLI, id, onOff == "on")
		}
		return p.Apps.App(ctx, platform.CLI, id)
	})
	set.PreRunE = func(cmd *cobra.Command, _ []string) error {
		f := cmd.Flags()
		changed := false
		for _, name := range []string{"client-credentials", "title", "description", "redirect-uri", "iframe-url", "iframe-scope", "token-endpoint-auth-method", "jwks", "jwks-uri", "post-logout-redirect-uri", "backchannel-logout-uri", "profile"} {
			changed = changed || f.Changed(name)
		}
		if !changed {
			return usage("app set: nothing to change: pass --client-credentials on|off, --title, --description, --redirect-uri, --iframe-url, --token-endpoint-auth-method, --jwks, --jwks-uri, --post-logout-redirect-uri, --backchannel-logout-uri or --profile")
		}
		if f.Changed("client-credentials") && onOff != "on" && onOff != "off" {
			return usage("--client-credentials %q: want on or off", onOff)
		}
		return nil
	}
	set.Flags().StringVar(&onOff, "client-credentials", "", "on or off: the obsolete client credentials flow")
	set.Flags().StringVar(&settings.Title, "title", "", "new title")
	set.Flags().StringVar(&settings.Description, "description", "", "new description")
	set.Flags().StringArrayVar(&settings.RedirectURIs, "redirect-uri", nil, "redirect URI (repeat for several); replaces the list")
	set.Flags().StringVar(&settings.IFrameURL, "iframe-url", "", "new iframe URL (iframe apps)")
	set.Flags().StringVar(&setScope, "iframe-scope", "", "permissions an iframe app asks for at first launch (names or mask)")
	authFlags(set.Flags(), &setAuth.Method, &setJWKSFile, &setAuth.JWKSURI)
	set.Flags().StringVar(&setProfile, "profile", "", "fapi2: hold the app to FAPI 2.0 (PAR, PKCE S256, private_key_jwt, DPoP, 60-second codes); none: no profile")
	set.Flags().StringArrayVar(&setLogoutURIs, "post-logout-redirect-uri", nil, "where the app may send a person after signing them out (repeat for several); replaces the list")
	set.Flags().StringVar(&setBackchannel, "backchannel-logout-uri", "", backchannelHelp+` ("" for nowhere)`)
	cmd.AddCommand(set)
	return cmd
}

const backchannelHelp = "where the app is sent a logout token when a session that signed in to it ends (OpenID Connect Back-Channel Logout)"

// authFlags are the flags of how an app authenticates at the token
// endpoints.
func authFlags(f *pflag.FlagSet, method, jwksFile, jwksURI *string) {
	f.StringVar(method, "token-endpoint-auth-method", "", "client_secret_basic, client_secret_post, private_key_jwt or none (standalone apps); only that method is then accepted (default: a secret either way, or none for standalone apps)")
	f.StringVar(jwksFile, "jwks", "", "with private_key_jwt: a file holding the app's public keys (a JWK Set)")
	f.StringVar(jwksURI, "jwks-uri", "", "with private_key_jwt: the https URL of the app's public keys (a JWK Set)")
}

// readJWKS is the JWK Set in the file at path ("" for none).
func readJWKS(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usage("--jwks: %v", err)
	}
	return string(b), nil
}
