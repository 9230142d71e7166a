// The MCP TypeScript SDK v1 (`@modelcontextprotocol/sdk`) as an MCP connector uses it: an
// unauthenticated call, discovery from the `resource_metadata` challenge, dynamic registration
// (or a client ID metadata document when `CLIENT_METADATA_URL` is set),
// authorization with PKCE and a resource indicator, the code exchange, the call, a refresh,
// and a replayed refresh token refused.
import {
  auth,
  discoverAuthorizationServerMetadata,
  extractResourceMetadataUrl,
  refreshAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidGrantError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { MemoryConnector, apiUrl, browse, callApi, check, later, pastGrace, refusal, report } from './stage.mjs';

const connector = new MemoryConnector('MCP SDK v1 connector');
const unauthenticated = await callApi();
check(unauthenticated.status === 401, `401 without a token, got ${unauthenticated.status}`);
const resourceMetadataUrl = extractResourceMetadataUrl(unauthenticated);
check(resourceMetadataUrl, 'resource_metadata in WWW-Authenticate');
const options = { serverUrl: apiUrl, resourceMetadataUrl };

check((await auth(connector, options)) === 'REDIRECT', 'a redirect to the authorization server');
const request = connector.authorizationUrl;
check(request.searchParams.get('code_challenge_method') === 'S256', 'PKCE S256');
const resource = request.searchParams.get('resource');
check(resource && apiUrl.startsWith(resource), `resource indicator ${resource}`);

const back = await browse(request.href);
const code = back.searchParams.get('code');
check(code, `a code in ${back}`);
check((await auth(connector, { ...options, authorizationCode: code })) === 'AUTHORIZED', 'code exchange');
const first = connector.saved;
check(first.refresh_token, 'a refresh token');

const called = await callApi(first.access_token);
check(called.status === 200, `the API answers 200, got ${called.status}`);
const { subject } = await called.json();

// With a refresh token on hand, auth() refreshes rather than redirecting.
check((await auth(connector, options)) === 'AUTHORIZED', 'refresh');
const second = connector.saved;
check(second.refresh_token && second.refresh_token !== first.refresh_token, 'the refresh token rotated');
check((await callApi(second.access_token)).status === 200, 'the refreshed token calls the API');

// Once the grace window for a lost response has passed, the replayed first token is
// refused, and the whole family with it.
await later(pastGrace);
const issuer = back.searchParams.get('iss');
const metadata = await discoverAuthorizationServerMetadata(issuer);
const again = (refreshToken) =>
  refreshAuthorization(issuer, { metadata, clientInformation: connector.client, refreshToken, resource });
const replayed = await refusal(again(first.refresh_token), 'a replayed refresh token');
check(replayed instanceof InvalidGrantError, `invalid_grant for the replay, got ${replayed}`);
const family = await refusal(again(second.refresh_token), 'the family after a replay');
check(family instanceof InvalidGrantError, `invalid_grant for the family, got ${family}`);

report({ subject, client_id: connector.client.client_id, issuer, resource, scope: first.scope });
