package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		errs   []string // each must appear; none means valid
	}{
		{"the defaults are valid", func(*Config) {}, nil},
		{"a PostgreSQL URL is a storage", func(c *Config) { c.DB = "postgres://u:p@127.0.0.1:5432/db" }, nil},
		{"an unknown storage is named, its password hidden", func(c *Config) { c.DB = "mysql://root:hunter2@db/x" }, []string{"--db", "want sqlite:PATH or postgres://"}},
		{"sqlite needs a path", func(c *Config) { c.DB = "sqlite:" }, []string{"want sqlite:PATH"}},
		{"sqlite paths carry no query", func(c *Config) { c.DB = "sqlite:x.db?mode=ro" }, []string{"without ? or #"}},
		{"the address needs a port", func(c *Config) { c.Addr = "localhost" }, []string{`--addr "localhost": want host:port`}},
		{"the public URL is absolute http(s)", func(c *Config) { c.PublicURL = "ftp://x" }, []string{"--public-url"}},
		{"the public URL has no query", func(c *Config) { c.PublicURL = "https://x.example/?a=1" }, []string{"--public-url"}},
		{"the log format is text or json", func(c *Config) { c.LogFormat = "xml" }, []string{`--log-format "xml"`}},
		{"the log level is known", func(c *Config) { c.LogLevel = "loud" }, []string{`--log-level "loud"`}},
		{"lifetimes are at least a second", func(c *Config) { c.CodeTTL = time.Millisecond }, []string{"--code-ttl 1ms: want at least 1s"}},
		{"rates are positive", func(c *Config) { c.RateUser = 0 }, []string{"--rate-user 0: want a positive number"}},
		{"the cache size is not negative", func(c *Config) { c.CacheSize = -1 }, []string{"--token-cache-size -1"}},
		{"a TLS certificate needs its key", func(c *Config) { c.TLSCert = "cert.pem" }, []string{"--tls-cert and --tls-key: give both or neither"}},
		{"a TLS certificate that cannot be read", func(c *Config) { c.TLSCert, c.TLSKey = "/nonexistent/cert.pem", "/nonexistent/key.pem" }, []string{"--tls-cert, --tls-key"}},
		{"trusted proxies are CIDR ranges or addresses", func(c *Config) { c.TrustedProxies = "10.0.0.0/8, 192.0.2.1, nonsense" }, []string{`--trusted-proxies: "nonsense"`}},
		{"SQLite syncs normal or full", func(c *Config) { c.SQLiteSync = "always" }, []string{`--sqlite-sync: want normal or full, got "always"`}},
		{"every problem is reported at once", func(c *Config) { c.Addr = "x"; c.LogFormat = "xml"; c.RateService = -1 },
			[]string{"--addr", "--log-format", "--rate-service"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.change(&c)
			err := c.Validate()
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c.Storage.Backend == "" {
					t.Fatal("Validate did not parse the storage")
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows a password: %q", err)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestSQLiteSyncReachesTheStorage(t *testing.T) {
	for _, mode := range []string{"normal", "full"} {
		c := Defaults()
		c.SQLiteSync = mode
		if err := c.Validate(); err != nil || c.Storage.Sync != mode {
			t.Fatalf("--sqlite-sync %s: storage sync %q (%v)", mode, c.Storage.Sync, err)
		}
	}
}

func TestParseStorage(t *testing.T) {
	st, err := ParseStorage("sqlite:/var/lib/latchkey.db")
	if err != nil || st != (Storage{Backend: SQLite, Path: "/var/lib/latchkey.db"}) {
		t.Fatalf("sqlite: %+v, %v", st, err)
	}
	st, err = ParseStorage("postgresql://u:secret@h/db")
	if err != nil || st.Backend != Postgres || st.URL != "postgresql://u:secret@h/db" {
		t.Fatalf("postgres: %+v, %v", st, err)
	}
	if strings.Contains(st.String(), "secret") {
		t.Fatalf("String shows the password: %s", st)
	}
}

func TestApplyEnvSetsWhatFlagsLeftUnset(t *testing.T) {
	c := Defaults()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.BindServe(fs)
	if err := fs.Parse([]string{"--addr", "127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LATCHKEY_ADDR": "127.0.0.1:1", "LATCHKEY_RATE_USER": "7", "LATCHKEY_CODE_TTL": "soon"}
	err := ApplyEnv(fs, func(k string) string { return env[k] })
	if err == nil || err.Error() != `LATCHKEY_CODE_TTL: want a duration such as 90s, 10m or 12h, got "soon"` {
		t.Fatalf("a malformed value: %v, want it named", err)
	}
	if c.Addr != "127.0.0.1:9" {
		t.Fatalf("the environment overrode a flag: addr %s", c.Addr)
	}
	if c.RateUser != 7 {
		t.Fatalf("LATCHKEY_RATE_USER not applied: %v", c.RateUser)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	st := Storage{Backend: SQLite, Path: filepath.Join(dir, "l.db")}
	noEnv := func(string) string { return "" }
	var said bytes.Buffer
	first, err := Secrets(st, noEnv, &said)
	if err != nil || len(first) != 1 || len(first[0]) < 32 {
		t.Fatalf("a new secret: %v, %v", first, err)
	}
	info, err := os.Stat(SecretFile(st.Path))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the secret file: %v, mode %v; want 0600", err, info.Mode())
	}
	if !strings.Contains(said.String(), "created a server secret") {
		t.Fatalf("creating the secret was not said: %q", said.String())
	}
	again, err := Secrets(st, noEnv, &said)
	if err != nil || again[0] != first[0] {
		t.Fatal("a later command did not read the same secret")
	}
	env := func(k string) string {
		if k == SecretEnv {
			return strings.Repeat("a", 32) + ", " + strings.Repeat("b", 32)
		}
		return ""
	}
	both, err := Secrets(st, env, &said)
	if err != nil || len(both) != 2 || both[1] != strings.Repeat("b", 32) {
		t.Fatalf("rotation secrets from the environment: %v, %v", both, err)
	}
	short := func(k string) string {
		if k == SecretEnv {
			return "short"
		}
		return ""
	}
	if _, err := Secrets(st, short, &said); err == nil {
		t.Fatal("a short secret was accepted")
	}
	if _, err := Secrets(Storage{Backend: Postgres, URL: "postgres://h/db"}, noEnv, &said); err == nil || !strings.Contains(err.Error(), SecretEnv) {
		t.Fatalf("PostgreSQL without %s: %v", SecretEnv, err)
	}
}

func TestTrustedProxiesParsed(t *testing.T) {
	c := Defaults()
	c.TrustedProxies = "10.0.0.0/8, 192.0.2.1,::1"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Proxies) != 3 || c.Proxies[1].Bits() != 32 || c.Proxies[2].Bits() != 128 {
		t.Fatalf("Proxies = %v", c.Proxies)
	}
}
