package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Limits of a client ID metadata document.
const (
	maxDocument     = 5 << 10
	documentTimeout = 5 * time.Second
	maxDocumentAge  = 24 * time.Hour
	// defaultDocumentAge is how long a document is fresh when its answer
	// says nothing of caching (RFC 9111 §4.2.2's heuristic freshness).
	defaultDocumentAge = 5 * time.Minute
)

// ErrClientDocument refuses a client_id that names a client ID metadata
// document Latchkey cannot use; Reason says why, for the log and the
// client's developer.
type ErrClientDocument struct{ Reason string }

func (e *ErrClientDocument) Error() string { return "client metadata document: " + e.Reason }

// ClientDocuments are clients whose client_id is the https URL of their
// metadata document (the MCP specification's client ID metadata
// documents): fetched through the one Outbound client (its address rules),
// at most 5 KB within 5 s, kept as long as the answer's caching headers say
// (at most 24 hours), and stood for in storage by an app owned by no one.
type ClientDocuments struct {
	*core
	store storage.Registrations
	apps  *Apps
	out   *Outbound
	// Off turns the documents off (--client-metadata-documents off).
	Off bool
	// NewPerHour bounds the documents not seen before that one client
	// address may have fetched in an hour (each becomes an app): as
	// --registration-rate bounds registrations.
	NewPerHour int
	// attempts counts them, in storage: for every node at once.
	attempts interface {
		TakeAttempt(ctx context.Context, key token.Hash, limit int, since, now time.Time) (bool, time.Time, error)
	}
}

type clientAddressKey struct{}

// WithClientAddress is ctx carrying the address of the client a request
// came from, which the throttles of unauthenticated work count by.
func WithClientAddress(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddressKey{}, addr)
}

func clientAddress(ctx context.Context) string {
	addr, _ := ctx.Value(clientAddressKey{}).(string)
	return addr
}

// IsDocumentURL reports a client_id that names a metadata document.
func IsDocumentURL(clientID string) bool { return strings.HasPrefix(clientID, "https://") }

