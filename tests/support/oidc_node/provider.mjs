// A real OpenID provider for the sign-in tests: panva/oidc-provider (OpenID Certified),
// on 127.0.0.1, with one public native client (PKCE required, loopback redirect on any
// port per RFC 8252 7.3), short-lived access tokens, rotating refresh tokens, and one
// test user whose password is checked by the login form below.
//
// Usage: node provider.mjs PORT CLIENT_ID USER PASSWORD ACCESS_TOKEN_TTL_S
// Prints "listening ISSUER" on stdout when ready.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, testUser, testPassword, atTtl] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  [testUser]: { sub: testUser, name: 'Test Reader', preferred_username: testUser },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  // PKCE is required of public clients by default; S256 is the only method allowed.
  pkce: { required: () => true },
  ttl: {
    AccessToken: Number(atTtl),
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 24 * 3600,
    Grant: 24 * 3600,
    Interaction: 600,
    Session: 24 * 3600,
  },
  // A refresh token for every code grant of a client allowed to refresh (no offline_access dance).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  // Put the profile claims (name, preferred_username) in the ID token too.
  conformIdTokenClaims: false,
  // An expired access token is expired: no grace period (the default tolerates 15 s).
  clockTolerance: 0,
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  findAccount: async (ctx, id) => {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => account };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
});

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function page(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!DOCTYPE html><html><body>${html}</body></html>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session, grantId } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      return page(res, 200, `<form method="post" action="/interaction/${uid}/login">
        <input name="username"><input name="password" type="password">
        <button type="submit">Sign in</button></form>`);
    }
    return page(res, 200, `<form method="post" action="/interaction/${uid}/confirm">
      <p>Allow ${params.client_id}: ${params.scope}</p><button type="submit">Allow</button></form>`);
  }
  const form = await readForm(req);
  if (action === 'login') {
    if (!accounts[form.get('username')] || form.get('password') !== testPassword) {
      return page(res, 401, `<p class="error">Invalid user name or password</p>
        <form method="post" action="/interaction/${uid}/login">
        <input name="username"><input name="password" type="password"></form>`);
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.get('username') } },
      { mergeWithLastSubmission: false });
  }
  const grant = grantId ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?/.exec(req.url);
  if (!match) return callback(req, res);
  return interaction(req, res, match[1], match[2]).catch((err) => {
    page(res, 500, `<p>${String(err.message).replace(/[<>&]/g, '')}</p>`);
  });
});
server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
