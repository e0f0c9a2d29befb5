package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	zclient "github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// clientKey is a client's signing key and its public JWK.
type clientKey struct {
	alg    jose.SignatureAlgorithm
	kid    string
	signer crypto.Signer
}

func newRSAKey(t *testing.T, kid string) clientKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{jose.RS256, kid, k}
}

func newECKey(t *testing.T, kid string) clientKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{jose.ES256, kid, k}
}

func (k clientKey) jwks() string {
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.signer.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}}})
	return string(b)
}

// assertion is a client assertion (RFC 7523) signed with k; change edits
// its claims first.
func (k clientKey) assertion(t *testing.T, clientID, aud string, now time.Time, change func(map[string]any)) string {
	t.Helper()
	claims := map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": fmt.Sprint("jti-", now.UnixNano(), "-", rand.Text())}
	if change != nil {
		change(claims)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.signer, KeyID: k.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withAssertion is the form of a token-endpoint request authenticated by
// assertion.
func withAssertion(vals url.Values, assertion string) url.Values {
	vals.Set("client_assertion_type", platform.JWTBearer)
	vals.Set("client_assertion", assertion)
	return vals
}

// private_key_jwt (RFC 7523): apps whose keys are inline or at a jwks_uri
// over HTTPS authenticate with assertions built by go-jose (RS256 and
// ES256) for client credentials, the code exchange (also by zitadel/oidc's
// relying party), refresh and introspection; wrong keys, audiences, times,
// a reused jti, alg none, HS256 keyed with the public key and the secret of
// a key-only app are refused. On both backends; a jti is refused on a
// second PostgreSQL node too.
func TestPrivateKeyJWT(t *testing.T) {
	ec := newECKey(t, "ec-1")
	keys := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(ec.jwks()))
	}))
	t.Cleanup(keys.Close)
	pool := x509.NewCertPool()
	pool.AddCert(keys.Certificate())
	allowLoopback := func(c *config.Config) { c.CallbackTargets = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := ""
			if backend == "postgres" {
				dsn = testenv.PostgresDSN(t)
			}
			e := start(t, startOptions{dsn: dsn, outboundCAs: pool}, allowLoopback)
			testPrivateKeyJWT(t, e, ec, keys.URL+"/jwks.json")
			if backend == "postgres" {
				// The same assertion at a second node is a replay too.
				other := start(t, startOptions{dsn: dsn, outboundCAs: pool, clock: e.Clock}, allowLoopback)
				dev := e.user("pknode", "")
				rsaKey := newRSAKey(t, "rsa-node")
				app := e.app(dev.ID, storage.Web, "https://pk.example/cb")
				if _, err := e.P.Apps.SetAuth(t.Context(), platform.CLI, app.ID, platform.ClientAuth{Method: platform.AuthPrivateKey, JWKS: rsaKey.jwks()}); err != nil {
					t.Fatal(err)
				}
				if _, err := e.P.Apps.SetClientCredentials(t.Context(), platform.CLI, app.ID, true); err != nil {
					t.Fatal(err)
				}
				a := rsaKey.assertion(t, fmt.Sprint(app.ID), e.URL, e.Clock.Now(), nil)
				if status, m := e.postForm("/access_token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, a), "", ""); status != 200 {
					t.Fatalf("node 1: %d %v", status, m)
				}
				// Node 2 has another URL here (one per test server): it is
				// asked as if its issuer were node 1's, as nodes behind one
				// public URL are.
				_, err := other.P.Assertions.Authenticate(t.Context(), "", a, []string{e.URL})
				var bad *platform.ErrBadAssertion
				if !errors.As(err, &bad) || !strings.Contains(bad.Reason, "jti was used before") {
					t.Fatalf("the same assertion at node 2: %v", err)
				}
				fresh := rsaKey.assertion(t, fmt.Sprint(app.ID), e.URL, e.Clock.Now(), nil)
				if _, err := other.P.Assertions.Authenticate(t.Context(), "", fresh, []string{e.URL}); err != nil {
					t.Fatalf("a fresh assertion at node 2: %v", err)
				}
			}
		})
	}
}

