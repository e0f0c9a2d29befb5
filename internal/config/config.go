// Package config turns flags and LATCHKEY_* environment variables into a
// validated Config, and finds or creates the server secret.
package config

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"latchkey/internal/token"
)

// DefaultDB is the storage used when neither --db nor LATCHKEY_DB is given.
const DefaultDB = "sqlite:latchkey.db"

// Config is everything the server and the CLI are configured with.
type Config struct {
	// DB is the storage DSN as given (--db); Storage is what it names,
	// set by Validate or ParseStorage, and what everything else reads.
	DB        string
	Storage   Storage
	Addr      string
	PublicURL string
	Demo      bool
	LogFormat string
	LogLevel  string

	CodeTTL          time.Duration
	ImplicitTokenTTL time.Duration
	CodeTokenTTL     time.Duration
	AllowPlainPKCE   bool
	RefreshTokenTTL  time.Duration
	RefreshGrace     time.Duration
	// UpstreamTimeout bounds the gateway's wait for an upstream's answer.
	UpstreamTimeout time.Duration
	// Registration is who may register clients (RFC 7591): off, token
	// (with an initial access token) or open; RegistrationRate how many
	// registrations an hour one client address may make when open.
	Registration     string
	RegistrationRate int
	// ClientMetadataDocuments is whether a client_id may be the https URL
	// of the client's metadata document: on or off.
	ClientMetadataDocuments string
	// RequireMFA: everyone signs in with a second factor (a passkey or an
	// authenticator app), and one who has none enrols one first.
	RequireMFA bool

	// TLSCert and TLSKey serve HTTPS (and HTTP/2); both or neither.
	// Certificate is the pair, loaded by Validate.
	TLSCert, TLSKey string
	Certificate     *tls.Certificate
	// TrustedProxies is the --trusted-proxies list as given; Proxies the
	// ranges it names, set by Validate.
	TrustedProxies string
	Proxies        []netip.Prefix
	// CallbackAllow is --callback-allow as given; CallbackTargets the
	// ranges it names, set by Validate: Callback API targets allowed on
	// loopback, private or link-local addresses.
	CallbackAllow   string
	CallbackTargets []netip.Prefix

	RateUser      float64
	RateCommunity float64
	RateService   float64
	CacheSize     int
	// SQLiteSync is --sqlite-sync: "normal" (a commit survives the process
	// being killed) or "full" (it survives power loss too).
	SQLiteSync string
	// Lang is the pages' default language (en, ru).
	Lang string
	// AdminAddr is the admin listener's address ("" for none).
	AdminAddr string
	// OTLPEndpoint is where traces go (OTLP over HTTP); "" with no
	// OTEL_EXPORTER_OTLP_ENDPOINT either: no tracing.
	OTLPEndpoint string
}

// Defaults are the values of every flag left unset.
func Defaults() Config {
	return Config{
		DB:                      DefaultDB,
		Addr:                    "127.0.0.1:8080",
		LogFormat:               "text",
		LogLevel:                "info",
		CodeTTL:                 10 * time.Minute,
		ImplicitTokenTTL:        24 * time.Hour,
		CodeTokenTTL:            12 * time.Hour,
		RefreshTokenTTL:         4320 * time.Hour,
		UpstreamTimeout:         30 * time.Second,
		Registration:            "off",
		RegistrationRate:        20,
		ClientMetadataDocuments: "on",
		RateUser:                3,
		RateCommunity:           20,
		RateService:             3,
		CacheSize:               100_000,
		SQLiteSync:              "normal",
		Lang:                    "en",
	}
}

