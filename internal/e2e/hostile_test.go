package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
)

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// hostile is one malformed or hostile request and the answer it must get.
type hostile struct {
	name   string
	method string
	path   string // with its query
	body   string
	header map[string]string
	// signedIn sends the session cookie of a signed-in user (and the CSRF
	// cookie, without the form token unless the body carries it).
	signedIn bool
	// status is the HTTP status wanted; for the API (always 200) apiCode is
	// the VK error code wanted instead.
	status  int
	apiCode int
	// location, when set, must be in the Location of a redirect (errors
	// that go back to a verified redirect URI).
	location string
}

// Every endpoint answers malformed and hostile requests — wrong sizes,
// encodings, duplicates, path tricks, header injection, wrong content types,
// forged tokens, missing CSRF, cross-origin posts — with a clear client
// error, and none of them changes anything stored. On both backends.
func TestHostileRequests(t *testing.T) { onBothBackends(t, testHostileRequests, fastAPI) }

func testHostileRequests(t *testing.T, e *env) {
	u := e.user("hostile", "hostile@example.com")
	web := e.app(u.ID, storage.Web, "https://web.example/cb")
	standalone := e.app(u.ID, storage.Standalone, "https://native.example/cb")
	c, err := e.P.Communities.CreateCommunity(t.Context(), platform.CLI, u.ID, "Target")
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.get(e.URL + "/login")
	b.login("hostile", "password-hostile")
	cookies := b.client.Jar.Cookies(mustURL(t, e.URL))

	id, sid := fmt.Sprint(web.ID), fmt.Sprint(standalone.ID)
	forgedUser := "lku1" + strings.Repeat("0", 60)
	forgedService := "lks1" + strings.Repeat("a", 60)
	redirect := url.QueryEscape("https://web.example/cb")
	huge := strings.Repeat("a", 70<<10)
	form := "application/x-www-form-urlencoded"
	authz := func(q string) hostile {
		return hostile{method: "GET", path: "/authorize?" + q, status: 400}
	}
	badClient := func(q string) hostile {
		return hostile{method: "GET", path: "/authorize?" + q, status: 401} // invalid_client
	}
	var cases []hostile
	add := func(name string, h hostile) { h.name = name; cases = append(cases, h) }

	// /authorize: the client and the redirect URI are checked before
	// anything else; until both are good, no redirect.
	add("authorize without client_id", badClient("redirect_uri="+redirect))
	add("authorize with a word for client_id", badClient("client_id=abc&redirect_uri="+redirect))
	add("authorize with client_id 0", badClient("client_id=0&redirect_uri="+redirect))
	add("authorize with a negative client_id", badClient("client_id=-1&redirect_uri="+redirect))
	add("authorize with client_id past int64", badClient("client_id=99999999999999999999&redirect_uri="+redirect))
	add("authorize with client_id in exponent form", badClient("client_id=1e3&redirect_uri="+redirect))
	add("authorize for an unknown app", badClient("client_id=424242&redirect_uri="+redirect))
	for _, r := range []string{"", "https://web.example/cb/", "https://WEB.example/cb", "https://web.example/cb?x=1", "https://web.example/cb#f",
		"https://web.example/cb/../cb", "https://web.example/c%62", "http://web.example/cb", "https://web.example:443/cb", "https://web.example.evil.example/cb",
		"https://evil.example/?https://web.example/cb", "//web.example/cb", "https://web.example/cb%00", "https://web.example/cb%0d%0aX: y",
		"https://user@web.example/cb", "javascript:alert(1)", "data:text/html,x", " https://web.example/cb", "https://web.example/cb ", e.blank()} {
		add("authorize with redirect_uri "+r, authz("client_id="+id+"&redirect_uri="+url.QueryEscape(r)))
	}
	add("authorize with a duplicated, differing redirect_uri", authz("client_id="+id+"&redirect_uri=https%3A%2F%2Fevil.example%2F&redirect_uri="+redirect))
	add("authorize with an oversized query", authz("client_id="+id+"&redirect_uri="+redirect+"&state="+strings.Repeat("s", 64<<10)+"&x="+huge))
	// Once the redirect URI is verified, errors go back to it.
	back := func(name, q, errCode string) {
		add(name, hostile{method: "GET", path: "/authorize?client_id=" + id + "&redirect_uri=" + redirect + "&" + q, status: 302, location: "error=" + errCode})
	}
	back("authorize with an unknown response_type", "response_type=id_token", "unsupported_response_type")
	back("authorize with an unknown scope", "scope=friends,root", "invalid_scope")
	back("authorize with a scope mask past int64", "scope=99999999999999999999", "invalid_scope")
	back("authorize with group_ids not numbers", "group_ids=1,x", "invalid_request")
	back("authorize with a negative group id", "group_ids=-5", "invalid_request")
	many := make([]string, 150)
	for i := range many {
		many[i] = fmt.Sprint(i + 1)
	}
	back("authorize with too many group ids", "group_ids="+strings.Join(many, ","), "invalid_request")
	back("authorize with a short code_challenge", "code_challenge=abc&code_challenge_method=S256", "invalid_request")
	back("authorize with code_challenge_method plain", "code_challenge="+strings.Repeat("a", 43)+"&code_challenge_method=plain", "invalid_request")
	back("authorize with an unknown code_challenge_method", "code_challenge="+strings.Repeat("a", 43)+"&code_challenge_method=S512", "invalid_request")
	back("authorize with a method and no challenge", "code_challenge_method=S256", "invalid_request")
	back("authorize implicit with a code_challenge", "response_type=token&code_challenge="+strings.Repeat("a", 43), "invalid_request")
	add("authorize, a standalone app's code flow without PKCE", hostile{method: "GET", path: "/authorize?client_id=" + sid + "&redirect_uri=" + url.QueryEscape("https://native.example/cb"), status: 302, location: "error=invalid_request"})
	add("authorize for a community the user does not admin", hostile{method: "GET", path: "/authorize?client_id=" + id + "&redirect_uri=" + redirect + "&group_ids=" + fmt.Sprint(c.ID+1000), signedIn: true, status: 403})
	add("consent POST without a CSRF token", hostile{method: "POST", path: "/authorize", body: "client_id=" + id + "&redirect_uri=" + redirect + "&decision=allow", header: map[string]string{"Content-Type": form}, signedIn: true, status: 403})
	add("consent POST from another site", hostile{method: "POST", path: "/authorize", body: "decision=allow", header: map[string]string{"Content-Type": form, "Sec-Fetch-Site": "cross-site"}, signedIn: true, status: 403})
	add("PUT /authorize", hostile{method: "PUT", path: "/authorize", status: 405})

	// /access_token
	tok := func(name, body string, status int, h ...map[string]string) {
		hd := map[string]string{"Content-Type": form}
		if len(h) > 0 {
			hd = h[0]
		}
		add(name, hostile{method: "POST", path: "/access_token", body: body, header: hd, status: status})
	}
	tok("token without client_id", "grant_type=client_credentials", 401)
	tok("token with a word for client_id", "client_id=abc&client_secret=x", 401)
	tok("token with client_id past int64", "client_id=99999999999999999999&client_secret=x", 401)
	tok("token for an unknown app", "client_id=424242&client_secret=x", 401)
	tok("token without client_secret", "client_id="+id, 401)
	tok("token with a wrong secret", "client_id="+id+"&client_secret=wrong", 401)
	tok("token with the secret of another app", "client_id="+id+"&client_secret="+url.QueryEscape(standalone.ClientSecret), 401)
	tok("token with the service token as secret", "client_id="+id+"&client_secret="+web.ServiceToken, 401)
	tok("token with a malformed Basic header", "", 401, map[string]string{"Authorization": "Basic !!!"})
	tok("token with Basic of a bad encoding", "", 401, map[string]string{"Authorization": "Basic " + b64("%zz:%zz")})
	tok("token with Basic and a wrong secret", "grant_type=client_credentials", 401, map[string]string{"Authorization": "Basic " + b64(id+":wrong"), "Content-Type": form})
	tok("token with an unsupported grant", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&grant_type=password&username=a&password=b", 400)
	tok("token with grant_type implicit", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&grant_type=implicit", 400)
	tok("client credentials while off for the app", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&grant_type=client_credentials", 400)
	tok("code exchange without a code", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&redirect_uri="+redirect, 400)
	tok("code exchange with a forged code", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&code=lka1"+strings.Repeat("0", 60), 400)
	tok("code exchange with a token as code", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&code="+web.ServiceToken, 400)
	tok("code exchange with a truncated code", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&code=lka1abc", 400)
	tok("code exchange with a code of invalid UTF-8", "client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&code=%ff%fe", 400)
	tok("token with an oversized body", "client_id="+id+"&x="+huge, 400)
	tok("token with a body that is not a form", "client_id=%zz", 400)
	tok("token with a JSON body", `{"client_id":"`+id+`","client_secret":"`+web.ClientSecret+`","grant_type":"client_credentials"}`, 401, map[string]string{"Content-Type": "application/json"})
	tok("token with a multipart body", "--x\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n"+id+"\r\n--x--\r\n", 401, map[string]string{"Content-Type": "multipart/form-data; boundary=x"})
	tok("token with client_id duplicated", "client_id=424242&client_id="+id+"&client_secret="+url.QueryEscape(web.ClientSecret)+"&grant_type=client_credentials", 401)
	add("DELETE /access_token", hostile{method: "DELETE", path: "/access_token", status: 405})
	secret := url.QueryEscape(web.ClientSecret)
	tok("refresh without a refresh_token", "grant_type=refresh_token&client_id="+id+"&client_secret="+secret, 400)
	tok("refresh with a forged refresh token", "grant_type=refresh_token&client_id="+id+"&client_secret="+secret+"&refresh_token=lkr1"+strings.Repeat("0", 60), 400)
	tok("refresh with an access token", "grant_type=refresh_token&client_id="+id+"&client_secret="+secret+"&refresh_token="+web.ServiceToken, 400)
	tok("refresh with a code", "grant_type=refresh_token&client_id="+id+"&client_secret="+secret+"&refresh_token=lka1"+strings.Repeat("0", 60), 400)
	tok("refresh with an oversized refresh token", "grant_type=refresh_token&client_id="+id+"&client_secret="+secret+"&refresh_token="+strings.Repeat("r", 5000), 400)
	tok("refresh with an unknown scope", "grant_type=refresh_token&client_id="+id+"&client_secret="+secret+"&refresh_token=lkr1"+strings.Repeat("0", 60)+"&scope=root", 400)
	tok("refresh by a web app without its secret", "grant_type=refresh_token&client_id="+id+"&refresh_token=x", 401)
	tok("client credentials by a public client", "grant_type=client_credentials&client_id="+sid, 401)
	tok("a public client's code exchange with a forged code", "client_id="+sid+"&code=lka1"+strings.Repeat("0", 60)+"&code_verifier="+strings.Repeat("v", 43), 400)
	tok("grant_type given twice", "grant_type=refresh_token&grant_type=client_credentials&client_id="+id+"&client_secret="+secret, 400)

	tok("a forged device code", "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id="+sid+"&device_code=lkd1"+strings.Repeat("0", 60), 400)
	tok("a device poll without the device code", "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id="+sid, 400)
	tok("a device poll with a refresh token", "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id="+sid+"&device_code=lkr1"+strings.Repeat("0", 60), 400)
	xchg := "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=" + id + "&client_secret=" + secret
	tok("token exchange without a subject", xchg+"&subject_token_type=urn:ietf:params:oauth:token-type:access_token", 400)
	tok("token exchange of a forged subject", xchg+"&subject_token_type=urn:ietf:params:oauth:token-type:access_token&subject_token="+forgedUser, 400)
	tok("token exchange of the service token", xchg+"&subject_token_type=urn:ietf:params:oauth:token-type:access_token&subject_token="+web.ServiceToken, 400)
	tok("token exchange with an actor token", xchg+"&subject_token_type=urn:ietf:params:oauth:token-type:access_token&subject_token=x&actor_token=y", 400)
	tok("token exchange for a resource", xchg+"&subject_token_type=urn:ietf:params:oauth:token-type:access_token&subject_token=x&resource=https%3A%2F%2Fevil.example", 400)
	tok("token exchange by a public client", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id="+sid+"&subject_token=x", 401)
	tok("a token request with a malformed DPoP proof", "grant_type=client_credentials&client_id="+id+"&client_secret="+secret, 400, map[string]string{"Content-Type": form, "DPoP": "not.a.proof"})
	add("device code without a client", hostile{method: "POST", path: "/oauth/device/code", body: "scope=friends", header: map[string]string{"Content-Type": form}, status: 401})
	add("device code with an unknown scope", hostile{method: "POST", path: "/oauth/device/code", body: "client_id=" + sid + "&scope=root", header: map[string]string{"Content-Type": form}, status: 400})
	add("device code by a web app without its secret", hostile{method: "POST", path: "/oauth/device/code", body: "client_id=" + id, header: map[string]string{"Content-Type": form}, status: 401})
	add("the device page with a wrong code", hostile{method: "POST", path: "/device", body: "user_code=BCDF-GHJK", header: map[string]string{"Content-Type": form}, signedIn: true, status: 403})

	// Pushed authorization requests
	par := func(name, body string, status int) {
		add(name, hostile{method: "POST", path: "/oauth/par", body: body, header: map[string]string{"Content-Type": form}, status: status})
	}
	par("push without a client", "redirect_uri="+redirect, 401)
	par("push with a wrong secret", "client_id="+id+"&client_secret=wrong&redirect_uri="+redirect, 401)
	par("push by a web app without its secret", "client_id="+id+"&redirect_uri="+redirect, 401)
	par("push with an unregistered redirect URI", "client_id="+id+"&client_secret="+secret+"&redirect_uri=https%3A%2F%2Fevil.example%2F", 400)
	par("push with a request_uri inside", "client_id="+id+"&client_secret="+secret+"&redirect_uri="+redirect+"&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax", 400)
	par("push with a duplicated scope", "client_id="+id+"&client_secret="+secret+"&redirect_uri="+redirect+"&scope=friends&scope=photos", 400)
	par("push with an oversized body", "client_id="+id+"&x="+huge, 400)
	add("authorize with an unknown request_uri", hostile{method: "GET", path: "/authorize?client_id=" + id + "&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Anope", signedIn: true, status: 400})
	add("authorize with a request_uri of another shape", hostile{method: "GET", path: "/authorize?client_id=" + id + "&request_uri=https%3A%2F%2Fevil.example%2Freq", signedIn: true, status: 400})
	add("authorize with a request_uri and no client", hostile{method: "GET", path: "/authorize?request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Anope", status: 401})
	add("authorize with an oversized nonce", hostile{method: "GET", path: "/authorize?client_id=" + id + "&redirect_uri=" + redirect + "&nonce=" + strings.Repeat("n", 600), status: 302, location: "error=invalid_request"})

	// OpenID Connect
	userinfo := func(name string, h map[string]string, method, body string, status int) {
		add(name, hostile{method: method, path: "/oauth/userinfo", header: h, body: body, status: status})
	}
	userinfo("userinfo without a token", nil, "GET", "", 401)
	userinfo("userinfo with a forged token", map[string]string{"Authorization": "Bearer " + forgedUser}, "GET", "", 401)
	userinfo("userinfo with a service token", map[string]string{"Authorization": "Bearer " + web.ServiceToken}, "GET", "", 403)
	userinfo("userinfo with Basic", map[string]string{"Authorization": "Basic " + b64("a:b")}, "GET", "", 401)
	userinfo("userinfo by POST with an oversized body", map[string]string{"Content-Type": form}, "POST", "access_token="+huge, 401)
	userinfo("userinfo by POST with a forged token", map[string]string{"Content-Type": form}, "POST", "access_token="+forgedUser, 401)
	add("jwks by POST", hostile{method: "POST", path: "/oauth/jwks", status: 405})
	add("discovery by POST", hostile{method: "POST", path: "/.well-known/openid-configuration", status: 405})

	// RFC 7009 and RFC 7662
	for _, ep := range []string{"/oauth/revoke", "/oauth/introspect"} {
		add(ep+" without client authentication", hostile{method: "POST", path: ep, body: "token=" + web.ServiceToken, header: map[string]string{"Content-Type": form}, status: 401})
		add(ep+" with a wrong secret", hostile{method: "POST", path: ep, body: "token=" + web.ServiceToken + "&client_id=" + id + "&client_secret=wrong", header: map[string]string{"Content-Type": form}, status: 401})
		add(ep+" by another app", hostile{method: "POST", path: ep, body: "token=" + web.ServiceToken + "&client_id=" + sid + "&client_secret=wrong", header: map[string]string{"Content-Type": form}, status: 401})
		add(ep+" without a token", hostile{method: "POST", path: ep, body: "client_id=" + id + "&client_secret=" + url.QueryEscape(web.ClientSecret), header: map[string]string{"Content-Type": form}, status: 400})
		add(ep+" with an oversized body", hostile{method: "POST", path: ep, body: "token=" + huge, header: map[string]string{"Content-Type": form}, status: 400})
		add(ep+" by GET", hostile{method: "GET", path: ep + "?token=" + web.ServiceToken, status: 405})
	}

	// The API: HTTP 200 and a VK error, never a change.
	api := func(name, path string, code int, h ...map[string]string) {
		hc := hostile{method: "GET", path: path, apiCode: code}
		if len(h) > 0 {
			hc.header = h[0]
		}
		add(name, hc)
	}
	api("api without v", "/method/users.get?access_token="+web.ServiceToken+"&user_ids=1", 8)
	api("api for an unknown method", "/method/users.delete?v=5.199&access_token="+web.ServiceToken, 3)
	api("api for a method name of path tricks", "/method/..%2fhealthz?v=5.199", 3)
	api("api for a method with invalid UTF-8 in its name", "/method/users.get%ff?v=5.199", 3)
	api("api without a token", "/method/users.get?v=5.199&user_ids=1", 5)
	api("api with a forged user token", "/method/account.getAppPermissions?v=5.199&access_token="+forgedUser, 5)
	api("api with a forged service token", "/method/secure.checkToken?v=5.199&token=x&access_token="+forgedService, 5)
	api("api with a token of another kind's prefix", "/method/users.get?v=5.199&access_token=lkx1"+strings.Repeat("0", 60), 5)
	api("api with a truncated token", "/method/users.get?v=5.199&access_token="+web.ServiceToken[:30], 5)
	api("api with a token and trailing junk", "/method/users.get?v=5.199&user_ids=1&access_token="+web.ServiceToken+"x", 5)
	api("api with a code as token", "/method/users.get?v=5.199&access_token=lka1"+strings.Repeat("0", 60), 5)
	api("api with a forged Bearer header", "/method/account.getAppPermissions?v=5.199", 5, map[string]string{"Authorization": "Bearer " + forgedUser})
	api("api with an empty Bearer header", "/method/account.getAppPermissions?v=5.199", 5, map[string]string{"Authorization": "Bearer "})
	api("api with Basic instead of Bearer", "/method/account.getAppPermissions?v=5.199", 5, map[string]string{"Authorization": "Basic " + b64("a:b")})
	api("api, a service token on a user method", "/method/account.getAppPermissions?v=5.199&access_token="+web.ServiceToken, 28)
	api("api with user_ids of words", "/method/users.get?v=5.199&user_ids=a,b&access_token="+web.ServiceToken, 113)
	api("api with too many user_ids", "/method/users.get?v=5.199&user_ids="+strings.Repeat("1,", 1001)+"1&access_token="+web.ServiceToken, 100)
	api("api with an oversized parameter", "/method/users.get?v=5.199&fields="+strings.Repeat("x", 3000)+"&access_token="+web.ServiceToken, 100)
	api("api with invalid UTF-8 in a parameter", "/method/users.get?v=5.199&fields=%ff&access_token="+web.ServiceToken, 100)
	api("api with NUL in a parameter", "/method/users.get?v=5.199&fields=a%00b&access_token="+web.ServiceToken, 100)
	api("api with a number past int64", "/method/secure.addAppEvent?v=5.199&user_id=99999999999999999999&activity_id=1&access_token="+web.ServiceToken, 100)
	api("api with a negative user id", "/method/secure.addAppEvent?v=5.199&user_id=-1&activity_id=1&access_token="+web.ServiceToken, 100)
	api("api with group_ids of path tricks", "/method/groups.getById?v=5.199&group_ids=../1&access_token="+web.ServiceToken, 100)
	api("api with a notification too long", "/method/secure.sendNotification?v=5.199&user_id=1&message="+strings.Repeat("x", 300)+"&access_token="+web.ServiceToken, 100)
	api("api with a bearer token as DPoP", "/method/secure.checkToken?v=5.199&token=x", 5, map[string]string{"Authorization": "DPoP " + web.ServiceToken, "DPoP": "x"})
	api("api with a check of a forged token", "/method/secure.checkToken?v=5.199&token="+forgedUser+"&access_token="+web.ServiceToken, 15)
	add("api with an oversized body", hostile{method: "POST", path: "/method/users.get?v=5.199", body: "x=" + strings.Repeat("a", 1<<20+10), header: map[string]string{"Content-Type": form}, apiCode: 100})
	add("api with a broken multipart body", hostile{method: "POST", path: "/method/users.get?v=5.199", body: "--x\r\nbroken", header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, apiCode: 100})
	add("api with a multipart body without boundary", hostile{method: "POST", path: "/method/users.get?v=5.199", body: "x", header: map[string]string{"Content-Type": "multipart/form-data"}, apiCode: 100})
	add("api with a JSON body", hostile{method: "POST", path: "/method/users.get", body: `{"v":"5.199"}`, header: map[string]string{"Content-Type": "application/json"}, apiCode: 8})
	add("api messages.send with a forged community token", hostile{method: "POST", path: "/method/messages.send", body: "v=5.199&peer_id=1&message=x&random_id=1&access_token=lkc1" + strings.Repeat("0", 60), header: map[string]string{"Content-Type": form}, apiCode: 5})
	add("api PUT", hostile{method: "PUT", path: "/method/users.get?v=5.199", status: 405})

	// Pages: CSRF on every form, no cross-site posts, bounded bodies.
	post := func(name, path, body string, status int, extra ...map[string]string) {
		h := map[string]string{"Content-Type": form}
		for _, x := range extra {
			for k, v := range x {
				h[k] = v
			}
		}
		add(name, hostile{method: "POST", path: path, body: body, header: h, signedIn: true, status: status})
	}
	for _, p := range []string{"/login", "/signup", "/logout", "/apps", fmt.Sprintf("/apps/%d/settings", web.ID), fmt.Sprintf("/apps/%d/delete", web.ID),
		fmt.Sprintf("/apps/%d/new-service-token", web.ID), fmt.Sprintf("/apps/%d/rotate-secret", web.ID), fmt.Sprintf("/apps/%d/client-credentials", web.ID),
		"/communities", fmt.Sprintf("/communities/%d/admins", c.ID), fmt.Sprintf("/communities/%d/tokens", c.ID),
		fmt.Sprintf("/settings/apps/%d/remove", web.ID), "/settings/profile", "/widget/auth", "/device"} {
		post("POST "+p+" without a CSRF token", p, "login=x&password=y&title=x&name=x&confirm=yes&state=on", 403)
		post("POST "+p+" with a forged CSRF token", p, "csrf=forged&login=x&title=x&confirm=yes", 403)
		post("POST "+p+" from another site", p, "login=x", 403, map[string]string{"Sec-Fetch-Site": "cross-site"})
	}
	post("POST /login with an oversized body", "/login", "login="+huge, 403)
	post("POST /login with a body that is not a form", "/login", "login=%zz", 403)
	post("POST /login cross-origin by Origin", "/login", "login=x", 403, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": ""})

	page := func(name, path string, status int) {
		add(name, hostile{method: "GET", path: path, signedIn: true, status: status})
	}
	page("an app id that is a word", "/apps/abc", 404)
	page("an app id past int64", "/apps/99999999999999999999", 404)
	page("another developer's app", fmt.Sprintf("/apps/%d", web.ID+1000), 404)
	page("a confirmation for an unknown action", fmt.Sprintf("/apps/%d/confirm/destroy-everything", web.ID), 404)
	page("a community id that is a word", "/communities/abc", 404)
	page("a community the user does not admin", fmt.Sprintf("/communities/%d", c.ID+1000), 404)
	page("an iframe app id 0", "/app0", 404)
	page("an iframe app id negative", "/app-1", 404)
	page("an iframe app id that is a word", "/appabc", 404)
	page("an app that is not an iframe app", "/app"+id, 404)
	page("a page that does not exist", "/wp-admin", 404)
	page("an avatar that is not an svg", "/avatar/1.png", 404)
	page("an avatar of a word", "/avatar/abc.svg", 404)
	page("an avatar of nobody", "/avatar/424242.svg", 404)
	page("a static file by path tricks is cleaned, not served", "/static/../web.go", 307)
	page("a static file encoded path tricks", "/static/%2e%2e/web.go", 404)
	page("the blank page under static", "/static/blank.html", 404)
	page("the widget without app_id", "/widget/button?origin=https://web.example&mode=callback", 400)
	page("the widget on an unregistered site", "/widget/button?app_id="+id+"&origin=https://evil.example&mode=callback", 403)
	page("the widget in an unknown mode", "/widget/button?app_id="+id+"&origin=https://web.example&mode=steal", 400)
	page("the widget redirecting off its sites", "/widget/button?app_id="+id+"&origin=https://web.example&mode=redirect&auth_url=https://evil.example/", 400)
	page("the widget window for an unregistered site", "/widget/auth?app_id="+id+"&origin=https://evil.example&mode=callback", 400)
	page("the widget window with app_id past int64", "/widget/auth?app_id=99999999999999999999&origin=https://web.example&mode=callback", 400)
	add("a request id of markup is not echoed", hostile{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": "<script>alert(1)</script>"}, status: 200})
	add("a request id far too long is not echoed", hostile{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": strings.Repeat("r", 300)}, status: 200})
	add("metrics by POST", hostile{method: "POST", path: "/metrics", status: 404})

	if len(cases) < 150 {
		t.Fatalf("%d hostile requests, want at least 150", len(cases))
	}
	before := fingerprint(t, e)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, e.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			if tc.signedIn {
				for _, c := range cookies {
					req.AddCookie(c)
				}
			}
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case tc.apiCode != 0:
				var m map[string]any
				if resp.StatusCode != 200 || json.Unmarshal(raw, &m) != nil {
					t.Fatalf("%d %.200q: want the API's 200 JSON", resp.StatusCode, raw)
				}
				if code, _ := apiError(m); code != tc.apiCode {
					t.Fatalf("API error %d (%.200s), want %d", code, raw, tc.apiCode)
				}
			case resp.StatusCode != tc.status:
				t.Fatalf("status %d (%.300q), want %d", resp.StatusCode, raw, tc.status)
			case tc.location != "" && !strings.Contains(resp.Header.Get("Location"), tc.location):
				t.Fatalf("Location %q lacks %q", resp.Header.Get("Location"), tc.location)
			}
			if resp.StatusCode >= 500 {
				t.Fatalf("server error %d", resp.StatusCode)
			}
			if id := resp.Header.Get("X-Request-Id"); strings.ContainsAny(id, "\r\n\x7f<>") || len(id) > 64 {
				t.Fatalf("request id %q echoed", id)
			}
			if strings.Contains(string(raw), web.ClientSecret) || strings.Contains(string(raw), forgedUser) && tc.apiCode == 0 {
				t.Fatal("the answer repeats a secret or token")
			}
		})
	}
	if after := fingerprint(t, e); after != before {
		t.Fatalf("hostile requests changed what is stored:\nbefore %v\nafter  %v", before, after)
	}
}

// fingerprint is what a hostile request must not change: how many records
// of each kind exist, and how many tokens are live.
func fingerprint(t *testing.T, e *env) string {
	t.Helper()
	db := e.readStored()
	var parts []string
	for _, q := range []string{"users", "apps", "communities", "community_admins", "consents", "codes", "tokens", "notifications", "app_events", "messages",
		"tokens WHERE revoked_at = 0", "codes WHERE used_at = 0", "apps WHERE client_credentials = " + boolLiteral(e)} {
		var n int64
		if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d", q, n))
	}
	// And the apps' credentials and settings.
	for _, id := range []int64{1, 2} {
		v, err := e.P.Apps.App(context.Background(), platform.CLI, id)
		if err == nil {
			parts = append(parts, fmt.Sprintf("app%d=%s|%s|%s|%v|%v", id, v.Title, v.ClientSecret, v.ServiceToken, v.RedirectURIs, v.ClientCredentials))
		}
	}
	return strings.Join(parts, " ")
}

func boolLiteral(e *env) string {
	if e.DB != "" {
		return "0"
	}
	return "false"
}
