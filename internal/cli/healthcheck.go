package cli

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd asks a running server whether it is ready, for container
// health checks in an image that has no shell or curl: it prints
// {"ok":true} when --url answers 200, and fails otherwise.
func (e *env) healthcheckCmd() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: `Ask a running server's /readyz; print {"ok":true} or fail`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: 3 * time.Second}
			resp, err := client.Get(target)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %d", target, resp.StatusCode)
			}
			return e.printJSON(map[string]bool{"ok": true})
		},
	}
	cmd.Flags().StringVar(&target, "url", "http://127.0.0.1:8080/readyz", "the readiness URL to ask")
	return cmd
}