// BindServe registers the serve flags on fs.
func (c *Config) BindServe(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "absolute URL the server is reached at, for links it prints and /blank.html (default http://ADDR)")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "seed a demo user, apps and community once, and print how to log in")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "serve HTTPS (and HTTP/2) with this certificate file (PEM); with --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "the private key of --tls-cert (PEM)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "CIDR ranges (comma-separated) of proxies whose X-Forwarded-For / Forwarded and X-Forwarded-Proto are believed")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (API calls and the token endpoints are logged at debug)")
	fs.DurationVar(&c.CodeTTL, "code-ttl", c.CodeTTL, "lifetime of an authorization code")
	fs.DurationVar(&c.ImplicitTokenTTL, "implicit-token-ttl", c.ImplicitTokenTTL, "lifetime of a user token from the implicit flow (without offline)")
	fs.DurationVar(&c.CodeTokenTTL, "code-token-ttl", c.CodeTokenTTL, "lifetime of a user token from the code flow (without offline)")
	fs.BoolVar(&c.AllowPlainPKCE, "allow-plain-pkce", c.AllowPlainPKCE, "accept code_challenge_method=plain (S256 is always accepted)")
	fs.DurationVar(&c.RefreshTokenTTL, "refresh-token-ttl", c.RefreshTokenTTL, "lifetime of a refresh token")
	fs.DurationVar(&c.RefreshGrace, "refresh-grace", c.RefreshGrace, "how long after its first use a spent refresh token may be retried without revoking its grant (0: never)")
	fs.DurationVar(&c.UpstreamTimeout, "upstream-timeout", c.UpstreamTimeout, "how long the gateway waits for an API's upstream to answer (then 504)")
	fs.StringVar(&c.Registration, "registration", c.Registration, "dynamic client registration (RFC 7591) at /oauth/register: off, token (with an initial access token from `latchkey registration-token create`) or open (anyone, throttled per address)")
	fs.BoolVar(&c.RequireMFA, "require-mfa", c.RequireMFA, "everyone signs in with a second factor (a passkey or an authenticator app); a person without one is sent to add one first")
	fs.StringVar(&c.ClientMetadataDocuments, "client-metadata-documents", c.ClientMetadataDocuments, "on: a client_id at /authorize may be the https URL of the client's metadata document, fetched (5 KB, 5 s; not from loopback or private addresses unless --callback-allow lists them) and cached as its headers say, at most 24 h; off: never")
	fs.IntVar(&c.RegistrationRate, "registration-rate", c.RegistrationRate, "with --registration open: registrations an hour from one client address")
	fs.Float64Var(&c.RateUser, "rate-user", c.RateUser, "API requests per second per user token")
	fs.Float64Var(&c.RateCommunity, "rate-community", c.RateCommunity, "API requests per second per community token")
	fs.Float64Var(&c.RateService, "rate-service", c.RateService, "API requests per second per service token")
	fs.IntVar(&c.CacheSize, "token-cache-size", c.CacheSize, "how many checked tokens each node keeps in memory")
	fs.StringVar(&c.SQLiteSync, "sqlite-sync", c.SQLiteSync, "when SQLite commits reach the disk: normal (a write survives the process being killed; the WAL is synced at checkpoints) or full (synced at every commit: it survives power loss too; group commit shares each sync among concurrent writes)")
	fs.StringVar(&c.CallbackAllow, "callback-allow", c.CallbackAllow, "CIDR ranges or addresses (comma-separated) on loopback, private or link-local networks that Callback API servers may be at (refused otherwise)")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "serve /metrics, /debug/pprof/ and the admin API /admin/v1/ on this address (host:port) instead of /metrics on --addr; keep it private")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", c.OTLPEndpoint, "send OpenTelemetry traces (OTLP over HTTP) to this URL, e.g. http://collector:4318; the standard OTEL_EXPORTER_OTLP_* variables work too")
	fs.StringVar(&c.Lang, "lang", c.Lang, "the pages' default language, en or ru (Accept-Language, a lang cookie or VK ID's lang_id choose another)")
}

// prefixes reads a comma-separated list of CIDR ranges or addresses.
// Prefixes reads a comma-separated list of CIDR ranges or addresses, as
// --callback-allow takes them.
func Prefixes(flag, list string) ([]netip.Prefix, error) { return prefixes(flag, list) }

