//! The relying party's side of OpenID Connect, on the `openidconnect` crate: discovery (done
//! lazily and kept, so the app may start before the provider), the authorization request with
//! PKCE, `state`, `nonce` and a resource indicator, the code exchange, refresh, ID token checks
//! with one JWKS refetch on an unknown `kid` (so key rotation never breaks sign-in), and the
//! RP-initiated logout URL.

use std::sync::Arc;

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, JsonWebKeySet, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
    core::{
        CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken, CoreIdTokenClaims,
        CoreTokenResponse,
    },
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::config::Settings;

/// The scopes asked for: who the person is, a refresh token, and the example API.
const SCOPES: [&str; 4] = ["profile", "email", "offline_access", crate::resource::SCOPE];

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What a sign-in in progress must remember until the callback.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// Tokens for a signed-in person.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Tokens {
    pub id_token: String,
    /// The ID token's claims, checked, as JSON for the profile page.
    pub claims: serde_json::Value,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix time at which the access token expires.
    pub expires_at: i64,
}

impl Tokens {
    /// The `kid` of the key that signed the ID token, shown so rotations can be seen.
    pub fn id_token_kid(&self) -> Option<String> {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let header = self.id_token.split('.').next()?;
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        header["kid"].as_str().map(str::to_owned)
    }
}

/// Why an OpenID Connect step failed.
#[derive(Debug)]
pub enum Failure {
    /// The provider cannot be reached or answered nonsense: try again later.
    Unavailable(String),
    /// The provider refused a grant (`invalid_grant`): the person must sign in again.
    GrantRefused,
    /// A response failed a check (state, `iss`, ID token): refuse it.
    Rejected(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "the provider is unavailable: {why}"),
            Self::GrantRefused => f.write_str("the provider refused the grant"),
            Self::Rejected(why) => write!(f, "rejected: {why}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Oidc {
    settings: Arc<Settings>,
    http: reqwest::Client,
    metadata: Arc<RwLock<Option<ProviderMetadataWithLogout>>>,
}

impl Oidc {
    pub fn new(settings: Arc<Settings>) -> Self {
        let http = reqwest::Client::builder()
            // The crate's advice: never follow redirects from token endpoints (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            settings,
            http,
            metadata: Arc::default(),
        }
    }

