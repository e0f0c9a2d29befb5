// An MCP server (the official SDK, Streamable HTTP, stateless) with one tool,
// whoami, that says who called it. Two ways to know:
//   node mcp-server.mjs jose LATCHKEY_URL
//     it verifies Latchkey's JWT access tokens itself with jose (issuer,
//     audience = its own URL, typ at+jwt, against Latchkey's JWKS) and serves
//     its RFC 9728 metadata, naming Latchkey as its authorization server;
//   node mcp-server.mjs gateway
//     it sits behind Latchkey's gateway and reads who is calling from the
//     X-Latchkey-* headers (no token reaches it).
// It prints {"url": "<its MCP endpoint>"} once it listens.
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [mode, latchkey] = process.argv.slice(2);
if (mode !== 'jose' && mode !== 'gateway') {
  console.error('usage: mcp-server.mjs jose LATCHKEY_URL | gateway');
  process.exit(2);
}
const jwks = mode === 'jose' ? createRemoteJWKSet(new URL('/oauth/jwks', latchkey)) : null;

function newServer() {
  const server = new McpServer({ name: 'latchkey-test-server', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who is calling, as the token says' }, async (extra) => ({
    content: [{ type: 'text', text: JSON.stringify(extra.authInfo?.extra ?? {}) }],
  }));
  return server;
}

const httpServer = http.createServer(async (req, res) => {
  const base = `http://127.0.0.1:${httpServer.address().port}`;
  const resource = `${base}/mcp`;
  const metadataURL = `${base}/.well-known/oauth-protected-resource/mcp`;
  const path = new URL(req.url, base).pathname;
  if (mode === 'jose' && (path === '/.well-known/oauth-protected-resource/mcp' || path === '/.well-known/oauth-protected-resource')) {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ resource, authorization_servers: [latchkey], scopes_supported: ['mcp:tools'], bearer_methods_supported: ['header'] }));
    return;
  }
  if (path !== '/mcp') {
    res.statusCode = 404;
    res.end();
    return;
  }
  if (mode === 'jose') {
    const header = req.headers.authorization ?? '';
    const raw = header.startsWith('Bearer ') ? header.slice(7) : '';
    try {
      const { payload } = await jwtVerify(raw, jwks, { issuer: latchkey, audience: resource, typ: 'at+jwt' });
      req.auth = { token: raw, clientId: String(payload.client_id), scopes: String(payload.scope ?? '').split(' '),
        extra: { sub: payload.sub, client_id: payload.client_id, scope: payload.scope, aud: payload.aud, verified_by: 'jose' } };
    } catch {
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', `Bearer resource_metadata="${metadataURL}"`);
      res.end();
      return;
    }
  } else {
    const h = req.headers;
    req.auth = { token: '', clientId: h['x-latchkey-client-id'] ?? '', scopes: String(h['x-latchkey-scope'] ?? '').split(' '),
      extra: { sub: h['x-latchkey-subject'], client_id: h['x-latchkey-client-id'], scope: h['x-latchkey-scope'],
        saw_authorization: h.authorization !== undefined, verified_by: 'gateway' } };
  }
  let body;
  if (req.method === 'POST') {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    body = JSON.parse(Buffer.concat(chunks).toString() || 'null');
  }
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
});

httpServer.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${httpServer.address().port}/mcp` }));
});
