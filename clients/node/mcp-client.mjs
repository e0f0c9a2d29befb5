// An MCP client (the official SDK) whose OAuthClientProvider registers itself
// dynamically (RFC 7591) or, given the URL of its client ID metadata
// document, uses that URL as its client_id; it runs the code flow with PKCE
// and `resource`, and calls the server's whoami tool:
//   node mcp-client.mjs MCP_SERVER_URL [METADATA_DOCUMENT_URL CALLBACK_PORT]
// It listens for its redirect on a loopback port, as native clients do,
// prints {"authorize": URL} for a person (the test's browser) to sign in and
// allow, then {"result": …, "client": …, "tokens": …} once the tool answered.
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const serverUrl = new URL(process.argv[2]);
const [clientMetadataUrl, callbackPort] = process.argv.slice(3);
let arrived;
const redirect = new Promise((resolve) => { arrived = resolve; });
const callback = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  if (u.pathname !== '/callback') {
    res.statusCode = 404;
    res.end();
    return;
  }
  res.setHeader('Content-Type', 'text/plain');
  res.end('Signed in: you can close this window.');
  arrived(u.searchParams);
});
await new Promise((resolve) => callback.listen(Number(callbackPort ?? 0), '127.0.0.1', resolve));
const redirectUrl = `http://127.0.0.1:${callback.address().port}/callback`;

const saved = {};
const provider = {
  clientMetadataUrl,
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return { client_name: 'MCP test client', redirect_uris: [redirectUrl], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none' };
  },
  clientInformation() { return saved.client; },
  saveClientInformation(info) { saved.client = info; },
  tokens() { return saved.tokens; },
  saveTokens(tokens) { saved.tokens = tokens; },
  redirectToAuthorization(url) { console.log(JSON.stringify({ authorize: url.href })); },
  saveCodeVerifier(v) { saved.verifier = v; },
  codeVerifier() { return saved.verifier; },
};

const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
try {
  await new Client({ name: 'latchkey-test-client', version: '1.0.0' }).connect(first);
  throw new Error('the server let an unauthenticated client in');
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
const params = await redirect;
if (!params.get('code')) throw new Error(`the authorization failed: ${params.get('error')} ${params.get('error_description')}`);
await first.finishAuth(params.get('code'));

const client = new Client({ name: 'latchkey-test-client', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }));
const { tools } = await client.listTools();
const answer = await client.callTool({ name: 'whoami', arguments: {} });
console.log(JSON.stringify({
  tools: tools.map((t) => t.name),
  result: JSON.parse(answer.content[0].text),
  client: { client_id: saved.client.client_id, registered: saved.client.client_id_issued_at !== undefined },
  tokens: { token_type: saved.tokens.token_type, scope: saved.tokens.scope, refresh: Boolean(saved.tokens.refresh_token) },
  iss: params.get('iss'),
}));
await client.close();
callback.close();
process.exit(0);
