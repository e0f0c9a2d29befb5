package cli

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"latchkey/internal/admin/view"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

// apiFlags are the settings `api create` and `api set` take.
type apiFlags struct {
	name, identifier, format, upstream, slug string
	scopes, routes                           []string
	ttl                                      time.Duration
	rate                                     int64
}

func (f *apiFlags) add(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "the API's name, shown in the consent dialog")
	if create {
		fl.StringVar(&f.identifier, "identifier", "", "the API's identifier: an https URI, the resource apps ask for and the tokens' aud (a gateway API's is <public-url>/api/<slug>)")
	}
	fl.StringArrayVar(&f.scopes, "scope", nil, "a scope: 'name=English description|Русское описание' (repeat for several; set replaces the list)")
	fl.StringVar(&f.format, "token-format", "", "opaque (default) or jwt (RFC 9068, verifiable with /oauth/jwks)")
	fl.DurationVar(&f.ttl, "token-ttl", 0, "access token lifetime (default 1h opaque, 5m jwt)")
	fl.Int64Var(&f.rate, "rate", 0, "requests a second per token at the gateway (default 20)")
	fl.StringVar(&f.upstream, "upstream", "", "gateway mode: the URL requests to /api/<slug>/ go to (operators only)")
	fl.StringVar(&f.slug, "slug", "", "gateway mode: the API's path under /api/")
	fl.StringArrayVar(&f.routes, "route", nil, "gateway route rule: 'METHOD /path-prefix=scope' (METHOD may be *; repeat for several)")
}

// settings reads the flags into s, the changed ones only (all for create).
func (f *apiFlags) settings(cmd *cobra.Command, s *platform.APISettings) error {
	changed := cmd.Flags().Changed
	if changed("name") {
		s.Name = f.name
	}
	if changed("scope") {
		s.Scopes = nil
		for _, raw := range f.scopes {
			name, desc, ok1 := strings.Cut(raw, "=")
			i := strings.LastIndex(desc, "|")
			if !ok1 || i < 0 {
				return usage("--scope %q: want 'name=English description|Русское описание'", raw)
			}
			s.Scopes = append(s.Scopes, platform.ScopeSpec{Name: strings.TrimSpace(name), EN: strings.TrimSpace(desc[:i]), RU: strings.TrimSpace(desc[i+1:])})
		}
	}
	if changed("token-format") {
		s.TokenFormat = f.format
	}
	if changed("token-ttl") {
		s.TokenTTL = f.ttl
	}
	if changed("rate") {
		s.Rate = f.rate
	}
	if changed("upstream") {
		s.Upstream = f.upstream
	}
	if changed("slug") {
		s.Slug = f.slug
	}
	if changed("route") {
		s.Routes = nil
		for _, raw := range f.routes {
			i := strings.LastIndex(raw, "=")
			method, prefix, ok := strings.Cut(strings.TrimSpace(raw[:max(i, 0)]), " ")
			if i < 0 || !ok {
				return usage("--route %q: want 'METHOD /path-prefix=scope'", raw)
			}
			s.Routes = append(s.Routes, storage.APIRoute{Method: method, Prefix: strings.TrimSpace(prefix), Scope: strings.TrimSpace(raw[i+1:])})
		}
	}
	return nil
}

func (e *env) apiCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "api", Short: "Manage APIs (resource servers) apps get tokens for"}
	cmd.PersistentFlags().StringVar(&e.cfg.PublicURL, "public-url", e.cfg.PublicURL, "the server's public URL, as serve's: a gateway API's identifier is <public-url>/api/<slug> (env LATCHKEY_PUBLIC_URL)")

	var owner int64
	var cf apiFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Register an API; prints it with its introspection client_id and secret (the secret only now)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := platform.NewAPI{OwnerID: owner, Identifier: cf.identifier}
			if err := cf.settings(cmd, &a.APISettings); err != nil {
				return err
			}
			p, done, err := e.platform(cmd.Context(), use{existing: true, check: userExists(owner)})
			if err != nil {
				return err
			}
			defer done()
			v, err := p.APIs.CreateAPI(cmd.Context(), platform.CLI, a)
			if err != nil {
				return err
			}
			return e.printJSON(view.OfAPI(v))
		},
	}
	create.Flags().Int64Var(&owner, "owner", 0, "user id of the developer who owns the API")
	cf.add(create, true)
	create.MarkFlagRequired("owner")
	create.MarkFlagRequired("name")

	type action func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.APIView, error)
	simple := func(name, short string, do action) *cobra.Command {
		var id int64
		c := &cobra.Command{
			Use:   name,
			Short: short,
			RunE: func(cmd *cobra.Command, _ []string) error {
				p, done, err := e.platform(cmd.Context(), use{existing: true})
				if err != nil {
					return err
				}
				defer done()
				v, err := do(p, cmd, id)
				if err != nil {
					return err
				}
				out := view.OfAPI(v)
				out.Deleted = name == "delete"
				return e.printJSON(out)
			},
		}
		c.Flags().Int64Var(&id, "api", 0, "API id")
		c.MarkFlagRequired("api")
		return c
	}
	var sf apiFlags
	set := simple("set", "Change the API's settings (the flags of create but the identifier)", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.APIView, error) {
		cur, err := p.APIs.API(cmd.Context(), platform.CLI, id)
		if err != nil {
			return cur, err
		}
		s := platform.APISettings{Name: cur.Name, TokenFormat: cur.TokenFormat, TokenTTL: cur.TokenTTL, Rate: cur.Rate, Upstream: cur.Upstream, Slug: cur.Slug, Routes: cur.Routes}
		for _, sc := range cur.Scopes {
			if !sc.Removed {
				s.Scopes = append(s.Scopes, platform.ScopeSpec{Name: sc.Name, EN: sc.EN, RU: sc.RU})
			}
		}
		if err := sf.settings(cmd, &s); err != nil {
			return platform.APIView{}, err
		}
		return p.APIs.UpdateAPI(cmd.Context(), platform.CLI, id, s)
	})
	sf.add(set, false)
	cmd.AddCommand(create, set,
		simple("show", "Print the API", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.APIView, error) {
			return p.APIs.API(cmd.Context(), platform.CLI, id)
		}),
		simple("rotate-secret", "Make a new introspection secret; the old one stops working at once", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.APIView, error) {
			return p.APIs.RotateSecret(cmd.Context(), platform.CLI, id)
		}),
		simple("delete", "Delete the API; every token for it stops working", func(p *platform.Platform, cmd *cobra.Command, id int64) (platform.APIView, error) {
			return p.APIs.DeleteAPI(cmd.Context(), platform.CLI, id)
		}),
	)
	var listOwner int64
	list := &cobra.Command{
		Use:   "list",
		Short: "List the APIs (of one owner with --owner)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true})
			if err != nil {
				return err
			}
			defer done()
			all, err := p.APIs.APIsOf(cmd.Context(), listOwner)
			if err != nil {
				return err
			}
			out := struct {
				APIs []view.API `json:"apis"`
			}{APIs: []view.API{}}
			for _, v := range all {
				out.APIs = append(out.APIs, view.OfAPI(v))
			}
			return e.printJSON(out)
		},
	}
	list.Flags().Int64Var(&listOwner, "owner", 0, "only this user's APIs")
	cmd.AddCommand(list)
	return cmd
}
