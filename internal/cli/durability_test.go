package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"latchkey/internal/admin/view"
)

// The server is killed (SIGKILL) while 32 clients are being issued client
// credentials tokens, their writes grouped into shared transactions: every
// token a client was answered with works after a restart, with either
// --sqlite-sync.
func TestAcknowledgedTokensSurviveKill9(t *testing.T) {
	for _, mode := range []string{"normal", "full"} {
		t.Run("sqlite-sync "+mode, func(t *testing.T) {
			c := newCLI(t)
			var user struct{ ID int64 }
			c.ok(&user, "user", "create", "--login", "owner", "--password", "owner-password")
			var app view.App
			c.ok(&app, "app", "create", "--owner", fmt.Sprint(user.ID), "--title", "Load", "--type", "web", "--redirect-uri", "https://app.example/cb")
			c.ok(nil, "app", "set", "--app", fmt.Sprint(app.ClientID), "--client-credentials", "on")

			cmd, base := startBinary(t, "serve", "--addr", "127.0.0.1:0", "--db", "sqlite:"+c.db, "--sqlite-sync", mode)
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {fmt.Sprint(app.ClientID)}, "client_secret": {app.ClientSecret}}.Encode()
			var mu sync.Mutex
			var acked []string
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					client := &http.Client{Timeout: 10 * time.Second}
					for {
						resp, err := client.Post(base+"/access_token", "application/x-www-form-urlencoded", strings.NewReader(form))
						if err != nil {
							return // killed
						}
						var out struct {
							AccessToken string `json:"access_token"`
						}
						err = json.NewDecoder(resp.Body).Decode(&out)
						resp.Body.Close()
						if err != nil || resp.StatusCode != 200 {
							return // killed while answering
						}
						mu.Lock()
						acked = append(acked, out.AccessToken)
						mu.Unlock()
					}
				})
			}
			// Kill it in full flight: after some hundreds of answers.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= 500 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("only %d tokens issued in 30 s", n)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			cmd.Wait()

			base, _, stop := startServe(t, c.getenv)
			defer stop()
			lost := 0
			for _, tok := range acked {
				req, _ := http.NewRequest("POST", base+"/oauth/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(fmt.Sprint(app.ClientID), app.ClientSecret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var out struct{ Active bool }
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if !out.Active {
					lost++
				}
			}
			t.Logf("%d tokens acknowledged before the kill, %d of them lost", len(acked), lost)
			if lost > 0 {
				t.Fatalf("%d of %d acknowledged tokens were lost by kill -9", lost, len(acked))
			}
		})
	}
}
