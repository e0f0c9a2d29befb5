// Package cli is the latchkey command: cobra commands over the platform
// layer, JSON on stdout, one-line errors. Run is the whole program, so tests
// start the real thing in-process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"latchkey/internal/config"
	"latchkey/internal/node"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// UsageError is bad input to a command: exit status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// ExitCode is the process status for the error Run returned: 0 on success,
// 2 for bad input (flags, validation, unknown ids, conflicts), 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var u *UsageError
	if errors.As(err, &u) {
		return 2
	}
	switch platform.KindOf(err) {
	case platform.Invalid, platform.NotFound, platform.Conflict, platform.Forbidden:
		return 2
	}
	return 1
}

// env is what every command shares: the environment, the streams and the
// storage configuration.
type env struct {
	getenv func(string) string
	// environ is the whole environment, "NAME=value" each, when known:
	// LATCHKEY_ variables that name no flag are reported.
	environ        []string
	stdout, stderr io.Writer
	cfg            config.Config
	configFile     string
	now            func() time.Time
	// flagErrs are the command line's malformed values, all of them.
	flagErrs config.FlagErrors
}

// flagNames are the flags of every command under root.
func flagNames(root *cobra.Command) map[string]bool {
	names := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return names
}

// Main runs the latchkey command line args (without the program name) in
// the environment environ ("NAME=value" each, as os.Environ gives it).
func Main(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return run(ctx, args, func(k string) string { return vars[k] }, environ, stdout, stderr)
}

// Run runs the latchkey command line args with getenv as the environment.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return run(ctx, args, getenv, nil, stdout, stderr)
}

func run(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, environ: environ, stdout: stdout, stderr: stderr, cfg: config.Defaults(), now: time.Now}
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	_, err := root.ExecuteContextC(ctx)
	var re *runError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return re.err
	default:
		var u *UsageError
		if errors.As(err, &u) {
			return err
		}
		return &UsageError{err}
	}
}

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "latchkey",
		Short:         "Latchkey issues and checks API access tokens (VK-compatible OAuth 2.0 server)",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// Every flag of every command can come from LATCHKEY_<NAME>;
			// required flags are checked after this. A LATCHKEY_ variable
			// that is none of them is likely misspelt: say so.
			if err := e.flagErrs.Done(); err != nil {
				return &UsageError{err}
			}
			for _, w := range config.UnknownEnv(e.environ, flagNames(cmd.Root())) {
				fmt.Fprintf(e.stderr, "latchkey: warning: %s\n", w)
			}
			if err := config.ApplyEnv(cmd.Flags(), e.getenv); err != nil {
				return &UsageError{err}
			}
			// Then the configuration file, for what flags and env left.
			if e.configFile != "" {
				if err := config.ApplyFile(cmd.Flags(), e.configFile, flagNames(cmd.Root())); err != nil {
					return &UsageError{err}
				}
			}
			st, err := config.ParseStorage(e.cfg.DB)
			if err != nil {
				return &UsageError{err}
			}
			e.cfg.Storage = st
			return nil
		},
	}
	root.PersistentFlags().StringVar(&e.cfg.DB, "db", e.cfg.DB, "storage: sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB (env LATCHKEY_DB)")
	root.PersistentFlags().StringVar(&e.configFile, "config", "", "a YAML file whose keys are flag names (public-url: …); flags and env win over it (env LATCHKEY_CONFIG)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &UsageError{config.FlagError(cmd.Flags(), err)} })
	root.AddCommand(e.serveCmd(), e.migrateCmd(), e.userCmd(), e.appCmd(), e.apiCmd(), e.groupCmd(), e.keysCmd(), e.versionCmd(), e.healthcheckCmd(), e.adminTokenCmd(), e.registrationTokenCmd(), e.upstreamCmd())
	root.CompletionOptions.HiddenDefaultCmd = false // `latchkey completion bash|zsh|fish|powershell`
	classify(root)
	var collect func(*cobra.Command)
	collect = func(c *cobra.Command) {
		e.flagErrs.Collect(c.Flags(), c.PersistentFlags())
		for _, sub := range c.Commands() {
			collect(sub)
		}
	}
	collect(root)
	// A bare `latchkey` prints the help, not an error.
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usage("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
	return root
}

// classify makes every error cobra itself reports (unknown command or flag,
// missing required flag, stray argument) a UsageError, and leaves the errors
// of the commands' own RunE as they are.
func classify(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		classify(c)
	}
	if cmd.RunE == nil {
		// A command that only groups others.
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usage("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return usage("%q needs a subcommand: %s", cmd.CommandPath(), subcommands(cmd))
		}
	} else if cmd.Args == nil {
		cmd.Args = cobra.NoArgs
	}
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := run(cmd, args); err != nil {
			return &runError{err}
		}
		return nil
	}
}

