// The OpenID Connect code flow with PKCE and nonce, UserInfo and a refresh,
// driven by openid-client against a running Latchkey. Usage:
//   node oidc-flow.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI
// It prints {"authorize": URL} and reads the URL the browser was sent back
// to on stdin, then prints what it got.
import * as client from 'openid-client'
import * as readline from 'node:readline'

const [issuer, clientId, clientSecret, redirectUri] = process.argv.slice(2)
const config = await client.discovery(new URL(issuer), clientId, clientSecret, undefined, {
  execute: [client.allowInsecureRequests], // the test server is plain http on loopback
})
const verifier = client.randomPKCECodeVerifier()
const nonce = client.randomNonce()
const authorize = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  nonce,
})
console.log(JSON.stringify({ authorize: authorize.href }))

const callback = await new Promise((resolve) => {
  const rl = readline.createInterface({ input: process.stdin })
  rl.once('line', (line) => { rl.close(); resolve(line.trim()) })
})
const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  idTokenExpected: true,
})
const claims = tokens.claims()
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
console.log(JSON.stringify({
  sub: claims.sub,
  nonceMatched: claims.nonce === nonce,
  email: info.email,
  name: info.name,
  refreshed: Boolean(refreshed.access_token) && refreshed.access_token !== tokens.access_token,
  rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
  refreshedIdToken: Boolean(refreshed.id_token),
}))
