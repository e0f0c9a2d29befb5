package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/dpop"
	"latchkey/internal/platform"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// stub is the domain layer for unit tests of the token endpoint: app 1 with
// secret "s3cret", client credentials on; codes always refused.
type stub struct{ issued int }

func (s *stub) LookupApp(_ context.Context, id int64) (storage.App, error) {
	return lookup(context.Background(), id)
}
func (s *stub) AuthenticateClient(_ context.Context, id int64, secret string) (storage.App, token.Hash, error) {
	a, err := lookup(context.Background(), id)
	switch {
	case err != nil:
		return a, token.Hash{}, platform.ErrUnknownClient
	case secret != "s3cret":
		return a, token.Hash{}, platform.ErrBadSecret
	}
	a.ClientCredentials = true
	return a, token.HashOf(secret), nil
}
func (s *stub) MayGrantFor(context.Context, int64, []int64) error { return nil }
func (s *stub) LookupCommunity(context.Context, int64) (storage.Community, error) {
	return storage.Community{}, storage.ErrNotFound
}
func (s *stub) User(context.Context, int64) (storage.User, error) {
	return storage.User{}, storage.ErrNotFound
}

// The stub's Issuer: client credentials are issued, nothing else.
func (s *stub) ClientCredentials(_ context.Context, app storage.App, _ token.Hash, _ string, _ *storage.API, _ scope.Mask, _ string) (platform.Issued, error) {
	if !app.ClientCredentials {
		return platform.Issued{}, platform.ErrClientCredentialsOff
	}
	s.issued++
	return platform.Issued{Access: "lks1" + strings.Repeat("0", 60)}, nil
}
func (s *stub) Issue(context.Context, platform.Issuance) (platform.Issued, error) {
	return platform.Issued{}, errors.New("no user tokens in this test")
}
func (s *stub) Communities(context.Context, platform.CommunityIssuance) ([]platform.CommunityToken, error) {
	return nil, errors.New("no community tokens in this test")
}
func (s *stub) Exchange(context.Context, platform.ExchangeRequest) (platform.Issued, error) {
	return platform.Issued{}, platform.ErrSubjectInvalid
}
func (s *stub) Claims(storage.User, scope.Mask) platform.UserClaims { return platform.UserClaims{} }
func (s *stub) IDTokenOf(context.Context, string, int64) (platform.IDClaims, error) {
	return platform.IDClaims{}, platform.ErrBadIDToken
}
func (s *stub) CheckToken(context.Context, string) (storage.Token, error) {
	return storage.Token{}, platform.ErrTokenInvalid
}
func (s *stub) CheckAccessToken(context.Context, string) (storage.Token, error) {
	return storage.Token{}, platform.ErrTokenInvalid
}

// noAPIs knows no API: every resource but the built-in API is unknown.
type noAPIs struct{}

func (noAPIs) Resource(_ context.Context, r string) (*storage.API, error) {
	if r == "" || r == "https://lk.example/method" {
		return nil, nil
	}
	return nil, platform.ErrUnknownResource
}
func (noAPIs) AuthenticateAPI(context.Context, string, string) (storage.API, error) {
	return storage.API{}, platform.ErrBadAPICredentials
}
func (noAPIs) Lookup(context.Context, int64) (storage.API, error) {
	return storage.API{}, storage.ErrNotFound
}
func (noAPIs) BuiltinIdentifier() string                                         { return "https://lk.example/method" }
func (noAPIs) GatewayIdentifier(slug string) string                              { return "https://lk.example/api/" + slug }
func (s *stub) RevokeToken(context.Context, platform.Actor, int64, string) error { return nil }
func (s *stub) EndSignIn(context.Context, platform.Actor, storage.Token) error   { return nil }
func (s *stub) RemoveAppAccess(context.Context, platform.Actor, int64, int64) error {
	return nil
}
func (s *stub) CheckProof(context.Context, string, string, string, string) (dpop.Proof, error) {
	return dpop.Proof{}, &dpop.Error{Reason: "no proofs in this test"}
}
func (s *stub) DPoPNonce() string { return "" }

func (s *stub) CheckBinding(context.Context, storage.Token, bool, string, string, string, string) error {
	return nil
}
func (s *stub) Push(context.Context, int64, url.Values) (string, error) { return "", nil }
func (s *stub) TakePushed(context.Context, int64, string, bool) (url.Values, error) {
	return nil, platform.ErrNoPushedRequest
}

type noCodes struct{}

func (noCodes) Issue(context.Context, platform.CodeRequest, time.Duration) (string, error) {
	return "", nil
}
func (noCodes) Redeem(context.Context, string, platform.Redemption) (storage.Code, *storage.Code, error) {
	return storage.Code{}, nil, platform.ErrCodeInvalid
}
func (noCodes) Spend(context.Context, storage.Code) error { return platform.ErrCodeInvalid }

type noRefreshes struct{}

func (noRefreshes) Rotate(context.Context, string, int64, storage.Holder) (platform.Grant, string, error) {
	return platform.Grant{}, "", platform.ErrRefreshInvalid
}
func (noRefreshes) Peek(context.Context, string, int64) (platform.Grant, error) {
	return platform.Grant{}, platform.ErrRefreshInvalid
}

func (noRefreshes) Keep(context.Context, string, int64, string) (platform.Grant, error) {
	return platform.Grant{}, platform.ErrRefreshInvalid
}

type noDevices struct{}

