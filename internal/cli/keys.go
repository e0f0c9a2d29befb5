package cli

import (
	"context"

	"github.com/spf13/cobra"

	"latchkey/internal/platform"
)

// keysCmd manages the keys id_tokens are signed with.
func (e *env) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the OpenID Connect signing keys"}
	printKeys := func(ctx context.Context, p *platform.Platform) error {
		keys, err := p.Signing.List(ctx)
		if err != nil {
			return err
		}
		if keys == nil {
			keys = []platform.SigningKeyInfo{}
		}
		return e.printJSON(map[string]any{"keys": keys})
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "Print the signing keys (kid, algorithm, created, current)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{})
			if err != nil {
				return err
			}
			defer done()
			return printKeys(cmd.Context(), p)
		},
	}
	var alg string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new current signing key (RS256: id_tokens and JWT access tokens; ES256: JWT access tokens, cheaper to sign); the old ones stay in the JWKS until retired",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{keys: true})
			if err != nil {
				return err
			}
			defer done()
			if _, err := p.Signing.RotateAlg(cmd.Context(), platform.CLI, alg); err != nil {
				return err
			}
			return printKeys(cmd.Context(), p)
		},
	}
	rotate.Flags().StringVar(&alg, "alg", "RS256", "RS256 or ES256")
	var kid string
	retire := &cobra.Command{
		Use:   "retire",
		Short: "Take a signing key out of the JWKS: the id_tokens it signed stop verifying",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, done, err := e.platform(cmd.Context(), use{existing: true, keys: true})
			if err != nil {
				return err
			}
			defer done()
			if err := p.Signing.Retire(cmd.Context(), platform.CLI, kid); err != nil {
				return err
			}
			return printKeys(cmd.Context(), p)
		},
	}
	retire.Flags().StringVar(&kid, "kid", "", "the key id (from keys list)")
	retire.MarkFlagRequired("kid")
	cmd.AddCommand(list, rotate, retire)
	return cmd
}