func prefixes(flag, list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(list, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			if a, err2 := netip.ParseAddr(part); err2 == nil {
				p, err = netip.PrefixFrom(a, a.BitLen()), nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR range or an address", flag, part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// EnvName is the environment variable that sets a flag: LATCHKEY_ and the
// flag's name in upper case with dashes as underscores.
func EnvName(flag string) string {
	return "LATCHKEY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// otherEnv are the LATCHKEY_ variables that are no flag: the server
// secret, and those the tests read.
var otherEnv = map[string]bool{"LATCHKEY_SECRET": true, "LATCHKEY_TEST_POSTGRES": true, "LATCHKEY_CHROMIUM": true, "LATCHKEY_SCREENSHOTS": true}

// UnknownEnv says, for each LATCHKEY_ variable of environ that sets no
// flag of flags and is none of otherEnv, that it is ignored, and which
// known one it may be a misspelling of.
func UnknownEnv(environ []string, flags map[string]bool) []string {
	known := map[string]bool{}
	for name := range otherEnv {
		known[name] = true
	}
	for f := range flags {
		known[EnvName(f)] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "LATCHKEY_") || known[name] {
			continue
		}
		msg := "the environment variable " + name + " sets nothing and is ignored"
		if near := nearest(name, known); near != "" {
			msg += " (did you mean " + near + "?)"
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}

// nearest is the name of known within two edits of name, if any.
func nearest(name string, known map[string]bool) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(name, k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// ApplyEnv sets every flag of fs that was not given on the command line from
// its environment variable, and reports every bad value at once.
func ApplyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: want %s, got %q", EnvName(f.Name), want(f), v))
			}
		}
	})
	return oneLine(errs)
}

// want says what a flag's value must be, for errors.
func want(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "int", "int64", "uint", "uint64":
		return "a whole number"
	case "float64":
		return "a number"
	case "duration":
		return "a duration such as 90s, 10m or 12h"
	case "bool":
		return "true or false"
	}
	return "a " + f.Value.Type()
}

var badFlagValue = regexp.MustCompile(`^invalid argument "(.*)" for "(?:-\w, )?--([\w-]+)" flag`)

// FlagError rewrites pflag's "invalid argument" errors to name the flag
// and what it wants: `--rate-user: want a number, got "abc"`.
func FlagError(fs *pflag.FlagSet, err error) error {
	m := badFlagValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	f := fs.Lookup(m[2])
	if f == nil {
		return err
	}
	return fmt.Errorf("--%s: want %s, got %q", f.Name, want(f), m[1])
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	if st, err := ParseStorage(c.DB); err != nil {
		errs = append(errs, err)
	} else {
		c.Storage = st
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: want host:port", c.Addr))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("--public-url %q: want an absolute http or https URL without query or fragment", c.PublicURL))
		}
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("--admin-addr %q: want host:port", c.AdminAddr))
		}
	}
	if c.OTLPEndpoint != "" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--otlp-endpoint %q: want an http or https URL", c.OTLPEndpoint))
		}
	}
	if c.Lang != "en" && c.Lang != "ru" {
		errs = append(errs, fmt.Errorf("--lang: want en or ru, got %q", c.Lang))
	}
	switch c.SQLiteSync {
	case "normal", "full":
		c.Storage.Sync = c.SQLiteSync
	default:
		errs = append(errs, fmt.Errorf("--sqlite-sync: want normal or full, got %q", c.SQLiteSync))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key: give both or neither"))
	} else if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("--tls-cert, --tls-key: %v", err))
		} else {
			c.Certificate = &cert
		}
	}
	var err error
	if c.Proxies, err = prefixes("--trusted-proxies", c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.CallbackTargets, err = prefixes("--callback-allow", c.CallbackAllow); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"code-ttl", c.CodeTTL}, {"implicit-token-ttl", c.ImplicitTokenTTL}, {"code-token-ttl", c.CodeTokenTTL}, {"refresh-token-ttl", c.RefreshTokenTTL}} {
		if d.v < time.Second {
			errs = append(errs, fmt.Errorf("--%s %v: want at least 1s", d.name, d.v))
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"rate-user", c.RateUser}, {"rate-community", c.RateCommunity}, {"rate-service", c.RateService}} {
		if !(r.v > 0) {
			errs = append(errs, fmt.Errorf("--%s %v: want a positive number", r.name, r.v))
		}
	}
	if c.Registration != "off" && c.Registration != "token" && c.Registration != "open" {
		errs = append(errs, fmt.Errorf("--registration %q: want off, token or open", c.Registration))
	}
	if c.ClientMetadataDocuments != "on" && c.ClientMetadataDocuments != "off" {
		errs = append(errs, fmt.Errorf("--client-metadata-documents %q: want on or off", c.ClientMetadataDocuments))
	}
	if c.RegistrationRate < 1 || c.RegistrationRate > 1_000_000 {
		errs = append(errs, fmt.Errorf("--registration-rate %d: want 1 to 1000000 an hour", c.RegistrationRate))
	}
	if c.UpstreamTimeout < time.Millisecond || c.UpstreamTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--upstream-timeout %v: want 1ms to 10m", c.UpstreamTimeout))
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > time.Hour {
		errs = append(errs, fmt.Errorf("--refresh-grace %v: want 0 to 1h", c.RefreshGrace))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("--token-cache-size %d: want 0 or more", c.CacheSize))
	}
	return oneLine(errs)
}