// App is the app standing for the client whose metadata document is at
// rawURL: the one stored while the document is fresh, else the document
// fetched again and the app made or brought up to date from it.
func (d *ClientDocuments) App(ctx context.Context, rawURL string) (storage.App, error) {
	if d.Off {
		return storage.App{}, &ErrClientDocument{"client metadata documents are off on this server"}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(rawURL, "#") ||
		u.Path == "" || u.Path == "/" || len(rawURL) > 2048 || !validText(rawURL) {
		return storage.App{}, &ErrClientDocument{"a client_id URL is an https URL with a path, without a fragment or user info, of at most 2048 bytes"}
	}
	known, err := d.store.GetClientDocument(ctx, rawURL)
	switch {
	case err == nil && d.now().Before(known.ExpiresAt):
		return d.apps.lookupApp(ctx, known.AppID)
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return storage.App{}, err
	}
	if known.AppID == 0 && d.NewPerHour > 0 {
		now := d.now()
		ok, _, err := d.attempts.TakeAttempt(ctx, token.HashOf("client document\x00"+clientAddress(ctx)), d.NewPerHour, now.Add(-time.Hour), now)
		if err != nil {
			return storage.App{}, err
		}
		if !ok {
			return storage.App{}, &ErrClientDocument{"too many new client metadata documents from this address: try again later"}
		}
	}
	m, fresh, err := d.fetch(ctx, rawURL)
	if err != nil {
		return storage.App{}, err
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = AuthNone
	}
	kind, err := m.normalize()
	if err != nil {
		return storage.App{}, &ErrClientDocument{err.Error()}
	}
	if kind != storage.Standalone && (m.TokenEndpointAuthMethod != AuthPrivateKey || m.JWKSURI == "") {
		return storage.App{}, &ErrClientDocument{"a client known by its metadata document is a public client (token_endpoint_auth_method none) or authenticates with private_key_jwt and its jwks_uri"}
	}
	now := d.now()
	expires := now.Add(fresh)
	if known.AppID != 0 {
		app, err := d.store.RefreshClientDocument(ctx, rawURL, expires, func(a *storage.App) error {
			if a.Type != kind {
				return &ErrClientDocument{"a client known by its metadata document keeps its authentication method"}
			}
			m.applyTo(a)
			return nil
		})
		d.apps.appChanged(known.AppID)
		return app, err
	}
	app := storage.App{Type: kind}
	m.applyTo(&app)
	_, _, svcRec := d.apps.credentials(&app)
	doc := storage.ClientDocument{URL: rawURL, ExpiresAt: expires}
	err = d.store.CreateClientDocument(ctx, &doc, &app, svcRec)
	if errors.Is(err, storage.ErrConflict) { // another request made it first
		known, err := d.store.GetClientDocument(ctx, rawURL)
		if err != nil {
			return storage.App{}, err
		}
		return d.apps.lookupApp(ctx, known.AppID)
	}
	if err != nil {
		return storage.App{}, err
	}
	d.issued(token.Service)
	return app, nil
}

// fetch reads the document at rawURL and how long it stays fresh.
func (d *ClientDocuments) fetch(ctx context.Context, rawURL string) (ClientMetadata, time.Duration, error) {
	var m ClientMetadata
	if err := d.out.CheckURL(rawURL); err != nil {
		return m, 0, &ErrClientDocument{"its address is not reachable from this server: " + ErrTargetRefused.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, documentTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	if err != nil {
		return m, 0, &ErrClientDocument{"its URL cannot be fetched"}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Latchkey client metadata")
	resp, err := d.out.Client().Do(req)
	switch {
	case errors.Is(err, ErrTargetRefused):
		return m, 0, &ErrClientDocument{"its address is not reachable from this server: " + ErrTargetRefused.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return m, 0, &ErrClientDocument{fmt.Sprintf("it did not arrive within %v", documentTimeout)}
	case err != nil:
		return m, 0, &ErrClientDocument{"it could not be fetched: " + err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, 0, &ErrClientDocument{fmt.Sprintf("its URL answered %d, not 200 (redirects are not followed)", resp.StatusCode)}
	}
	if ct, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (ct != "application/json" && !strings.HasSuffix(ct, "+json")) {
		return m, 0, &ErrClientDocument{"it is not JSON (Content-Type application/json)"}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return m, 0, &ErrClientDocument{fmt.Sprintf("it did not arrive within %v", documentTimeout)}
	case err != nil:
		return m, 0, &ErrClientDocument{"it could not be read: " + err.Error()}
	case len(body) > maxDocument:
		return m, 0, &ErrClientDocument{"it is larger than 5 KB"}
	}
	var doc struct {
		ClientMetadata
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return m, 0, &ErrClientDocument{"it is not a JSON object of client metadata: " + err.Error()}
	}
	if doc.ClientID != rawURL {
		return m, 0, &ErrClientDocument{"its client_id is not its own URL"}
	}
	if doc.ClientSecret != "" {
		return m, 0, &ErrClientDocument{"it holds a client_secret: a document is public"}
	}
	return doc.ClientMetadata, freshness(resp.Header), nil
}

// freshness is how long an answer may be kept, as its Cache-Control or
// Expires say, at most maxDocumentAge.
func freshness(h http.Header) time.Duration {
	age := defaultDocumentAge
	cc := strings.ToLower(h.Get("Cache-Control"))
	switch {
	case strings.Contains(cc, "no-store") || strings.Contains(cc, "no-cache"):
		return 0
	case strings.Contains(cc, "max-age="):
		v := cc[strings.Index(cc, "max-age=")+len("max-age="):]
		if i := strings.IndexAny(v, ", "); i >= 0 {
			v = v[:i]
		}
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			age = time.Duration(n) * time.Second
		}
	case h.Get("Expires") != "":
		if t, err := http.ParseTime(h.Get("Expires")); err == nil {
			age = time.Until(t)
		} else {
			age = 0
		}
	}
	return max(min(age, maxDocumentAge), 0)
}
