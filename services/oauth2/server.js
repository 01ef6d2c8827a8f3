// An OAuth 2.0 token endpoint nobody here wrote: panva's oidc-provider (an
// OpenID Certified implementation), configured for machine-to-machine
// clients. Only this launcher and its configuration are ours; grant
// handling, client authentication and token storage are oidc-provider's.
//
// Env: PORT (default 4000, bound on 127.0.0.1), CLIENT_ID / CLIENT_SECRET
// (default clw-client / clw-client-secret), TOKEN_TTL_S (default 600).

import http from 'node:http';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 4000);
const CLIENT_ID = process.env.CLIENT_ID || 'clw-client';
const CLIENT_SECRET = process.env.CLIENT_SECRET || 'clw-client-secret';
const TOKEN_TTL_S = Number(process.env.TOKEN_TTL_S || 600);
const issuer = `http://127.0.0.1:${PORT}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api:read api:write',
  }],
  scopes: ['api:read', 'api:write'],
  features: {
    clientCredentials: { enabled: true },
    // RFC 7662, at /token/introspection; RFC 7009 at /token/revocation.
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
  },
  ttl: { ClientCredentials: TOKEN_TTL_S },
});
// Plain http on loopback: tell the provider it is not behind a TLS proxy.
provider.proxy = false;
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const handle = provider.callback();
const server = http.createServer((req, res) => {
  // clw-cli --spawn-server polls GET /ready.
  if (req.method === 'GET' && (req.url === '/ready' || req.url === '/health')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  handle(req, res);
});
server.keepAliveTimeout = 65000;
server.listen(PORT, '127.0.0.1', () => {
  console.log(`oidc-provider token endpoint listening on ${issuer}/token (client ${CLIENT_ID})`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