// Backends a storage DSN can name.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Storage is a parsed storage DSN: which backend, and what it opens.
type Storage struct {
	Backend string // SQLite or Postgres
	// Path is the SQLite database file.
	Path string
	// URL is the PostgreSQL connection URL.
	URL string
	// Sync is how SQLite syncs its commits: "normal" (the default when
	// empty) or "full".
	Sync string
}

// String is the DSN, with a PostgreSQL password hidden (for logs).
func (s Storage) String() string {
	if s.Backend == SQLite {
		return "sqlite:" + s.Path
	}
	return redact(s.URL)
}

// ParseStorage reads a storage DSN: "sqlite:PATH" or "postgres://…".
func ParseStorage(dsn string) (Storage, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") {
			return Storage{}, fmt.Errorf("--db %q: want sqlite:PATH (a file path without ? or #)", dsn)
		}
		return Storage{Backend: SQLite, Path: path}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			return Storage{}, fmt.Errorf("--db: bad PostgreSQL URL: %v", err)
		}
		return Storage{Backend: Postgres, URL: dsn}, nil
	}
	return Storage{}, fmt.Errorf("--db %q: want sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB", redact(dsn))
}

// redact hides a password in a URL-shaped DSN for error messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return dsn
}

// SecretEnv is the environment variable holding the server secrets.
const SecretEnv = "LATCHKEY_SECRET"

