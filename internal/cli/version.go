package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set at build time (-ldflags "-X
// latchkey/internal/cli.version=v1.2.3 -X latchkey/internal/cli.commit=…",
// as the container build does); otherwise they come from the build
// information Go records (the module's version, and the VCS revision of a
// build in a git checkout: `make build`), or are "devel" and "unknown".
var version, commit = "", ""

// versionInfo is the version and commit of this binary.
func versionInfo() (string, string) {
	v, c := version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		if c == "" {
			modified := false
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					c = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if c != "" && modified {
				c += "-dirty"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: `Print {"version":…,"commit":…,"go":…}`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, c := versionInfo()
			return e.printJSON(map[string]string{"version": v, "commit": c, "go": runtime.Version()})
		},
	}
}
