package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"latchkey/internal/config"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

func registrationMode(mode string) option {
	return func(c *config.Config) { c.Registration = mode }
}

// register POSTs metadata (a JSON text) to /oauth/register, with initial
// as the bearer token when set and from address when set (the server trusts
// loopback proxies in the tests that set it).
func (e *env) register(body, initial, address string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+"/oauth/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if initial != "" {
		req.Header.Set("Authorization", "Bearer "+initial)
	}
	if address != "" {
		req.Header.Set("X-Forwarded-For", address)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

// manage sends method to a registration_client_uri with the registration
// access token.
func (e *env) manage(method, uri, access, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, uri, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+access)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.doJSON(req)
}

// appCount is how many apps the database holds.
func (e *env) appCount() int {
	e.t.Helper()
	var n int
	if err := e.readStored().QueryRow(`SELECT count(*) FROM apps`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// A client registers itself (RFC 7591) with the redirect URIs of a native
// app (loopback http on any port, a private-use scheme), reads, replaces
// and deletes its registration (RFC 7592) with its registration access
// token, and no other token; a confidential client gets a secret. The
// metadata names the endpoint. On both backends.
func TestDynamicRegistration(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		_, meta := e.getJSON(e.URL + "/.well-known/oauth-authorization-server")
		if meta["registration_endpoint"] != e.URL+"/oauth/register" {
			t.Fatalf("registration_endpoint = %v", meta["registration_endpoint"])
		}
		status, pub, _ := e.register(`{"client_name":"Agent","redirect_uris":["http://127.0.0.1:33418/callback","cursor://anysphere.cursor-retrieval/oauth/callback"],
			"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"software_id":"agent-cli","unknown_field":[1,2]}`, "", "")
		if status != 201 || pub["client_secret"] != nil || pub["registration_access_token"] == nil || pub["token_endpoint_auth_method"] != "none" ||
			pub["registration_client_uri"] != e.URL+"/oauth/register/"+pub["client_id"].(string) || pub["software_id"] != "agent-cli" || pub["unknown_field"] != nil {
			t.Fatalf("a public client's registration: %d %v", status, pub)
		}
		if fmt.Sprint(pub["response_types"]) != "[code]" || pub["client_id_issued_at"] == nil {
			t.Fatalf("the defaults were not filled in: %v", pub)
		}
		status, conf, _ := e.register(`{"client_name":"Service","redirect_uris":["https://svc.example/cb"],"grant_types":["authorization_code","client_credentials"],
			"post_logout_redirect_uris":["https://svc.example/bye"],"backchannel_logout_uri":"https://svc.example/backchannel"}`, "", "")
		if status != 201 || conf["token_endpoint_auth_method"] != "client_secret_basic" || len(fmt.Sprint(conf["client_secret"])) < 20 || conf["client_secret_expires_at"] != 0.0 {
			t.Fatalf("a confidential client's registration: %d %v", status, conf)
		}
		if app, err := e.P.Apps.LookupApp(t.Context(), parseID(t, conf["client_id"])); err != nil || len(app.PostLogoutRedirectURIs) != 1 || app.PostLogoutRedirectURIs[0] != "https://svc.example/bye" ||
			app.BackchannelLogoutURI != "https://svc.example/backchannel" || conf["backchannel_logout_session_required"] != true {
			t.Fatalf("a registration's post_logout_redirect_uris and backchannel_logout_uri: %+v %v", app, err)
		}
		// The confidential client's secret works at the token endpoint.
		if status, m := e.clientCredentials(conf["client_id"].(string), conf["client_secret"].(string)); status != 200 {
			t.Fatalf("client credentials of a registered client: %d %v", status, m)
		}

		uri, access := pub["registration_client_uri"].(string), pub["registration_access_token"].(string)
		if status, m := e.manage("GET", uri, access, ""); status != 200 || m["client_name"] != "Agent" || m["registration_access_token"] != nil {
			t.Fatalf("reading the registration: %d %v", status, m)
		}
		for name, tok := range map[string]string{"another client's": conf["registration_access_token"].(string), "no": "", "a made-up": "abc"} {
			if status, m := e.manage("GET", uri, tok, ""); status != 401 || m["error"] != "invalid_token" {
				t.Errorf("reading with %s registration access token: %d %v", name, status, m)
			}
		}
		status, m := e.manage("PUT", uri, access, `{"client_id":"`+pub["client_id"].(string)+`","client_name":"Agent 2","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`)
		if status != 200 || m["client_name"] != "Agent 2" || fmt.Sprint(m["redirect_uris"]) != "[http://127.0.0.1/cb]" {
			t.Fatalf("replacing the registration: %d %v", status, m)
		}
		app, err := e.P.Apps.LookupApp(t.Context(), parseID(t, pub["client_id"]))
		if err != nil || app.Title != "Agent 2" || app.OwnerID != 0 || app.Type != storage.Standalone || len(app.RedirectURIs) != 1 {
			t.Fatalf("the registered app: %+v %v", app, err)
		}
		if status, m := e.manage("PUT", uri, access, `{"redirect_uris":["https://x.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`); status != 400 || m["error"] != "invalid_client_metadata" {
			t.Fatalf("changing the authentication method: %d %v", status, m)
		}
		if status, _ := e.manage("DELETE", uri, access, ""); status != 204 {
			t.Fatalf("deleting the registration: %d", status)
		}
		if status, _ := e.manage("GET", uri, access, ""); status != 401 {
			t.Fatalf("a deleted registration read: %d", status)
		}
		if _, err := e.P.Apps.LookupApp(t.Context(), parseID(t, pub["client_id"])); err == nil {
			t.Fatal("the deleted registration's app is still there")
		}
	}, registrationMode("open"))
}

