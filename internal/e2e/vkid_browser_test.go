package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"latchkey/internal/storage"
	"latchkey/internal/testenv"
)

// vkidSDK is VK ID's web SDK as npm installs it (npm ci --prefix clients/node).
const vkidSDK = "../../clients/node/node_modules/@vkid/sdk/dist-sdk/umd/index.js"

// The real @vkid/sdk 2.6.7, in headless Chromium, on an app's page at
// another loopback origin, pointed at an HTTPS Latchkey through
// __vkidDomain and __apiDomain: Auth.login() in redirect mode, Latchkey's
// login and a Russian, dark consent dialog (lang_id=0, scheme=dark), back
// with code and device_id, then Auth.exchangeCode,
// Auth.refreshToken, Auth.userInfo, Auth.publicInfo and Auth.logout.
func TestVKIDWebSDK(t *testing.T) {
	sdk, err := os.ReadFile(vkidSDK)
	if err != nil {
		testenv.Missing(t, "@vkid/sdk (npm ci --prefix clients/node)")
	}
	page, err := os.ReadFile(filepath.Join("testdata", "vkid", "page.html"))
	if err != nil {
		t.Fatal(err)
	}
	e := newTLSEnv(t, fastAPI)
	u := e.user("sofia", "sofia@example.com")

	// The app's own server: http://localhost:port, another origin than
	// Latchkey's https://127.0.0.1:port.
	var cfg []byte
	appServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sdk.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(sdk)
		case "/", "/cb":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(strings.Replace(string(page), "<!--cfg-->", `<script id="cfg" type="application/json">`+string(cfg)+`</script>`, 1)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(appServer.Close)
	appOrigin := strings.Replace(appServer.URL, "127.0.0.1", "localhost", 1)
	app := e.app(u.ID, storage.Web, appOrigin+"/cb")
	domain := strings.TrimPrefix(e.URL, "https://")
	cfg, _ = json.Marshal(map[string]any{"app": app.ID, "state": "st-" + fmt.Sprint(time.Now().UnixNano()), "verifier": vkidVerifier,
		"domain": domain, "lang": 0, "scheme": "dark"}) // lang 0: Russian

	ctx := testenv.Browser(t, chromedp.Flag("ignore-certificate-errors", true))
	if err := chromedp.Do(ctx, chromedp.Navigate(appOrigin+"/"), chromedp.WaitVisible(`#login`), chromedp.Click(`#login`),
		chromedp.WaitVisible(`input[name=login]`)); err != nil {
		t.Fatal(err)
	}
	if login, err := chromedp.Run(ctx, chromedp.Text(`main`)); err != nil || !strings.Contains(login, "Пароль") {
		t.Fatalf("the login page on the way to a lang_id=0 dialog: %q %v", login, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(`input[name=login]`, "sofia"),
		chromedp.SendKeys(`input[name=password]`, "password-sofia"),
		chromedp.Submit(`input[name=login]`),
		chromedp.WaitVisible(`button[name=decision][value=allow]`)); err != nil {
		t.Fatal(err)
	}
	testenv.Screenshot(t, ctx, "vkid-consent-ru-dark")
	// lang_id and scheme reach the dialog: Russian, dark.
	dialog, err := chromedp.Run(ctx, chromedp.Text(`main`))
	if err != nil {
		t.Fatal(err)
	}
	class, err := chromedp.Run(ctx, chromedp.AttributeValue(`body`, "class"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dialog, "запрашивает доступ") || !strings.Contains(dialog, "Разрешить") || !strings.Contains(class.Value, "theme-dark") {
		t.Fatalf("the dialog for lang_id=0, scheme=dark: class %q, text %q", class.Value, dialog)
	}
	if err := chromedp.Do(ctx, chromedp.Click(`button[name=decision][value=allow]`), chromedp.WaitVisible(`#result:not(:empty)`)); err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(ctx, chromedp.Text(`#result`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Redirect map[string]string
		Exchange struct {
			AccessToken  string  `json:"access_token"`
			RefreshToken string  `json:"refresh_token"`
			IDToken      string  `json:"id_token"`
			UserID       float64 `json:"user_id"`
			Scope        string
		}
		Refresh struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		UserInfo   struct{ User map[string]any }
		PublicInfo struct{ User map[string]any }
		Logout     map[string]any
		// AfterLogout is the SDK's rejection of userInfo with the logged-out token.
		AfterLogout map[string]any
		Failure     any
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("the page's result %q: %v", out, err)
	}
	if res.Failure != nil {
		t.Fatalf("the SDK failed: %v (redirect %v)", res.Failure, res.Redirect)
	}
	if res.Redirect["code"] == "" || res.Redirect["device_id"] == "" || res.Redirect["type"] != "code_v2" {
		t.Fatalf("the redirect: %v", res.Redirect)
	}
	if res.Exchange.AccessToken == "" || res.Exchange.IDToken == "" || int64(res.Exchange.UserID) != u.ID || res.Exchange.Scope != "vkid.personal_info email" {
		t.Fatalf("exchangeCode: %+v", res.Exchange)
	}
	if res.Refresh.RefreshToken == "" || res.Refresh.RefreshToken == res.Exchange.RefreshToken || res.Refresh.AccessToken == res.Exchange.AccessToken {
		t.Fatalf("refreshToken: %+v", res.Refresh)
	}
	if res.UserInfo.User["user_id"] != fmt.Sprint(u.ID) || res.UserInfo.User["email"] != "sofia@example.com" {
		t.Fatalf("userInfo: %v", res.UserInfo)
	}
	if res.PublicInfo.User["first_name"] != "Sofia" || res.PublicInfo.User["last_name"] != "T." {
		t.Fatalf("publicInfo: %v", res.PublicInfo)
	}
	if res.Logout["response"] != float64(1) || res.AfterLogout["error"] != "invalid_token" {
		t.Fatalf("logout: %v, then userInfo: %v", res.Logout, res.AfterLogout)
	}
}
