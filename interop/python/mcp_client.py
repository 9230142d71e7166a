"""The Python MCP SDK's `OAuthClientProvider` as an MCP connector uses it: an httpx client
whose auth flow answers the API's 401 by itself (RFC 9728 discovery from the challenge,
metadata, dynamic registration or a client ID metadata document when `CLIENT_METADATA_URL` is
set, authorization with PKCE, `state`, RFC 9207 `iss` and a resource indicator, the code
exchange), then refreshes when the access token has expired.
A replayed rotated-out refresh token revokes the family, and the connector's next refresh
fails, so the SDK signs the person in again.

Talks to tests/src/interop.rs over standard input and output (see stage there)."""

import json
import os
import sys
import time
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

API_URL = os.environ["API_URL"]
REDIRECT_URL = "http://127.0.0.1:9/callback"


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"check failed: {what}")


async def later(seconds: int) -> None:
    """Lets `seconds` pass on the provider's clock (the test moves it)."""
    print(f"later {seconds}", flush=True)
    answer = await anyio.to_thread.run_sync(sys.stdin.readline)
    check(answer.strip() == "ok", f"the test did not move the clock: {answer!r}")


class Memory:
    """Token storage: what a connector keeps between runs."""

    def __init__(self, tokens: OAuthToken | None = None, client: OAuthClientInformationFull | None = None):
        self.tokens, self.client = tokens, client

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """The person's browser, which the test drives."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def open(self, url: str) -> None:
        self.requests.append(url)

    async def come_back(self) -> AuthorizationCodeResult:
        print(f"authorize {self.requests[-1]}", flush=True)
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        query = {k: v[0] for k, v in parse_qs(urlparse(line.strip()).query).items()}
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def connector(storage: Memory, browser: Browser) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="Python MCP SDK connector",
        redirect_uris=[REDIRECT_URL],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    # With a client ID metadata document, the connector is known by its URL and never registers.
    document = os.environ.get("CLIENT_METADATA_URL")
    return OAuthClientProvider(API_URL, metadata, storage, browser.open, browser.come_back, document)


async def main() -> None:
    browser = Browser()
    storage = Memory()
    auth = connector(storage, browser)
    async with httpx2.AsyncClient(auth=auth) as http:
        called = await http.get(API_URL)
        check(called.status_code == 200, f"the API answers 200 after sign-in, got {called.status_code}")
        subject = called.json()["subject"]
        request = parse_qs(urlparse(browser.requests[0]).query)
        check(request["code_challenge_method"] == ["S256"], "PKCE S256")
        resource = request["resource"][0]
        first = storage.tokens
        check(first.refresh_token is not None, "a refresh token")

        # An hour later on the connector's clock: the access token has expired, so the next
        # call refreshes first.
        auth.context.token_expiry_time = time.time() - 1
        again = await http.get(API_URL)
        check(again.status_code == 200, "the call after a refresh")
        second = storage.tokens
        check(second.refresh_token not in (None, first.refresh_token), "the refresh token rotated")
        check(len(browser.requests) == 1, "no second sign-in for a refresh")
        token_endpoint = str(auth.context.oauth_metadata.token_endpoint)
        client_id = storage.client.client_id
        issuer = str(auth.context.oauth_metadata.issuer)

        # Someone who copied the first refresh token replays it once the grace window for a
        # lost response has passed: refused, and the whole family is revoked with it.
        await later(6)
        async with httpx2.AsyncClient() as thief:
            replayed = await thief.post(
                token_endpoint,
                data={"grant_type": "refresh_token", "refresh_token": first.refresh_token, "client_id": client_id},
            )
        check(replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant", "the replay is refused")

        # The connector's own refresh token went with the family: its next refresh fails, and
        # the SDK falls back to signing the person in again.
        auth.context.token_expiry_time = time.time() - 1
        recovered = await http.get(API_URL)
        check(recovered.status_code == 200, "the connector signs in again")
        check(len(browser.requests) == 2, "a second sign-in after the family was revoked")
        check(storage.tokens.refresh_token not in (first.refresh_token, second.refresh_token), "a new family")

    result = {"subject": subject, "client_id": client_id, "issuer": issuer, "resource": resource, "scope": first.scope}
    print(f"result {json.dumps(result)}", flush=True)


anyio.run(main)
