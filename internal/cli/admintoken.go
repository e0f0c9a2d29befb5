package cli

import (
	"github.com/spf13/cobra"
)

// adminTokenCmd makes and ends the credentials of the admin API.
func (e *env) adminTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin-token", Short: "Manage the tokens of the admin API (--admin-addr)"}
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: `Make an admin token; prints {"token":…}, shown this once`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{keys: true})
			if err != nil {
				return err
			}
			defer done()
			raw, err := p.Admin.CreateAdminToken(cmd.Context(), name)
			if err != nil {
				return err
			}
			return e.printJSON(map[string]string{"token": raw})
		},
	}
	var revokeName string
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: `End the admin token of that name; prints {"ok":true}`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true})
			if err != nil {
				return err
			}
			defer done()
			if err := p.Admin.RevokeAdminToken(cmd.Context(), revokeName); err != nil {
				return err
			}
			return e.printJSON(map[string]bool{"ok": true})
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for (letters, digits, '.', '_', '-')")
	create.MarkFlagRequired("name")
	revoke.Flags().StringVar(&revokeName, "name", "", "the token's name")
	revoke.MarkFlagRequired("name")
	cmd.AddCommand(create, revoke)
	return cmd
}
