// Package deploy holds what runs Latchkey outside a developer's machine: a
// container image, a compose file with PostgreSQL, two nodes and a proxy,
// and a systemd unit. Its test checks them with the reference tools: the
// Dockerfile with BuildKit's parser and linter, the compose file with
// compose-go against the Compose specification, and the unit with
// systemd-analyze.
package deploy

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"latchkey/internal/testenv"
)

// The Dockerfile parses and lints clean, builds in a stage of its own and
// ships a non-root, static image with a health check and exec-form
// commands.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		t.Errorf("parser: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, _ []parser.Range) {
		t.Errorf("lint %s: %s", rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(stages))
	}
	// The build uses the toolchain go.mod names and stamps the version and
	// commit it is given.
	var toolchain, stamped bool
	for _, cmd := range stages[0].Commands {
		switch c := cmd.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				toolchain = toolchain || kv.Key == "GOTOOLCHAIN" && kv.Value == "auto"
			}
		case *instructions.RunCommand:
			line := strings.Join(c.CmdLine, " ")
			stamped = stamped || strings.Contains(line, "cli.version=${VERSION}") && strings.Contains(line, "cli.commit=${COMMIT}")
		}
	}
	if !toolchain || !stamped {
		t.Errorf("the build stage: GOTOOLCHAIN=auto %v, version and commit stamped %v; want both", toolchain, stamped)
	}
	final := stages[len(stages)-1]
	var user string
	var health, entry bool
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = len(c.Health.Test) > 1 && c.Health.Test[0] == "CMD"
		case *instructions.EntrypointCommand:
			entry = !c.PrependShell
		case *instructions.CmdCommand:
			if c.PrependShell {
				t.Error("CMD in shell form: the image has no shell")
			}
		case *instructions.AddCommand:
			t.Error("ADD in the runtime stage: use COPY")
		}
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("the image runs as %q: want a non-root user", user)
	}
	if !health || !entry {
		t.Errorf("health check %v, exec-form entrypoint %v: want both", health, entry)
	}
	if final.BaseName != "scratch" {
		t.Errorf("the runtime stage is FROM %s: want scratch (a static binary and nothing else)", final.BaseName)
	}
}

// The compose file is valid Compose (the specification's schema and
// compose-go's checks), runs two nodes and a proxy in front, read-only,
// and needs the secret and the database password from the environment.
func TestComposeFile(t *testing.T) {
	t.Setenv("LATCHKEY_SECRET", strings.Repeat("s", 32))
	t.Setenv("POSTGRES_PASSWORD", "p")
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithOsEnv, cli.WithWorkingDirectory("."))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := p.ServiceNames()
	for _, want := range []string{"postgres", "migrate", "node1", "node2", "proxy"} {
		if !slices.Contains(names, want) {
			t.Errorf("no service %s in %v", want, names)
		}
	}
	for _, n := range []string{"node1", "node2"} {
		s, err := p.GetService(n)
		if err != nil {
			t.Fatal(err)
		}
		if !s.ReadOnly || s.Environment["LATCHKEY_SECRET"] == nil || !strings.HasPrefix(*s.Environment["LATCHKEY_DB"], "postgres://") {
			t.Errorf("%s: read-only %v, environment %v", n, s.ReadOnly, s.Environment)
		}
	}
	// Without the secret the file refuses to start anything.
	os.Unsetenv("LATCHKEY_SECRET")
	opts, _ = cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithOsEnv, cli.WithWorkingDirectory("."))
	if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "LATCHKEY_SECRET") {
		t.Errorf("without LATCHKEY_SECRET: %v, want a refusal naming it", err)
	}
}

// The systemd unit passes systemd-analyze verify, and its hardening
// leaves the service only its state directory to write.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Missing(t, "systemd-analyze (apt-get install systemd)")
	}
	unit, err := os.ReadFile("latchkey.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=latchkey", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	// verify checks that ExecStart's program exists: point it at a built
	// binary.
	dir := t.TempDir()
	bin := filepath.Join(dir, "latchkey")
	build := exec.Command("go", "build", "-o", bin, "latchkey/cmd/latchkey")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "latchkey.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/latchkey", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The unit's command line sets nothing that the operator's settings
	// set: a db: in the YAML file the environment file names is the
	// database the service opens; without settings, latchkey.db in the
	// state directory.
	settings := unitSettings(string(unit))
	if settings["EnvironmentFile"] != "-/etc/latchkey/env" || settings["WorkingDirectory"] != "%S/latchkey" || settings["StateDirectory"] != "latchkey" {
		t.Fatalf("the unit's environment file, working and state directories: %v", settings)
	}
	argv := strings.Fields(settings["ExecStart"])
	argv[0] = bin
	state := t.TempDir()
	yaml := filepath.Join(t.TempDir(), "latchkey.yaml")
	fromFile := filepath.Join(t.TempDir(), "from-the-config-file.db")
	if err := os.WriteFile(yaml, []byte("db: sqlite:"+fromFile+"\naddr: 127.0.0.1:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serveAsTheUnit(t, argv, state, "LATCHKEY_CONFIG="+yaml+"\nLATCHKEY_SECRET="+strings.Repeat("s", 40)+"\n")
	if _, err := os.Stat(fromFile); err != nil {
		t.Errorf("the service did not open the db: of its configuration file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "latchkey.db")); err == nil {
		t.Error("the service opened latchkey.db in its state directory, not the db: of its configuration file")
	}
	serveAsTheUnit(t, argv, state, "LATCHKEY_ADDR=127.0.0.1:0\n")
	if _, err := os.Stat(filepath.Join(state, "latchkey.db")); err != nil {
		t.Errorf("without settings the service did not open latchkey.db in its state directory: %v", err)
	}
}

// unitSettings reads a unit file's Key=Value lines (the last of a key).
func unitSettings(unit string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(unit) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

// serveAsTheUnit runs the unit's command line in dir with the variables of
// envFile (its format: NAME=value lines), as systemd would, until it
// listens, and stops it.
func serveAsTheUnit(t *testing.T, argv []string, dir, envFile string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for line := range strings.Lines(envFile) {
		cmd.Env = append(cmd.Env, strings.TrimSpace(line))
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if strings.Contains(lines.Text(), "msg=listening") {
			return
		}
	}
	t.Fatalf("the service ended without listening: %v", cmd.Wait())
}