// runError marks an error returned by a command's own RunE.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }

func subcommands(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return strings.Join(names, ", ")
}

// openStore opens the configured storage, applying pending migrations.
func (e *env) openStore(ctx context.Context) (storage.Storage, error) {
	return node.OpenStorage(ctx, e.cfg.Storage)
}

// keys loads the server secret (creating it beside a SQLite database when
// unset) and derives the keyring.
func (e *env) keys() (*token.Keyring, error) {
	secrets, err := config.Secrets(e.cfg.Storage, e.getenv, e.stderr)
	if err != nil {
		return nil, &UsageError{err}
	}
	return token.NewKeyring(secrets...)
}

// use says what a command needs of the storage and the secret.
type use struct {
	// existing: the command acts on records that must exist, so a SQLite
	// database that does not exist yet is bad input, not created.
	existing bool
	// check runs before anything is written (the secret file included),
	// to refuse unknown ids first.
	check func(ctx context.Context, p *platform.Platform) error
	// keys: the command mints or opens sealed credentials.
	keys bool
}

// platform opens storage, runs u.check, and then, when u.keys, loads (or
// creates) the server secret: bad input is refused before anything is
// written.
func (e *env) platform(ctx context.Context, u use) (*platform.Platform, func(), error) {
	if u.existing {
		if st := e.cfg.Storage; st.Backend == config.SQLite {
			if _, err := os.Stat(st.Path); errors.Is(err, fs.ErrNotExist) {
				return nil, nil, usage("the database %s does not exist yet: there is nothing to act on (create a user first)", st.Path)
			}
		}
	}
	store, err := e.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	// Revocations reach the running servers: NOTIFY on PostgreSQL, the
	// revocation log on SQLite.
	p := platform.New(platform.Options{Store: store, Now: e.now, Log: log, OnRevoke: node.Announcer(e.cfg.Storage, store, log), PublicURL: e.publicURL(),
		CallbackAllow: e.cfg.CallbackTargets})
	if u.check != nil {
		if err := u.check(ctx, p); err != nil {
			store.Close()
			return nil, nil, err
		}
	}
	if u.keys {
		if p.Keys, err = e.keys(); err != nil {
			store.Close()
			return nil, nil, err
		}
	}
	return p, func() { store.Close() }, nil
}

// publicURL is the servers' public URL as the command line knows it:
// --public-url, or what serve would default to on --addr.
func (e *env) publicURL() *url.URL {
	if e.cfg.PublicURL != "" {
		if u, err := url.Parse(e.cfg.PublicURL); err == nil {
			return u
		}
	}
	scheme := "http"
	if e.cfg.Certificate != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: e.cfg.Addr}
}

// appExists and userExists are checks for use.check.
func appExists(id int64) func(context.Context, *platform.Platform) error {
	return func(ctx context.Context, p *platform.Platform) error {
		_, err := p.Apps.LookupApp(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return usage("no app with id %d", id)
		}
		return err
	}
}

func userExists(id int64) func(context.Context, *platform.Platform) error {
	return func(ctx context.Context, p *platform.Platform) error {
		_, err := p.Users.User(ctx, id)
		if platform.KindOf(err) == platform.NotFound {
			return usage("owner: no user with id %d", id)
		}
		return err
	}
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (e *env) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded storage migrations (every command also does this itself)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := e.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer store.Close()
			return e.printJSON(map[string]bool{"ok": true})
		},
	}
}
