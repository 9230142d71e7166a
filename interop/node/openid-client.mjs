// panva's openid-client with its strictest settings: ID token signatures checked against the
// JWKS (non-repudiation), `state`, `nonce`, PKCE and RFC 9207 `iss` checked on the callback.
// It registers itself from the issuer the API's RFC 9728 metadata names, pushes its
// authorization request (PAR), calls the API, reads the userinfo, refreshes with rotation,
// and sees a replayed refresh token refused.
import * as openid from 'openid-client';
import { apiUrl, browse, later, pastGrace, check, redirectUrl, refusal, report } from './stage.mjs';

const unauthenticated = await fetch(apiUrl);
check(unauthenticated.status === 401, `401 without a token, got ${unauthenticated.status}`);
const metadataUrl = /resource_metadata="([^"]+)"/.exec(unauthenticated.headers.get('www-authenticate'))?.[1];
check(metadataUrl, 'resource_metadata in WWW-Authenticate');
const protectedResource = await (await fetch(metadataUrl)).json();
const resource = protectedResource.resource;

const config = await openid.dynamicClientRegistration(
  new URL(protectedResource.authorization_servers[0]),
  {
    client_name: 'openid-client',
    redirect_uris: [redirectUrl],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid email notes:read offline_access',
  },
  openid.None(),
  { execute: [openid.allowInsecureRequests, openid.enableNonRepudiationChecks] },
);
const server = config.serverMetadata();
check(server.supportsPKCE('S256'), 'PKCE S256 advertised');

const verifier = openid.randomPKCECodeVerifier();
const state = openid.randomState();
const nonce = openid.randomNonce();
const request = await openid.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: redirectUrl,
  scope: `openid email ${protectedResource.scopes_supported.join(' ')} offline_access`,
  code_challenge: await openid.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
  resource,
});
check(request.searchParams.has('request_uri') && !request.searchParams.has('scope'), 'a pushed request');

const back = await browse(request.href);
const tokens = await openid.authorizationCodeGrant(
  config,
  back,
  { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
  { resource },
);
const claims = tokens.claims();
check(claims.email, 'the email claim in the ID token');

const called = await openid.fetchProtectedResource(config, tokens.access_token, new URL(apiUrl), 'GET');
check(called.status === 200, `the API answers 200, got ${called.status}`);
const { subject } = await called.json();

// An access token for the provider itself reads the userinfo.
const rotated = await openid.refreshTokenGrant(config, tokens.refresh_token);
check(rotated.refresh_token !== tokens.refresh_token, 'the refresh token rotated');
const userinfo = await openid.fetchUserInfo(config, rotated.access_token, claims.sub);
check(userinfo.email === claims.email, 'userinfo names the same person');

// Past the grace window for a lost response, a replay is reuse.
await later(pastGrace);
for (const [token, what] of [[tokens.refresh_token, 'a replayed refresh token'], [rotated.refresh_token, 'the family after a replay']]) {
  const refused = await refusal(openid.refreshTokenGrant(config, token), what);
  check(refused instanceof openid.ResponseBodyError && refused.error === 'invalid_grant', `invalid_grant for ${what}, got ${refused}`);
}

report({ subject, client_id: config.clientMetadata().client_id, issuer: server.issuer, resource, email: claims.email });