func parseID(t *testing.T, v any) int64 {
	t.Helper()
	var id int64
	if _, err := fmt.Sscan(fmt.Sprint(v), &id); err != nil {
		t.Fatalf("client_id %v: %v", v, err)
	}
	return id
}

// Hostile registrations each get a clear RFC 7591 error and store nothing;
// with --registration token, a spent, revoked or made-up initial access
// token is refused. On both backends.
func TestHostileRegistrations(t *testing.T) {
	onBothBackends(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		once, err := e.P.Registrations.CreateToken(ctx, platform.CLI, "once", time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		revoked, err := e.P.Registrations.CreateToken(ctx, platform.CLI, "revoked", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.P.Registrations.RevokeToken(ctx, platform.CLI, revoked.ID); err != nil {
			t.Fatal(err)
		}
		expiring, err := e.P.Registrations.CreateToken(ctx, platform.CLI, "expiring", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		good := `{"redirect_uris":["https://ok.example/cb"],"token_endpoint_auth_method":"none"}`
		if status, m, _ := e.register(good, once.Token, ""); status != 201 {
			t.Fatalf("a registration with an initial access token: %d %v", status, m)
		}
		e.Clock.Advance(2 * time.Minute)
		many := make([]string, 100)
		for i := range many {
			many[i] = fmt.Sprintf(`"https://many.example/cb%d"`, i)
		}
		big := `{"redirect_uris":["https://big.example/cb"],"client_name":"` + strings.Repeat("a", 1<<20) + `"}`
		before := e.appCount()
		for _, c := range []struct {
			name, body, initial string
			status              int
			code                string
		}{
			{"no initial access token", good, "", 401, "invalid_token"},
			{"a spent initial access token", good, once.Token, 401, "invalid_token"},
			{"a revoked initial access token", good, revoked.Token, 401, "invalid_token"},
			{"an expired initial access token", good, expiring.Token, 401, "invalid_token"},
			{"a made-up initial access token", good, "made-up", 401, "invalid_token"},
		} {
			status, m, h := e.register(c.body, c.initial, "")
			if status != c.status || m["error"] != c.code || (status == 401 && h.Get("WWW-Authenticate") == "") {
				t.Errorf("%s: %d %v, want %d %s", c.name, status, m, c.status, c.code)
			}
		}
		// The rest with a token that works, so that the metadata is what is refused.
		open, err := e.P.Registrations.CreateToken(ctx, platform.CLI, "open", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, body string
			code       string
		}{
			{"a javascript: redirect URI", `{"redirect_uris":["javascript:alert(1)"],"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
			{"a data: redirect URI", `{"redirect_uris":["data:text/html,hi"],"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
			{"a file: redirect URI", `{"redirect_uris":["file:///etc/passwd"],"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
			{"a fragment", `{"redirect_uris":["https://x.example/cb#frag"]}`, "invalid_redirect_uri"},
			{"a wildcard", `{"redirect_uris":["https://*.example.com/cb"]}`, "invalid_redirect_uri"},
			{"a javascript: post-logout URI", `{"redirect_uris":["https://x.example/cb"],"post_logout_redirect_uris":["javascript:alert(1)"]}`, "invalid_redirect_uri"},
			{"a back-channel logout URI on a private address", `{"redirect_uris":["https://x.example/cb"],"backchannel_logout_uri":"http://10.0.0.1/logout"}`, "invalid_client_metadata"},
			{"a back-channel logout URI with a fragment", `{"redirect_uris":["https://x.example/cb"],"backchannel_logout_uri":"https://x.example/logout#f"}`, "invalid_client_metadata"},
			{"plain http on a public host", `{"redirect_uris":["http://x.example/cb"]}`, "invalid_redirect_uri"},
			{"a private-use scheme for a confidential client", `{"redirect_uris":["cursor://cb"]}`, "invalid_redirect_uri"},
			{"no redirect URI for the code flow", `{"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
			{"100 redirect URIs", `{"redirect_uris":[` + strings.Join(many, ",") + `]}`, "invalid_redirect_uri"},
			{"1 MB of JSON", big, "invalid_client_metadata"},
			{"not JSON", `redirect_uris=https://x.example/cb`, "invalid_client_metadata"},
			{"an unknown auth method", `{"redirect_uris":["https://x.example/cb"],"token_endpoint_auth_method":"client_secret_jwt"}`, "invalid_client_metadata"},
			{"jwks and jwks_uri together", `{"redirect_uris":["https://x.example/cb"],"jwks":{"keys":[]},"jwks_uri":"https://x.example/jwks"}`, "invalid_client_metadata"},
			{"the implicit flow", `{"redirect_uris":["https://x.example/cb"],"response_types":["token"],"grant_types":["implicit"]}`, "invalid_client_metadata"},
			{"client credentials for a public client", `{"redirect_uris":["https://x.example/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","client_credentials"]}`, "invalid_client_metadata"},
			{"a name of many lines", `{"redirect_uris":["https://x.example/cb"],"client_name":"a\nb"}`, "invalid_client_metadata"},
			{"redirect_uris of the wrong type", `{"redirect_uris":"https://x.example/cb"}`, "invalid_client_metadata"},
		} {
			status, m, _ := e.register(c.body, open.Token, "")
			if status != 400 || m["error"] != c.code || m["error_description"] == "" {
				t.Errorf("%s: %d %v, want 400 %s", c.name, status, m, c.code)
			}
		}
		if after := e.appCount(); after != before {
			t.Fatalf("refused registrations stored %d apps", after-before)
		}
	}, registrationMode("token"))
}

// With open registration, 20 registrations an hour from one address are
// accepted and the 21st is refused with 429 and Retry-After; another
// address still registers.
func TestRegistrationThrottle(t *testing.T) {
	e := newEnv(t, registrationMode("open"), func(c *config.Config) {
		c.Proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	body := `{"redirect_uris":["https://x.example/cb"],"token_endpoint_auth_method":"none"}`
	for i := range 20 {
		if status, m, _ := e.register(body, "", "203.0.113.5"); status != 201 {
			t.Fatalf("registration %d: %d %v", i+1, status, m)
		}
	}
	status, m, h := e.register(body, "", "203.0.113.5")
	if status != 429 || h.Get("Retry-After") == "" || m["error"] == nil {
		t.Fatalf("the 21st registration from one address: %d %v %v", status, m, h)
	}
	if status, m, _ := e.register(body, "", "198.51.100.7"); status != 201 {
		t.Fatalf("a registration from another address: %d %v", status, m)
	}
}

// Without --registration, the endpoint does not exist and the metadata
// does not name it.
func TestRegistrationOffByDefault(t *testing.T) {
	e := newEnv(t)
	_, meta := e.getJSON(e.URL + "/.well-known/openid-configuration")
	if _, ok := meta["registration_endpoint"]; ok {
		t.Fatal("registration_endpoint named while registration is off")
	}
	if status, _, _ := e.register(`{"redirect_uris":["https://x.example/cb"]}`, "", ""); status != 404 {
		t.Fatalf("registering while off: %d", status)
	}
}

// A registered app that issued no token in 30 days is deleted by the
// cleanup; one that issued a token stays.
func TestIdleRegistrationsExpire(t *testing.T) {
	e := newEnv(t, registrationMode("open"))
	_, idle, _ := e.register(`{"redirect_uris":["https://idle.example/cb"],"grant_types":["authorization_code","client_credentials"]}`, "", "")
	_, used, _ := e.register(`{"redirect_uris":["https://used.example/cb"],"grant_types":["authorization_code","client_credentials"]}`, "", "")
	e.Clock.Advance(29 * 24 * time.Hour)
	if status, m := e.clientCredentials(used["client_id"].(string), used["client_secret"].(string)); status != 200 {
		t.Fatalf("a token for the used client: %d %v", status, m)
	}
	e.Clock.Advance(2 * 24 * time.Hour)
	if _, _, err := e.P.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.Apps.LookupApp(t.Context(), parseID(t, idle["client_id"])); err == nil {
		t.Error("a registration that issued no token in 30 days is still there")
	}
	if _, err := e.P.Apps.LookupApp(t.Context(), parseID(t, used["client_id"])); err != nil {
		t.Errorf("a registration that issued a token was deleted: %v", err)
	}
}

// Operators see registered apps in the admin API (listed apart with
// registered=true, owned by no one) and delete them; the client's
// registration access token then finds nothing.
func TestAdminListsAndDeletesRegisteredApps(t *testing.T) {
	e := newEnv(t, registrationMode("open"))
	c := newAdminClient(t, e)
	dev := e.user("owner", "")
	e.app(dev.ID, storage.Web, "https://owned.example/cb")
	_, reg, _ := e.register(`{"client_name":"Agent","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`, "", "")
	status, page := c.do("GET", "/admin/v1/apps?registered=true", nil)
	apps, _ := page["apps"].([]any)
	if status != 200 || len(apps) != 1 {
		t.Fatalf("registered apps: %d %v", status, page)
	}
	app := apps[0].(map[string]any)
	if fmt.Sprint(app["client_id"]) != reg["client_id"] || app["registered"] != true || app["owner_id"] != 0.0 || app["title"] != "Agent" {
		t.Fatalf("a registered app as the admin API shows it: %v", app)
	}
	if status, page := c.do("GET", "/admin/v1/apps", nil); status != 200 || len(page["apps"].([]any)) != 2 {
		t.Fatalf("every app: %d %v", status, page)
	}
	if status, m := c.do("DELETE", "/admin/v1/apps/{id}", nil, app["client_id"]); status != 200 || m["deleted"] != true {
		t.Fatalf("deleting a registered app: %d %v", status, m)
	}
	if status, _ := e.manage("GET", reg["registration_client_uri"].(string), reg["registration_access_token"].(string), ""); status != 401 {
		t.Fatalf("the deleted registration read by its client: %d", status)
	}
}
