// node oidc-provider set up to do the work ours does in bench/compare.sh: one issuer, one
// confidential client (client_secret_basic), ES256 JWT access tokens for a resource server,
// rotating refresh tokens, PKCE S256, introspection. Its storage is the package's own
// in-memory adapter (nothing durable), given an unbounded map instead of its 1,000-entry LRU so
// that the tokens minted for a run are still there when the run uses them. Before it listens it mints CODES authorization codes and
// REFRESH refresh tokens through its own models (the bench-only way in) and writes them to
// OUT/codes.txt and OUT/refresh.txt, one per line, then prints "ready".
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

// What the memory adapter needs of its store; expiry is left to the run's length.
class Unbounded extends Map {
  set(key, value) { return super.set(key, value); }
}
const store = new Unbounded();

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const resource = 'https://api.example';
const redirect = 'http://127.0.0.1:9/cb';
// The PKCE challenge of bench-seed's verifier.
const challenge = '2jWB5HORkKgqnTwY916xUGwDhNNXcfic4GfY6Udgc-4';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench',
    client_secret: process.env.CLIENT_SECRET,
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    redirect_uris: [redirect],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    scope: 'openid offline_access api:read',
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'offline_access', 'api:read'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api:read',
        audience: resource,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  ttl: { AccessToken: 600, ClientCredentials: 600, AuthorizationCode: 3600, Grant: 86_400, RefreshToken: 86_400, IdToken: 600 },
  adapter: (model) => new MemoryAdapter(model, store),
  rotateRefreshToken: true,
  issueRefreshToken: () => true,
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
});
provider.proxy = false;
if (process.env.DEBUG_PEER) provider.on('grant.error', (ctx, err) => console.error(err, err.error_detail));

async function mint(count, make) {
  const values = [];
  for (let i = 0; i < count; i += 1) values.push(await make());
  return values;
}

async function grant() {
  const g = new provider.Grant({ accountId: 'bench-user', clientId: 'bench' });
  g.addOIDCScope('openid offline_access');
  g.addResourceScope(resource, 'api:read');
  return g.save();
}

const out = process.env.OUT;
const codes = await mint(Number(process.env.CODES ?? 0), async () => new provider.AuthorizationCode({
  accountId: 'bench-user',
  clientId: 'bench',
  grantId: await grant(),
  scope: 'openid offline_access',
  resource,
  redirectUri: redirect,
  codeChallenge: challenge,
  codeChallengeMethod: 'S256',
  authTime: Math.floor(Date.now() / 1000),
}).save());
const refreshTokens = await mint(Number(process.env.REFRESH ?? 0), async () => new provider.RefreshToken({
  accountId: 'bench-user',
  clientId: 'bench',
  grantId: await grant(),
  scope: 'openid offline_access',
  resource,
  gty: 'authorization_code',
  rotations: 0,
  iiat: Math.floor(Date.now() / 1000),
}).save());
writeFileSync(`${out}/codes.txt`, codes.join('\n') + '\n');
writeFileSync(`${out}/refresh.txt`, refreshTokens.join('\n') + '\n');
provider.listen(port, '127.0.0.1', () => console.log('ready'));
