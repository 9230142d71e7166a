// The client programs' side of the conversation with tests/src/interop.rs: the browser is
// the test's, reached over standard input and output, one line at a time.
import { createInterface } from 'node:readline';

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** The protected API this client wants to call (`{rp}/api/notes`). */
export const apiUrl = process.env.API_URL;

/** Sends the person's browser to `url`; resolves to the URL the provider sent it back to. */
export async function browse(url) {
  process.stdout.write(`authorize ${url}\n`);
  const { value, done } = await lines.next();
  if (done) throw new Error('the test closed the conversation');
  return new URL(value);
}

/** Lets `seconds` pass on the provider's clock (the test moves it). */
export async function later(seconds) {
  process.stdout.write(`later ${seconds}\n`);
  const { value } = await lines.next();
  if (value !== 'ok') throw new Error(`the test did not move the clock: ${value}`);
}

/** The refresh grace window (seconds) a tenant allows by default, and a moment past it. */
export const pastGrace = 6;

/** Reports what the client saw and ends the conversation. */
export function report(result) {
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
  process.stdin.destroy();
}

export function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

/** Resolves to the error `promise` rejects with; fails if it resolves. */
export async function refusal(promise, what) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`expected a refusal: ${what}`);
}

/** Calls the API with `accessToken` (or none); resolves to the response. */
export function callApi(accessToken) {
  const headers = accessToken ? { authorization: `Bearer ${accessToken}` } : {};
  return fetch(apiUrl, { headers });
}

/** Where the person's browser comes back to: a native client's loopback listener. */
export const redirectUrl = 'http://127.0.0.1:9/callback';

/** An MCP SDK's `OAuthClientProvider` kept in memory: a native connector with a loopback
 *  redirect and no secret. With `CLIENT_METADATA_URL` set it is known by its client ID
 *  metadata document and never registers. */
export class MemoryConnector {
  redirectUrl = redirectUrl;
  clientMetadataUrl = process.env.CLIENT_METADATA_URL || undefined;
  constructor(name) {
    this.clientMetadata = {
      client_name: name,
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.client; }
  saveClientInformation(client) { this.client = client; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  redirectToAuthorization(url) { this.authorizationUrl = url; }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
}
