package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionCompletionAndHelp(t *testing.T) {
	c := newCLI(t)
	out, err := c.run("version")
	var v struct{ Version, Commit, Go string }
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.Commit == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("version: %q %v", out, err)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, err := c.run("completion", shell)
		if err != nil || !strings.Contains(out, "latchkey") || len(out) < 500 {
			t.Fatalf("completion %s: %d bytes, %v", shell, len(out), err)
		}
	}
	out, err = c.run()
	if err != nil || !strings.Contains(out, "Available Commands") || !strings.Contains(out, "serve") {
		t.Fatalf("a bare latchkey: %v\n%s", err, out)
	}
	if _, err := c.run("nonsense"); ExitCode(err) != 2 || !strings.Contains(err.Error(), `unknown command "nonsense"`) {
		t.Fatalf("an unknown command: %v", err)
	}
}

// Every flag of every command can come from the environment, and a
// malformed value is named with what the flag wants.
func TestEnvironmentAndMalformedValues(t *testing.T) {
	c := newCLI(t)
	c.extra["LATCHKEY_LOGIN"] = "envuser"
	c.extra["LATCHKEY_PASSWORD"] = "from-the-environment"
	var user struct{ ID int64 }
	c.ok(&user, "user", "create")
	if user.ID == 0 {
		t.Fatal("user create with its flags in the environment made no user")
	}
	delete(c.extra, "LATCHKEY_LOGIN")
	delete(c.extra, "LATCHKEY_PASSWORD")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"app", "show", "--app", "abc"}, nil, `--app: want a whole number, got "abc"`},
		{[]string{"serve", "--rate-user", "abc"}, nil, `--rate-user: want a number, got "abc"`},
		{[]string{"serve", "--code-ttl", "soon"}, nil, `--code-ttl: want a duration such as 90s, 10m or 12h, got "soon"`},
		{[]string{"app", "show"}, map[string]string{"LATCHKEY_APP": "abc"}, `LATCHKEY_APP: want a whole number, got "abc"`},
	} {
		for k, v := range tc.env {
			c.extra[k] = v
		}
		_, err := c.run(tc.args...)
		for k := range tc.env {
			delete(c.extra, k)
		}
		if ExitCode(err) != 2 || err.Error() != tc.want {
			t.Errorf("latchkey %v: %v, want exit 2 with %q", tc.args, err, tc.want)
		}
	}
}

// --config: a YAML file of flag names; the environment and the command line
// win over it; a key no command knows, or a bad value, is named.
func TestConfigFile(t *testing.T) {
	c := newCLI(t)
	file := filepath.Join(c.dir, "latchkey.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("login: fromfile\npassword: from-the-file-1\nfirst-name: File\n")
	var user struct{ Login string }
	c.ok(&user, "user", "create", "--config", file)
	if user.Login != "fromfile" {
		t.Fatalf("user create from the file: %+v", user)
	}
	c.extra["LATCHKEY_LOGIN"] = "fromenv"
	c.ok(&user, "user", "create", "--config", file)
	if user.Login != "fromenv" {
		t.Fatalf("the environment did not win over the file: %+v", user)
	}
	c.ok(&user, "user", "create", "--config", file, "--login", "fromflag")
	if user.Login != "fromflag" {
		t.Fatalf("the flag did not win: %+v", user)
	}
	delete(c.extra, "LATCHKEY_LOGIN")
	// Keys of other commands' flags are fine; unknown ones are not.
	write("login: other\npassword: from-the-file-1\npublic-url: https://lk.example\n")
	c.ok(nil, "user", "create", "--config", file)
	write("login: x\nlogn: typo\n")
	if _, err := c.run("user", "create", "--config", file); ExitCode(err) != 2 || !strings.Contains(err.Error(), `unknown key "logn"`) {
		t.Fatalf("an unknown key: %v", err)
	}
	write("rate-user: fast\n")
	if _, err := c.run("serve", "--config", file); ExitCode(err) != 2 || !strings.Contains(err.Error(), `rate-user: want a number, got "fast"`) {
		t.Fatalf("a bad value: %v", err)
	}
	if _, err := c.run("user", "create", "--config", filepath.Join(c.dir, "missing.yaml")); ExitCode(err) != 2 {
		t.Fatalf("a missing file: %v", err)
	}
}