func testPrivateKeyJWT(t *testing.T, e *env, ec clientKey, jwksURI string) {
	ctx := t.Context()
	dev := e.user("pkdev", "")
	person := e.user("pkuser", "")
	rsaKey := newRSAKey(t, "rsa-1")
	redirect := "https://pk.example/cb"

	inline := e.app(dev.ID, storage.Web, redirect)
	if _, err := e.P.Apps.SetAuth(ctx, platform.CLI, inline.ID, platform.ClientAuth{Method: platform.AuthPrivateKey, JWKS: rsaKey.jwks()}); err != nil {
		t.Fatal(err)
	}
	remote := e.app(dev.ID, storage.Web, redirect)
	if _, err := e.P.Apps.SetAuth(ctx, platform.CLI, remote.ID, platform.ClientAuth{Method: platform.AuthPrivateKey, JWKSURI: jwksURI}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []platform.AppView{inline, remote} {
		if _, err := e.P.Apps.SetClientCredentials(ctx, platform.CLI, a.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	_, meta := e.getJSON(e.URL + "/.well-known/openid-configuration")
	if !strings.Contains(fmt.Sprint(meta["token_endpoint_auth_methods_supported"]), "private_key_jwt") ||
		!strings.Contains(fmt.Sprint(meta["token_endpoint_auth_signing_alg_values_supported"]), "ES256") {
		t.Fatalf("the metadata does not offer private_key_jwt: %v", meta)
	}
	tokenURL := e.URL + "/access_token"
	cc := func(a string) (int, map[string]any) {
		return e.postForm("/access_token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, a), "", "")
	}
	inlineID, remoteID := fmt.Sprint(inline.ID), fmt.Sprint(remote.ID)

	// Client credentials: RS256 with inline keys, aud the issuer; ES256
	// with keys at a jwks_uri, aud the token endpoint as a one-element array.
	if status, m := cc(rsaKey.assertion(t, inlineID, e.URL, e.Clock.Now(), nil)); status != 200 {
		t.Fatalf("client credentials, RS256, inline keys: %d %v", status, m)
	}
	if status, m := cc(ec.assertion(t, remoteID, tokenURL, e.Clock.Now(), func(c map[string]any) { c["aud"] = []string{tokenURL} })); status != 200 {
		t.Fatalf("client credentials, ES256, jwks_uri: %d %v", status, m)
	}

	// The code exchange by zitadel/oidc's relying party, then a refresh
	// and introspection with assertions of go-jose.
	pemKey, _ := x509.MarshalPKCS8PrivateKey(rsaKey.signer)
	party, err := rp.NewRelyingPartyOIDC(ctx, e.URL, inlineID, "", redirect, []string{"openid", "friends"},
		rp.WithJWTProfile(rp.SignerFromKeyAndKeyID(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pemKey}), rsaKey.kid)))
	if err != nil {
		t.Fatal(err)
	}
	code := obtainCode(t, e, inlineID, redirect, person.Login, map[string]string{"scope": "openid friends"})
	assertion, err := zclient.SignedJWTProfileAssertion(inlineID, []string{e.URL}, time.Minute, party.Signer())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := rp.CodeExchange[*zoidc.IDTokenClaims](ctx, code, party, rp.WithClientAssertionJWT(assertion))
	if err != nil {
		t.Fatalf("zitadel/oidc's code exchange with private_key_jwt: %v", err)
	}
	if tokens.RefreshToken == "" || tokens.IDTokenClaims.GetSubject() != fmt.Sprint(person.ID) {
		t.Fatalf("the code exchange's tokens: %+v", tokens)
	}
	status, refreshed := e.postForm("/access_token", withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}},
		rsaKey.assertion(t, inlineID, e.URL, e.Clock.Now(), nil)), "", "")
	if status != 200 || refreshed["access_token"] == nil {
		t.Fatalf("a refresh with private_key_jwt: %d %v", status, refreshed)
	}
	status, intro := e.postForm("/oauth/introspect", withAssertion(url.Values{"token": {refreshed["access_token"].(string)}},
		rsaKey.assertion(t, inlineID, e.URL+"/oauth/introspect", e.Clock.Now(), nil)), "", "")
	if status != 200 || intro["active"] != true {
		t.Fatalf("introspection with private_key_jwt: %d %v", status, intro)
	}

	// The device code and revocation take assertions too.
	if status, m := e.postForm("/oauth/device/code", withAssertion(url.Values{"scope": {"friends"}},
		rsaKey.assertion(t, inlineID, e.URL, e.Clock.Now(), nil)), "", ""); status != 200 || m["device_code"] == nil {
		t.Fatalf("a device code with private_key_jwt: %d %v", status, m)
	}
	if status, m := e.postForm("/oauth/revoke", withAssertion(url.Values{"token": {refreshed["access_token"].(string)}},
		rsaKey.assertion(t, inlineID, e.URL+"/oauth/revoke", e.Clock.Now(), nil)), "", ""); status != 200 {
		t.Fatalf("revocation with private_key_jwt: %d %v", status, m)
	}
	if status, m := e.postForm("/oauth/introspect", withAssertion(url.Values{"token": {refreshed["access_token"].(string)}},
		rsaKey.assertion(t, inlineID, e.URL, e.Clock.Now(), nil)), "", ""); status != 200 || m["active"] != false {
		t.Fatalf("the token revoked with private_key_jwt: %d %v", status, m)
	}

	// Refused, each invalid_client and nothing issued.
	other := newRSAKey(t, "rsa-1")
	now := e.Clock.Now()
	reused := rsaKey.assertion(t, inlineID, e.URL, now, nil)
	if status, _ := cc(reused); status != 200 {
		t.Fatal("the assertion to reuse was refused the first time")
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(rsaKey.signer.Public())
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})}, nil)
	hsAssertion, _ := jwt.Signed(hs).Claims(map[string]any{"iss": inlineID, "sub": inlineID, "aud": e.URL, "exp": now.Add(time.Minute).Unix(), "jti": "hs"}).Serialize()
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":%q,"exp":%d,"jti":"none"}`, inlineID, inlineID, e.URL, now.Add(time.Minute).Unix()))) + "."
	for _, c := range []struct{ name, assertion string }{
		{"signed with another key", other.assertion(t, inlineID, e.URL, now, nil)},
		{"aud an array naming another too", rsaKey.assertion(t, inlineID, e.URL, now, func(c map[string]any) { c["aud"] = []string{e.URL, "https://other.example"} })},
		{"aud another issuer", rsaKey.assertion(t, inlineID, "https://other.example", now, nil)},
		{"expired", rsaKey.assertion(t, inlineID, e.URL, now, func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })},
		{"exp two hours ahead", rsaKey.assertion(t, inlineID, e.URL, now, func(c map[string]any) { c["exp"] = now.Add(2 * time.Hour).Unix() })},
		{"no jti", rsaKey.assertion(t, inlineID, e.URL, now, func(c map[string]any) { delete(c, "jti") })},
		{"sub not iss", rsaKey.assertion(t, inlineID, e.URL, now, func(c map[string]any) { c["sub"] = remoteID })},
		{"another app's key for its id", ec.assertion(t, inlineID, e.URL, now, nil)},
		{"a reused jti", reused},
		{"alg none", none},
		{"HS256 keyed with the public key", hsAssertion},
		{"not a JWT", "abc.def"},
	} {
		if status, m := cc(c.assertion); status != 401 || m["error"] != "invalid_client" {
			t.Errorf("an assertion %s: %d %v, want 401 invalid_client", c.name, status, m)
		}
	}
	if status, m := e.clientCredentials(inlineID, inline.ClientSecret); status != 401 || m["error"] != "invalid_client" {
		t.Errorf("the client secret of a key-only app: %d %v", status, m)
	}
	if status, m := e.postForm("/access_token", withAssertion(url.Values{"grant_type": {"client_credentials"}},
		rsaKey.assertion(t, inlineID, e.URL, now, nil)), inlineID, inline.ClientSecret); status != 400 || m["error"] != "invalid_request" {
		t.Errorf("an assertion with the secret beside it: %d %v", status, m)
	}
}

