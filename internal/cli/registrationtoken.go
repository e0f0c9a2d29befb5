package cli

import (
	"time"

	"github.com/spf13/cobra"

	"latchkey/internal/platform"
)

// registrationTokenCmd makes, lists and revokes the initial access tokens of
// dynamic client registration (--registration token).
func (e *env) registrationTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "registration-token", Short: "Manage the initial access tokens clients register with (--registration token)"}
	var name string
	var ttl time.Duration
	var maxUses int
	create := &cobra.Command{
		Use:   "create",
		Short: `Make an initial access token; prints {"token":…}, shown this once`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{})
			if err != nil {
				return err
			}
			defer done()
			t, err := p.Registrations.CreateToken(cmd.Context(), platform.CLI, name, ttl, maxUses)
			if err != nil {
				return err
			}
			return e.printJSON(map[string]string{"token": t.Token})
		},
	}
	create.Flags().StringVar(&name, "name", "", "who or what the token is for")
	create.Flags().DurationVar(&ttl, "ttl", 0, "how long it can be used (0: until revoked)")
	create.Flags().IntVar(&maxUses, "max-uses", 0, "how many clients may register with it (0: any number)")
	create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: `List the initial access tokens (never the tokens themselves); prints {"tokens":[…]}`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true})
			if err != nil {
				return err
			}
			defer done()
			tokens, err := p.Registrations.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			type row struct {
				ID        int64  `json:"id"`
				Name      string `json:"name"`
				Uses      int    `json:"uses"`
				MaxUses   int    `json:"max_uses"`
				CreatedAt int64  `json:"created_at"`
				ExpiresAt int64  `json:"expires_at"`
				RevokedAt int64  `json:"revoked_at"`
			}
			rows := []row{}
			for _, t := range tokens {
				rows = append(rows, row{t.ID, t.Name, t.Uses, t.MaxUses, t.CreatedAt.Unix(), unixOrZero(t.ExpiresAt), unixOrZero(t.RevokedAt)})
			}
			return e.printJSON(map[string]any{"tokens": rows})
		},
	}

	var id int64
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: `Revoke an initial access token (clients registered with it stay); prints {"ok":true}`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true})
			if err != nil {
				return err
			}
			defer done()
			if err := p.Registrations.RevokeToken(cmd.Context(), platform.CLI, id); err != nil {
				return err
			}
			return e.printJSON(map[string]bool{"ok": true})
		},
	}
	revoke.Flags().Int64Var(&id, "id", 0, "the token's id (registration-token list)")
	revoke.MarkFlagRequired("id")
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// unixOrZero is t in Unix seconds, 0 for the zero time ("never").
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