// Secrets returns the server secrets: from LATCHKEY_SECRET (several,
// separated by commas: the first signs, all verify) or, for SQLite, from the
// file beside the database, which is created with a random secret when it
// does not exist yet (saying so on stderr).
func Secrets(st Storage, getenv func(string) string, stderr io.Writer) ([]string, error) {
	if v := getenv(SecretEnv); v != "" {
		var out []string
		var errs []error
		for i, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if len(s) < token.MinSecretLen {
				errs = append(errs, fmt.Errorf("%s: secret %d is %d characters, want at least %d", SecretEnv, i+1, len(s), token.MinSecretLen))
			}
			out = append(out, s)
		}
		return out, errors.Join(errs...)
	}
	if st.Backend != SQLite {
		return nil, fmt.Errorf("%s is required with PostgreSQL: set it to a random string of at least %d characters, the same on every node", SecretEnv, token.MinSecretLen)
	}
	file := SecretFile(st.Path)
	b, err := os.ReadFile(file)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < token.MinSecretLen {
			return nil, fmt.Errorf("server secret file %s holds %d characters, want at least %d", file, len(s), token.MinSecretLen)
		}
		return []string{s}, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, OwnedByAnother(file, "read the server secret")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	if dir := filepath.Dir(file); !isDir(dir) {
		return nil, fmt.Errorf("--db sqlite:%s: the directory %s does not exist: create it, or name another", st.Path, dir)
	}
	// Written to a temporary file and linked into place, so that a command
	// running at the same moment sees either no file or the whole secret.
	s := rand.Text() + rand.Text() // 2×26 base32 characters, 260 bits
	tmp, err := os.CreateTemp(filepath.Dir(file), ".latchkey-secret-*")
	if errors.Is(err, fs.ErrPermission) {
		return nil, OwnedByAnother(filepath.Dir(file), "create the server secret in")
	}
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(s + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("server secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	if err := os.Link(tmp.Name(), file); errors.Is(err, fs.ErrExist) {
		return Secrets(st, getenv, stderr) // another command created it first
	} else if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	fmt.Fprintf(stderr, "latchkey: created a server secret in %s (mode 0600); keep it with the database, tokens depend on it\n", file)
	return []string{s}, nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// OwnedByAnother explains a file or directory of the server's this
// process may not use (doing says for what): most often a command run as
// root made it before the service, which runs as another user, started.
// It names the owner and what to run.
func OwnedByAnother(path, doing string) error {
	owner := "another user"
	if uid, ok := fileOwner(path); ok {
		owner = "uid " + strconv.Itoa(uid)
	}
	dir := path
	if !isDir(path) {
		dir = filepath.Dir(path)
	}
	return fmt.Errorf("cannot %s %s: it belongs to %s, and this command runs as uid %d. "+
		"A command run as another user (root, most often) made it: run latchkey commands as the service's user (docs/operations.md), "+
		"or give the files to this one: chown -R %d %s", doing, path, owner, os.Getuid(), os.Getuid(), dir)
}

// SecretFile is where the generated secret of a SQLite database lives.
func SecretFile(dbPath string) string {
	return filepath.Join(filepath.Dir(dbPath), filepath.Base(dbPath)+".secret")
}

// oneLine joins several problems into one error on one line.
func oneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// ConfigEnv names the configuration file when --config is not given.
const ConfigEnv = "LATCHKEY_CONFIG"

// ApplyFile sets, from the YAML file path, every flag of fs that neither
// the command line nor the environment set: its keys are flag names
// (`public-url: https://…`), lists for repeatable flags. A key that is no
// flag of any command (known) is an error, and so is a value the flag
// refuses; keys of other commands' flags are left to those commands.
func ApplyFile(fs *pflag.FlagSet, path string, known map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %v", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		return fmt.Errorf("--config %s: not YAML: %v", path, err)
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if !known[key] {
			errs = append(errs, fmt.Errorf("--config %s: unknown key %q", path, key))
			continue
		}
		f := fs.Lookup(key)
		if f == nil || f.Changed || key == "config" {
			continue
		}
		items, isList := values[key].([]any)
		if !isList {
			items = []any{values[key]}
		}
		for _, item := range items {
			if err := fs.Set(key, fmt.Sprint(item)); err != nil {
				errs = append(errs, fmt.Errorf("--config %s: %s: want %s, got %q", path, key, want(f), fmt.Sprint(item)))
				break
			}
		}
	}
	return oneLine(errs)
}

// FlagErrors collects the malformed values of a command line, so that
// every one is reported at once: pflag stops at the first.
type FlagErrors struct {
	collecting bool
	errs       []error
}

// lenient is a flag's value that, while its FlagErrors collects, records a
// malformed value instead of failing the parse.
type lenient struct {
	pflag.Value
	f *pflag.Flag
	c *FlagErrors
}

func (v *lenient) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil && v.c.collecting {
		v.c.errs = append(v.c.errs, fmt.Errorf("--%s: want %s, got %q", v.f.Name, want(v.f), s))
		return nil
	}
	return err
}

// Collect makes every flag of the flag sets record malformed values in c
// until Done.
func (c *FlagErrors) Collect(sets ...*pflag.FlagSet) {
	c.collecting = true
	for _, fs := range sets {
		fs.VisitAll(func(f *pflag.Flag) {
			if _, ok := f.Value.(*lenient); !ok {
				f.Value = &lenient{Value: f.Value, f: f, c: c}
			}
		})
	}
}

// Done ends the collecting (the environment and the configuration file
// report their own problems) and returns what was collected, in one line.
func (c *FlagErrors) Done() error {
	c.collecting = false
	return oneLine(c.errs)
}
