// panva's oauth4webapi, which checks everything by default: RFC 9728 discovery from the API's
// challenge (the metadata must name the resource it was fetched for), RFC 8414 metadata at the
// path-inserted URL, dynamic registration, the authorization response's `state` and RFC 9207
// `iss`, the ID token (signature, nonce, audience, times), the access token as a resource
// server checks an RFC 9068 JWT, and refresh rotation with a replay refused.
import * as oauth from 'oauth4webapi';
import { apiUrl, browse, later, pastGrace, check, redirectUrl, refusal, report } from './stage.mjs';

// Loopback test servers speak http; every other check stays on.
const http = { [oauth.allowInsecureRequests]: true };

// An expired or foreign token earns a challenge that names the resource's metadata.
const challenge = await refusal(
  oauth.protectedResourceRequest('not-a-token', 'GET', new URL(apiUrl), new Headers(), null, http),
  'a made-up token',
);
check(challenge instanceof oauth.WWWAuthenticateChallengeError, `a challenge, got ${challenge}`);
const metadataUrl = challenge.cause[0].parameters.resource_metadata;
check(metadataUrl, 'resource_metadata in the challenge');
const resource = new URL(metadataUrl.replace('/.well-known/oauth-protected-resource', ''));
const protectedResource = await oauth.processResourceDiscoveryResponse(
  resource,
  await oauth.resourceDiscoveryRequest(resource, http),
);

const issuer = new URL(protectedResource.authorization_servers[0]);
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...http }),
);
check(as.authorization_response_iss_parameter_supported === true, 'RFC 9207 advertised');

const client = await oauth.processDynamicClientRegistrationResponse(
  await oauth.dynamicClientRegistrationRequest(
    as,
    {
      client_name: 'oauth4webapi client',
      redirect_uris: [redirectUrl],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      scope: `openid email ${protectedResource.scopes_supported.join(' ')} offline_access`,
    },
    http,
  ),
);
const auth = oauth.None();

const verifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const nonce = oauth.generateRandomNonce();
const request = new URL(as.authorization_endpoint);
for (const [name, value] of Object.entries({
  client_id: client.client_id,
  redirect_uri: redirectUrl,
  response_type: 'code',
  scope: client.scope,
  code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
  resource: resource.href,
})) request.searchParams.set(name, value);

const back = await browse(request.href);
// Someone else's state is refused before anything else happens.
const wrongState = await refusal(
  Promise.resolve().then(() => oauth.validateAuthResponse(as, client, back, 'another-state')),
  'a foreign state',
);
check(wrongState instanceof oauth.OperationProcessingError, `state mismatch, got ${wrongState}`);
const callback = oauth.validateAuthResponse(as, client, back, state);

const exchanged = await oauth.processAuthorizationCodeResponse(
  as,
  client,
  await oauth.authorizationCodeGrantRequest(as, client, auth, callback, redirectUrl, verifier, {
    additionalParameters: { resource: resource.href },
    ...http,
  }),
  { expectedNonce: nonce, requireIdToken: true },
);
const idToken = oauth.getValidatedIdTokenClaims(exchanged);

// The API's view: an RFC 9068 access token for this resource.
const access = await oauth.validateJwtAccessToken(
  as,
  new Request(apiUrl, { headers: { authorization: `Bearer ${exchanged.access_token}` } }),
  resource.href,
  http,
);
check(access.sub === idToken.sub && access.client_id === client.client_id, 'subject and client in the access token');

const called = await oauth.protectedResourceRequest(exchanged.access_token, 'GET', new URL(apiUrl), new Headers(), null, http);
check(called.status === 200, `the API answers 200, got ${called.status}`);
const { subject } = await called.json();

const refresh = async (token) =>
  oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, auth, token, {
      additionalParameters: { resource: resource.href },
      ...http,
    }),
  );
const rotated = await refresh(exchanged.refresh_token);
check(rotated.refresh_token && rotated.refresh_token !== exchanged.refresh_token, 'the refresh token rotated');
const again = await oauth.protectedResourceRequest(rotated.access_token, 'GET', new URL(apiUrl), new Headers(), null, http);
check(again.status === 200, 'the refreshed token calls the API');

// Past the grace window for a lost response, a replay is reuse.
await later(pastGrace);
for (const [token, what] of [[exchanged.refresh_token, 'a replayed refresh token'], [rotated.refresh_token, 'the family after a replay']]) {
  const refused = await refusal(refresh(token), what);
  check(refused instanceof oauth.ResponseBodyError && refused.error === 'invalid_grant', `invalid_grant for ${what}, got ${refused}`);
}

report({ subject, client_id: client.client_id, issuer: as.issuer, resource: resource.href, email: idToken.email });
