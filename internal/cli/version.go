package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X latchkey/internal/cli.version=v1.2.3");
// otherwise the module's version from the build info, or "devel".
var version = ""

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: `Print {"version":…,"commit":…,"go":…}`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, commit := version, "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
					v = info.Main.Version
				}
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			if v == "" {
				v = "devel"
			}
			return e.printJSON(map[string]string{"version": v, "commit": commit, "go": runtime.Version()})
		},
	}
}
