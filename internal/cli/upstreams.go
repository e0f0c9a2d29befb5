package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"latchkey/internal/config"
	"latchkey/internal/platform"
)

func (e *env) upstreamCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "upstream", Short: "Manage the identity providers people sign in through (an OpenID Provider, an LDAP directory)"}
	cmd.PersistentFlags().StringVar(&e.cfg.PublicURL, "public-url", e.cfg.PublicURL, "the server's public URL, as serve's: the redirect_uri to register at an OpenID Provider is <public-url>/login/upstream/<name>/callback (env LATCHKEY_PUBLIC_URL)")
	cmd.PersistentFlags().StringVar(&e.cfg.CallbackAllow, "callback-allow", e.cfg.CallbackAllow, "CIDR ranges or addresses on loopback, private or link-local networks an OpenID Provider may be at (as serve's)")
	allow := func() error {
		var err error
		e.cfg.CallbackTargets, err = config.Prefixes("--callback-allow", e.cfg.CallbackAllow)
		return err
	}

	var name, issuer, clientID, secret, claimLogin string
	var scopes []string
	add := &cobra.Command{
		Use:   "add --name N --issuer URL --client-id ID --client-secret S [--scope S]... [--claim-login preferred_username]",
		Short: "Add an OpenID Provider; prints it with the redirect_uri to register there",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := allow(); err != nil {
				return err
			}
			p, done, err := e.platform(cmd.Context(), use{keys: true})
			if err != nil {
				return err
			}
			defer done()
			var list []string
			for _, s := range scopes {
				list = append(list, strings.Fields(s)...)
			}
			v, err := p.Upstreams.AddOIDC(cmd.Context(), platform.CLI, name, platform.UpstreamConfig{Issuer: issuer, ClientID: clientID, Scopes: list, ClaimLogin: claimLogin}, secret)
			if err != nil {
				return err
			}
			return e.printJSON(v)
		},
	}
	f := add.Flags()
	f.StringVar(&name, "name", "", "the upstream's name (1 to 32 of a-z, 0-9, '-'): the login page's \"Sign in with N\"")
	f.StringVar(&issuer, "issuer", "", "the provider's issuer URL (its discovery is read at the first sign-in)")
	f.StringVar(&clientID, "client-id", "", "Latchkey's client id at the provider")
	f.StringVar(&secret, "client-secret", "", "Latchkey's client secret at the provider (kept sealed)")
	f.StringArrayVar(&scopes, "scope", nil, "scopes to ask (default: openid profile email)")
	f.StringVar(&claimLogin, "claim-login", "preferred_username", "the id_token claim a new user's login is made from")
	for _, n := range []string{"name", "issuer", "client-id", "client-secret"} {
		add.MarkFlagRequired(n)
	}

	var lname, lurl, bindDN, bindPassword, baseDN, filter string
	addLDAP := &cobra.Command{
		Use:   "add-ldap --name N --url ldap://… --bind-dn DN --bind-password P --base-dn DN [--filter '(uid={login})']",
		Short: "Add an LDAP directory: passwords typed at the login page are checked there; prints it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{keys: true})
			if err != nil {
				return err
			}
			defer done()
			v, err := p.Upstreams.AddLDAP(cmd.Context(), platform.CLI, lname, platform.UpstreamConfig{URL: lurl, BindDN: bindDN, BaseDN: baseDN, Filter: filter}, bindPassword)
			if err != nil {
				return err
			}
			return e.printJSON(v)
		},
	}
	lf := addLDAP.Flags()
	lf.StringVar(&lname, "name", "", "the upstream's name (1 to 32 of a-z, 0-9, '-')")
	lf.StringVar(&lurl, "url", "", "ldaps://HOST[:PORT] (TLS), or ldap://HOST[:PORT] (StartTLS; in the clear on loopback only)")
	lf.StringVar(&bindDN, "bind-dn", "", "the service account's DN, which searches for people")
	lf.StringVar(&bindPassword, "bind-password", "", "the service account's password (kept sealed)")
	lf.StringVar(&baseDN, "base-dn", "", "where people are searched for")
	lf.StringVar(&filter, "filter", "(uid={login})", "the search filter; {login} is the typed login, escaped (RFC 4515)")
	for _, n := range []string{"name", "url", "bind-dn", "bind-password", "base-dn"} {
		addLDAP.MarkFlagRequired(n)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: `List the upstreams; prints {"upstreams":[…]}`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{})
			if err != nil {
				return err
			}
			defer done()
			vs, err := p.Upstreams.All(cmd.Context())
			if err != nil {
				return err
			}
			if vs == nil {
				vs = []platform.UpstreamView{}
			}
			return e.printJSON(map[string]any{"upstreams": vs})
		},
	}

	var rname string
	remove := &cobra.Command{
		Use:   "remove --name N",
		Short: `Remove an upstream; the users it made stay (they sign in locally if they have a password); prints {"ok":true}`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{})
			if err != nil {
				return err
			}
			defer done()
			if err := p.Upstreams.Delete(cmd.Context(), platform.CLI, rname); err != nil {
				return err
			}
			return e.printJSON(map[string]any{"ok": true})
		},
	}
	remove.Flags().StringVar(&rname, "name", "", "the upstream's name")
	remove.MarkFlagRequired("name")
	cmd.AddCommand(add, addLDAP, list, remove)
	return cmd
}