    /// The provider's metadata, discovered on first use.
    async fn metadata(&self) -> Result<ProviderMetadataWithLogout, Failure> {
        if let Some(metadata) = self.metadata.read().await.clone() {
            return Ok(metadata);
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| Failure::Unavailable(format!("discovery: {e}")))?;
        *self.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    /// Fetches the JWKS again, after an ID token named a key we did not know.
    async fn refetch_keys(&self) -> Result<ProviderMetadataWithLogout, Failure> {
        let metadata = self.metadata().await?;
        let keys = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| Failure::Unavailable(format!("JWKS: {e}")))?;
        let metadata = metadata.set_jwks(keys);
        *self.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    fn client(&self, metadata: ProviderMetadataWithLogout) -> Result<Client, Failure> {
        let redirect = RedirectUrl::new(self.settings.redirect_uri())
            .map_err(|e| Failure::Rejected(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser to sign in, and what to remember until it comes back.
    pub async fn authorization_request(&self) -> Result<(String, Pending), Failure> {
        let client = self.client(self.metadata().await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(SCOPES.map(|s| Scope::new(s.to_owned())))
            .add_extra_param("resource", self.settings.resource())
            .set_pkce_challenge(challenge)
            .url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        };
        Ok((url.to_string(), pending))
    }

    /// Checks the authorization response against `pending` and redeems its code.
    pub async fn finish_sign_in(
        &self,
        pending: Pending,
        code: &str,
        state: &str,
        iss: Option<&str>,
    ) -> Result<Tokens, Failure> {
        use subtle::ConstantTimeEq;
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(Failure::Rejected("state does not match".into()));
        }
        let metadata = self.metadata().await?;
        // RFC 9207: this provider always names itself; a response naming another issuer (or
        // none) may come from a mix-up attack.
        if iss != Some(metadata.issuer().as_str()) {
            return Err(Failure::Rejected("iss does not name the provider".into()));
        }
        let response = self
            .client(metadata)?
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| Failure::Rejected(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .add_extra_param("resource", self.settings.resource())
            .request_async(&self.http)
            .await
            .map_err(token_failure)?;
        self.tokens(&response, None, Some(Nonce::new(pending.nonce)))
            .await
    }

    /// Redeems the refresh token in `tokens` for new ones (rotation: the old one is spent).
    pub async fn refresh(&self, tokens: &Tokens) -> Result<Tokens, Failure> {
        let refresh = tokens.refresh_token.clone().ok_or(Failure::GrantRefused)?;
        let response = self
            .client(self.metadata().await?)?
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .map_err(|e| Failure::Rejected(e.to_string()))?
            .add_extra_param("resource", self.settings.resource())
            .request_async(&self.http)
            .await
            .map_err(token_failure)?;
        // A refreshed ID token carries no nonce to check (OpenID Connect Core §12.2).
        self.tokens(&response, Some(tokens), None).await
    }

    /// Turns a token response into `Tokens`, checking its ID token (or keeping the previous
    /// one's claims when a refresh returned none).
    async fn tokens(
        &self,
        response: &CoreTokenResponse,
        previous: Option<&Tokens>,
        nonce: Option<Nonce>,
    ) -> Result<Tokens, Failure> {
        let (id_token, claims) = match (response.id_token(), previous) {
            (Some(id_token), _) => {
                let claims = self.verified_claims(id_token, nonce.as_ref()).await?;
                if let Some(previous) = previous
                    && previous.claims["sub"] != claims["sub"]
                {
                    return Err(Failure::Rejected(
                        "a refreshed ID token names someone else".into(),
                    ));
                }
                (id_token.to_string(), claims)
            }
            (None, Some(previous)) => (previous.id_token.clone(), previous.claims.clone()),
            (None, None) => return Err(Failure::Rejected("no ID token".into())),
        };
        let lifetime = response
            .expires_in()
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        Ok(Tokens {
            id_token,
            claims,
            access_token: response.access_token().secret().clone(),
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at: now() + lifetime,
        })
    }

    /// The ID token's claims, checked against the provider's keys; on a failure the keys are
    /// fetched again once, in case the token was signed by a key activated since.
    async fn verified_claims(
        &self,
        id_token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<serde_json::Value, Failure> {
        let attempt = |metadata: ProviderMetadataWithLogout| -> Result<serde_json::Value, Failure> {
            let client = self.client(metadata)?;
            let verifier = client.id_token_verifier();
            let claims: &CoreIdTokenClaims = match nonce {
                Some(nonce) => id_token.claims(&verifier, nonce),
                None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
            }
            .map_err(|e| Failure::Rejected(e.to_string()))?;
            serde_json::to_value(claims).map_err(|e| Failure::Rejected(e.to_string()))
        };
        match attempt(self.metadata().await?) {
            Ok(claims) => Ok(claims),
            Err(_) => attempt(self.refetch_keys().await?),
        }
    }

    /// The provider's end-session URL for `tokens`, or `None` when it has none.
    pub async fn logout_url(&self, tokens: &Tokens) -> Option<String> {
        let metadata = self.metadata().await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let id_token: CoreIdToken = tokens.id_token.parse().ok()?;
        let after = PostLogoutRedirectUrl::new(self.settings.after_logout_uri()).ok()?;
        Some(
            LogoutRequest::from(endpoint)
                .set_id_token_hint(&id_token)
                .set_client_id(ClientId::new(self.settings.client_id.clone()))
                .set_post_logout_redirect_uri(after)
                .http_get_url()
                .to_string(),
        )
    }
}

fn token_failure<E: std::error::Error>(
    error: openidconnect::RequestTokenError<
        E,
        openidconnect::StandardErrorResponse<CoreErrorResponseType>,
    >,
) -> Failure {
    match error {
        openidconnect::RequestTokenError::ServerResponse(response)
            if *response.error() == CoreErrorResponseType::InvalidGrant =>
        {
            Failure::GrantRefused
        }
        openidconnect::RequestTokenError::ServerResponse(response) => {
            Failure::Rejected(response.to_string())
        }
        other => Failure::Unavailable(other.to_string()),
    }
}

/// Unix time now.
#[allow(
    clippy::disallowed_methods,
    reason = "the relying party runs on the real clock"
)]
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
