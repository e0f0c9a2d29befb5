// Command device-dpop is a device app that uses Latchkey as a TV or a CLI
// would: the device flow (RFC 8628) to get a user token, bound to a key of
// its own with DPoP (RFC 9449), then an API call with that token.
//
//	go run ./examples/device-dpop -server http://127.0.0.1:8080 -client-id 1
//
// It prints where to type the code; open it, log in and allow. (With
// `latchkey serve --demo`, client 1 is the demo standalone app.)
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"latchkey/internal/dpop"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "Latchkey's URL")
	clientID := flag.String("client-id", "1", "a standalone app's client_id (a public client: no secret)")
	scope := flag.String("scope", "friends", "the permissions to ask for")
	flag.Parse()
	if err := run(strings.TrimSuffix(*server, "/"), *clientID, *scope); err != nil {
		fmt.Fprintln(os.Stderr, "device-dpop:", err)
		os.Exit(1)
	}
}

func run(server, clientID, scope string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	signer := dpop.NewSigner(key, jose.ES256)

	// 1. Ask for a device code.
	var da struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		Interval                int    `json:"interval"`
	}
	if err := post(server+"/oauth/device/code", url.Values{"client_id": {clientID}, "scope": {scope}}, "", &da); err != nil {
		return err
	}
	fmt.Printf("Open %s and allow the code %s.\n", da.VerificationURIComplete, da.UserCode)

	// 2. Poll, each time with a fresh DPoP proof: the token is bound to
	// this program's key.
	interval := time.Duration(da.Interval) * time.Second
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Error       string `json:"error"`
	}
	for {
		time.Sleep(interval)
		proof, err := signer.Proof("POST", server+"/access_token", "", rand.Text(), time.Now())
		if err != nil {
			return err
		}
		tok.Error = ""
		err = post(server+"/access_token", url.Values{"client_id": {clientID}, "device_code": {da.DeviceCode},
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}}, proof, &tok)
		switch {
		case tok.Error == "authorization_pending":
			continue
		case tok.Error == "slow_down":
			interval += 5 * time.Second
			continue
		case err != nil:
			return err
		}
		break
	}
	fmt.Printf("Got a %s token.\n", tok.TokenType)

	// 3. Call the API: Authorization: DPoP, and a proof bound to the token.
	api := server + "/method/users.get"
	proof, err := signer.Proof("GET", api, tok.AccessToken, rand.Text(), time.Now())
	if err != nil {
		return err
	}
	req, _ := http.NewRequest("GET", api+"?v=5.199", nil)
	req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	fmt.Printf("users.get: %s\n", body)
	return err
}

// post sends a form and decodes the JSON answer into v; an OAuth error
// answer is decoded too, and reported when v has no error field.
func post(u string, form url.Values, proof string, v any) error {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %d %s", u, resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", u, resp.StatusCode, body)
	}
	return nil
}
