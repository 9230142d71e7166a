//! The Rust `openidconnect` crate as a native app would use it, against the provider and the
//! relying party's protected API: RFC 9728 discovery from the API's challenge, OpenID
//! discovery, dynamic registration (with the RFC 7591 `scope` the crate leaves to extensions),
//! authorization with PKCE, `state`, `nonce` and a resource indicator, the magic-link sign-in,
//! the code exchange with the ID token verified, the API call, refresh rotation, and a
//! replayed refresh token refused along with its family.

use e2e::interop::{EMAIL, Stage, check_outcome};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientName, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse,
    core::{
        CoreApplicationType, CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod,
        CoreErrorResponseType, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
        CoreJweKeyManagementAlgorithm, CoreProviderMetadata, CoreRegisterErrorResponseType,
        CoreResponseType, CoreSubjectIdentifierType,
    },
    registration::{
        AdditionalClientMetadata, ClientRegistrationRequest,
        EmptyAdditionalClientRegistrationResponse,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// RFC 7591's `scope`, which OpenID's registration metadata lacks.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct WithScope {
    scope: String,
}
impl AdditionalClientMetadata for WithScope {}

type Registration = ClientRegistrationRequest<
    WithScope,
    EmptyAdditionalClientRegistrationResponse,
    CoreApplicationType,
    CoreClientAuthMethod,
    CoreRegisterErrorResponseType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_openidconnect_crate() {
    let stage = Stage::start(&[]).await;
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The API's challenge names its metadata, which names the issuer.
    let challenged = http.get(&stage.api).send().await.unwrap();
    assert_eq!(challenged.status(), 401);
    let header = challenged.headers()["www-authenticate"].to_str().unwrap();
    let metadata_url = header.split('"').nth(1).unwrap();
    let protected: Value = http
        .get(metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resource = protected["resource"].as_str().unwrap().to_owned();
    let issuer = IssuerUrl::new(
        protected["authorization_servers"][0]
            .as_str()
            .unwrap()
            .into(),
    )
    .unwrap();
    let provider = CoreProviderMetadata::discover_async(issuer.clone(), &http)
        .await
        .unwrap();

    let registered = Registration::new(
        vec![RedirectUrl::new(REDIRECT.into()).unwrap()],
        WithScope {
            scope: "openid email notes:read offline_access".into(),
        },
    )
    .set_client_name(Some(
        [(None, ClientName::new("openidconnect crate".into()))]
            .into_iter()
            .collect(),
    ))
    .set_application_type(Some(CoreApplicationType::Native))
    .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::None))
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .register_async(provider.registration_endpoint().unwrap(), &http)
    .await
    .unwrap();
    let client_id = registered.client_id().clone();
    let client = CoreClient::from_provider_metadata(provider, client_id.clone(), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (request, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scopes(["email", "notes:read", "offline_access"].map(|s| Scope::new(s.into())))
        .add_extra_param("resource", &resource)
        .set_pkce_challenge(challenge)
        .url();
    let back = e2e::agent::sign_in(request.as_str(), EMAIL, &stage.mail).await;
    let back = url::Url::parse(&back).unwrap();
    let query = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {name} in {back}"))
    };
    assert_eq!(query("state"), *state.secret());
    assert_eq!(query("iss"), issuer.as_str(), "RFC 9207");

    let tokens = client
        .exchange_code(AuthorizationCode::new(query("code")))
        .unwrap()
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", &resource)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    // The wrong nonce, as for a replayed ID token, is refused.
    assert!(
        id_token
            .claims(&verifier, &Nonce::new("another".into()))
            .is_err()
    );
    if let Some(expected) = claims.access_token_hash() {
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected);
    }

    let call = |token: String| http.get(&stage.api).bearer_auth(token).send();
    let called = call(tokens.access_token().secret().clone()).await.unwrap();
    assert_eq!(called.status(), 200);
    let subject = called.json::<Value>().await.unwrap()["subject"].clone();

    let refresh = |token: RefreshToken| {
        let (client, http, resource) = (&client, &http, resource.clone());
        async move {
            client
                .exchange_refresh_token(&token)
                .unwrap()
                .add_extra_param("resource", resource)
                .request_async(http)
                .await
        }
    };
    let first = tokens.refresh_token().expect("a refresh token").clone();
    let rotated = refresh(first.clone()).await.unwrap();
    let second = rotated.refresh_token().unwrap().clone();
    assert_ne!(second.secret(), first.secret());
    let again = call(rotated.access_token().secret().clone()).await.unwrap();
    assert_eq!(again.status(), 200);

    // Past the grace window for a lost response, the replay is refused and so is the family.
    stage.s.advance(6);
    for token in [first, second] {
        match refresh(token).await {
            Err(RequestTokenError::ServerResponse(e)) => {
                assert_eq!(*e.error(), CoreErrorResponseType::InvalidGrant);
            }
            other => panic!("invalid_grant expected, got {other:?}"),
        }
    }

    let result = serde_json::json!({ "subject": subject, "client_id": client_id.as_str() });
    check_outcome(&stage, &result, None).await;
}
