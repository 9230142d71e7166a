// The MCP TypeScript SDK v2 (`@modelcontextprotocol/client`): the v1 journey, plus what v2
// checks on its own: the RFC 9207 `iss` of the authorization response against the recorded
// discovery, `offline_access` added because the provider advertises it, and the
// authorization-server binding of the callback leg. With `CLIENT_METADATA_URL` set, the
// connector is identified by its client ID metadata document instead of registering.
import {
  IssuerMismatchError,
  OAuthError,
  OAuthErrorCode,
  auth,
  discoverAuthorizationServerMetadata,
  extractResourceMetadataUrl,
  refreshAuthorization,
} from '@modelcontextprotocol/client';
import { MemoryConnector, apiUrl, browse, callApi, check, later, pastGrace, refusal, report } from './stage.mjs';

// v2 also sends `state` and binds the callback leg to the discovery it recorded.
class Connector extends MemoryConnector {
  state() { return (this.sentState = crypto.randomUUID()); }
  saveDiscoveryState(state) { this.discovery = state; }
  discoveryState() { return this.discovery; }
}

const connector = new Connector('MCP SDK v2 connector');
const unauthenticated = await callApi();
check(unauthenticated.status === 401, `401 without a token, got ${unauthenticated.status}`);
const resourceMetadataUrl = extractResourceMetadataUrl(unauthenticated);
check(resourceMetadataUrl, 'resource_metadata in WWW-Authenticate');
const options = { serverUrl: apiUrl, resourceMetadataUrl };

check((await auth(connector, options)) === 'REDIRECT', 'a redirect to the authorization server');
const request = connector.authorizationUrl;
check(request.searchParams.get('code_challenge_method') === 'S256', 'PKCE S256');
check(request.searchParams.get('scope').split(' ').includes('offline_access'), 'offline_access asked for');
const resource = request.searchParams.get('resource');

const back = await browse(request.href);
check(back.searchParams.get('state') === connector.sentState, 'state comes back');
const [code, iss] = [back.searchParams.get('code'), back.searchParams.get('iss')];
check((await auth(connector, { ...options, authorizationCode: code, iss })) === 'AUTHORIZED', 'code exchange');
const first = connector.saved;
check(first.refresh_token, 'a refresh token');

const called = await callApi(first.access_token);
check(called.status === 200, `the API answers 200, got ${called.status}`);
const { subject } = await called.json();

check((await auth(connector, options)) === 'AUTHORIZED', 'refresh');
const second = connector.saved;
check(second.refresh_token !== first.refresh_token, 'the refresh token rotated');
check((await callApi(second.access_token)).status === 200, 'the refreshed token calls the API');

// A forged `iss` on the callback is refused before any code is spent.
const forged = await refusal(
  auth(connector, { ...options, authorizationCode: 'unused', iss: 'https://attacker.example' }),
  'a callback naming another issuer',
);
check(forged instanceof IssuerMismatchError, `an issuer mismatch, got ${forged}`);

// Past the grace window for a lost response, a replay is reuse.
await later(pastGrace);
const metadata = await discoverAuthorizationServerMetadata(iss);
const again = (refreshToken) =>
  refreshAuthorization(iss, { metadata, clientInformation: connector.client, refreshToken, resource });
const replayed = await refusal(again(first.refresh_token), 'a replayed refresh token');
check(replayed instanceof OAuthError && replayed.code === OAuthErrorCode.InvalidGrant, `invalid_grant, got ${replayed}`);
const family = await refusal(again(second.refresh_token), 'the family after a replay');
check(family instanceof OAuthError && family.code === OAuthErrorCode.InvalidGrant, `invalid_grant, got ${family}`);

report({ subject, client_id: connector.client.client_id, issuer: iss, resource, scope: first.scope });