// A developer switches an app to private_key_jwt on its console page in
// Chromium, pasting its JWK Set: the app then authenticates by assertions
// alone; a key set that is not one is refused with the reason.
func TestBrowserConsoleClientAuthentication(t *testing.T) {
	e := newEnv(t)
	dev := e.user("keydev", "")
	app := e.app(dev.ID, storage.Web, "https://keys.example/cb")
	if _, err := e.P.Apps.SetClientCredentials(t.Context(), platform.CLI, app.ID, true); err != nil {
		t.Fatal(err)
	}
	key := newECKey(t, "console-key")
	ctx := testenv.Browser(t)
	page := fmt.Sprintf("%s/apps/%d", e.URL, app.ID)
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "keydev"), chromedp.SendKeys(`input[name=password]`, "password-keydev"),
		chromedp.Submit(`input[name=login]`), chromedp.WaitVisible(`#client-auth`),
		chromedp.SetValue(`#client-auth select[name=method]`, "private_key_jwt"),
		chromedp.SendKeys(`#client-auth textarea[name=jwks]`, "not a key set"),
		chromedp.Submit(`#client-auth select[name=method]`), chromedp.WaitVisible(`p.error`)); err != nil {
		t.Fatal(err)
	}
	errText, err := chromedp.Run(ctx, chromedp.Text(`p.error`))
	if err != nil || !strings.Contains(errText, "JWK Set") {
		t.Fatalf("a bad key set: %q %v", errText, err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(`#client-auth`),
		chromedp.SetValue(`#client-auth select[name=method]`, "private_key_jwt"),
		chromedp.SetValue(`#client-auth textarea[name=jwks]`, key.jwks()),
		chromedp.Submit(`#client-auth select[name=method]`), chromedp.WaitVisible(`p.notice`)); err != nil {
		t.Fatal(err)
	}
	testenv.Screenshot(t, ctx, "console-client-authentication")
	id := fmt.Sprint(app.ID)
	if status, m := e.clientCredentials(id, app.ClientSecret); status != 401 {
		t.Fatalf("the secret after switching to private_key_jwt: %d %v", status, m)
	}
	if status, m := e.postForm("/access_token", withAssertion(url.Values{"grant_type": {"client_credentials"}},
		key.assertion(t, id, e.URL, e.Clock.Now(), nil)), "", ""); status != 200 {
		t.Fatalf("an assertion after switching: %d %v", status, m)
	}
}
