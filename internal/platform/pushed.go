package platform

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"strings"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Pushed authorization requests (RFC 9126): an app's server sends the
// parameters of an authorization request directly, authenticated, and gets
// a request_uri that the browser carries to /authorize instead.

// RequestURIPrefix begins every request_uri (RFC 9126 §2.2).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// PushedTTL is how long a pushed request waits for the browser.
const PushedTTL = time.Minute

// ErrNoPushedRequest refuses a request_uri that is unknown, another app's,
// used or expired.
var ErrNoPushedRequest = &Error{Kind: Invalid, Field: "request_uri", Message: "request_uri is unknown, used or expired"}

// Pushed keeps pushed authorization requests (RFC 9126).
type Pushed struct {
	*core
	store storage.Grants
}

// Push stores the app's request and returns its request_uri.
func (p *Pushed) Push(ctx context.Context, appID int64, params url.Values) (string, error) {
	uri := RequestURIPrefix + strings.ToLower(rand.Text())
	if err := p.store.CreatePushedRequest(ctx, token.HashOf(uri), appID, params.Encode(), p.now().Add(PushedTTL)); err != nil {
		return "", err
	}
	return uri, nil
}

// TakePushed returns the app's pushed request; spend uses it up (the
// request is being answered: once only).
func (p *Pushed) TakePushed(ctx context.Context, appID int64, uri string, spend bool) (url.Values, error) {
	if !strings.HasPrefix(uri, RequestURIPrefix) || len(uri) > 200 {
		return nil, ErrNoPushedRequest
	}
	raw, err := p.store.UsePushedRequest(ctx, token.HashOf(uri), appID, p.now(), spend)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNoPushedRequest
	}
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(raw)
}
