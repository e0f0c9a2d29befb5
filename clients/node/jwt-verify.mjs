// Verifies RFC 9068 JWT access tokens with jose, as an API written in Node
// would: the key from the issuer's JWKS, typ at+jwt, the issuer and the
// audience. Reads one token per line on stdin and prints one JSON line per
// token: {"ok":true,"claims":{…},"kid":"…"} or {"ok":false,"error":"…"}.
//
//   node jwt-verify.mjs <issuer> <audience>
import { createRemoteJWKSet, jwtVerify } from 'jose'
import readline from 'node:readline'

const [issuer, audience] = process.argv.slice(2)
const jwks = createRemoteJWKSet(new URL(issuer + '/oauth/jwks'), { cacheMaxAge: 0, cooldownDuration: 0 })

for await (const line of readline.createInterface({ input: process.stdin })) {
  const token = line.trim()
  if (!token) continue
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { typ: 'at+jwt', issuer, audience })
    console.log(JSON.stringify({ ok: true, claims: payload, kid: protectedHeader.kid }))
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: String(err.code || err.message) }))
  }
}