func (noDevices) Start(context.Context, int64, scope.Mask, int64, scope.Mask) (string, string, error) {
	return "", "", nil
}
func (noDevices) Poll(context.Context, string, int64) (storage.DeviceCode, error) {
	return storage.DeviceCode{}, platform.ErrDeviceInvalid
}

type noConsents struct{}

func (noConsents) Check(context.Context, int64, int64, scope.Mask, bool) (platform.Decision, error) {
	return platform.Decision{}, nil
}
func (noConsents) Grant(context.Context, int64, int64, scope.Mask, *platform.Decision, bool) error {
	return nil
}
func (noConsents) CheckAPI(context.Context, int64, int64, int64, scope.Mask, scope.Mask, bool) (platform.Decision, error) {
	return platform.Decision{}, nil
}
func (noConsents) GrantAPI(context.Context, int64, int64, int64, scope.Mask, scope.Mask) error {
	return nil
}

type noSigner struct{}

func (noSigner) JWKS(context.Context) (jose.JSONWebKeySet, error) {
	return jose.JSONWebKeySet{}, nil
}

func newTestProvider(s *stub) *Provider {
	pub, _ := url.Parse("https://lk.example")
	return New(Deps{Platform: s, Issuer: s, APIs: noAPIs{}, Consents: noConsents{}, Codes: noCodes{}, Refreshes: noRefreshes{}, Devices: noDevices{}, Signer: noSigner{}, Log: slog.New(slog.DiscardHandler), Config: Config{PublicURL: pub, CodeTTL: time.Minute}})
}

// Whatever the form and the Basic header, the token endpoint answers a
// JSON body: a token only to client 1 with its secret asking for client
// credentials, and otherwise a 4xx error from RFC 6749 §5.2 — never a 5xx.
func FuzzTokenEndpoint(f *testing.F) {
	for _, c := range []struct{ body, basic string }{
		{"grant_type=client_credentials&client_id=1&client_secret=s3cret", ""},
		{"grant_type=client_credentials", "1:s3cret"},
		{"client_id=1&client_secret=s3cret&code=lka1" + strings.Repeat("0", 60) + "&redirect_uri=https://app.example/cb", ""},
		{"grant_type=refresh_token&refresh_token=x", "1:s3cret"},
		{"grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x", "1:s3cret"},
		{"grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:access_token", "1:s3cret"},
		{"client_id=1&client_id=2&client_secret=s3cret", ""},
		{"client_id=%zz", "%zz:%zz"},
		{"", ""},
	} {
		f.Add(c.body, c.basic)
	}
	f.Fuzz(func(t *testing.T, body, basic string) {
		s := &stub{}
		p := newTestProvider(s)
		req := httptest.NewRequest("POST", "/access_token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id, secret, ok := strings.Cut(basic, ":"); ok {
			req.SetBasicAuth(id, secret)
		}
		w := httptest.NewRecorder()
		p.AccessToken(w, req)
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%d %q is not JSON", w.Code, w.Body.String())
		}
		switch {
		case w.Code == http.StatusOK:
			if m["access_token"] == nil || s.issued != 1 {
				t.Fatalf("200 without exactly one token issued: %v", m)
			}
			if f, _ := url.ParseQuery(body); f.Get("grant_type") != "client_credentials" {
				t.Fatalf("a token for %q", body)
			}
		case w.Code >= 400 && w.Code < 500:
			if m["error"] == nil || s.issued != 0 {
				t.Fatalf("%d without an error, or with a token issued: %v", w.Code, m)
			}
		default:
			t.Fatalf("status %d for body %q, basic %q", w.Code, body, basic)
		}
	})
}

func TestTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name, body, basic, code string
		status                  int
	}{
		{"client credentials", "grant_type=client_credentials&client_id=1&client_secret=s3cret", "", "", 200},
		{"by Basic", "grant_type=client_credentials", "1:s3cret", "", 200},
		{"no client", "grant_type=client_credentials", "", "invalid_client", 401},
		{"wrong secret", "grant_type=client_credentials&client_id=1&client_secret=x", "", "invalid_client", 401},
		{"unknown grant", "grant_type=password&client_id=1&client_secret=s3cret", "", "unsupported_grant_type", 400},
		{"no code", "client_id=1&client_secret=s3cret", "", "invalid_request", 400},
		{"a refused code", "client_id=1&client_secret=s3cret&code=x", "", "invalid_grant", 400},
		{"a refused device code", "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=1&client_secret=s3cret&device_code=x", "", "invalid_grant", 400},
		{"an unknown resource", "grant_type=client_credentials&client_id=1&client_secret=s3cret&resource=https://nowhere.example", "", "invalid_target", 400},
		{"two resources", "grant_type=client_credentials&client_id=1&client_secret=s3cret&resource=https://lk.example/method&resource=https://lk.example/method", "", "invalid_target", 400},
		{"the built-in API by name", "grant_type=client_credentials&client_id=1&client_secret=s3cret&resource=https://lk.example/method", "", "", 200},
		{"a refused exchange", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=1&client_secret=s3cret&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:access_token", "", "invalid_grant", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/access_token", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if id, secret, ok := strings.Cut(tc.basic, ":"); ok {
				req.SetBasicAuth(id, secret)
			}
			w := httptest.NewRecorder()
			newTestProvider(&stub{}).AccessToken(w, req)
			var m map[string]any
			json.Unmarshal(w.Body.Bytes(), &m)
			if w.Code != tc.status || tc.code != "" && m["error"] != tc.code {
				t.Fatalf("%d %v, want %d %s", w.Code, m, tc.status, tc.code)
			}
		})
	}
}
