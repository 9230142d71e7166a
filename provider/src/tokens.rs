//! Issuing and checking JWT access tokens: claims from `oauth::access_token`, signatures from the
//! key service, revocation and client status from the store. Also reads ID token hints.

use shared::TenantId;

use crate::{
    crypto::random_b64,
    error::OAuthError,
    keys::{KeyError, SignatureError},
    oauth::access_token::{self, AccessToken, NewAccessToken},
    state::AppState,
    store::{StoreError, revoked_tokens},
};

/// Signs a new access token; returns it with its claims.
pub async fn issue(
    state: &AppState,
    tenant: &TenantId,
    new: NewAccessToken<'_>,
) -> Result<String, KeyError> {
    state
        .keys
        .sign(tenant, new.claims(), access_token::TYP)
        .await
}

/// A fresh token id: 128 random bits.
pub fn new_jti() -> String {
    random_b64(16)
}

/// Why a presented token is not active. Every case answers alike to the caller.
#[derive(Debug, thiserror::Error)]
pub enum Inactive {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Claims(#[from] access_token::ClaimsError),
    #[error("revoked")]
    Revoked,
    #[error("client not active")]
    ClientInactive,
    /// The check itself could not run (the database is down): not the token's fault.
    #[error("unavailable: {0}")]
    Unavailable(StoreError),
}

impl From<StoreError> for Inactive {
    fn from(err: StoreError) -> Self {
        Self::Unavailable(err)
    }
}

impl Inactive {
    /// The answer to give a bearer of this token (RFC 6750 §3.1), or 503 when we could not tell.
    pub fn into_oauth_error(self) -> OAuthError {
        match self {
            Self::Unavailable(err) => err.into(),
            Self::Signature(SignatureError::Unavailable) => OAuthError::unavailable(),
            other => OAuthError::invalid_token(match other {
                Self::Claims(access_token::ClaimsError::Expired) => "the access token expired",
                _ => "the access token is not valid",
            }),
        }
    }
}

/// Checks an access token presented to `tenant`: signature by a key of this tenant that may
/// still verify, `at+jwt` type, issuer, audience, expiry, not revoked, and its client active.
pub async fn check(
    state: &AppState,
    tenant: &TenantId,
    issuer: &str,
    token: &str,
) -> Result<AccessToken, Inactive> {
    let (claims, header) = state.keys.verify(tenant, token).await?;
    let token = access_token::check(header.token_type(), claims, issuer, state.clock.unix())?;
    if revoked_tokens::is_revoked(state.store.reader(), tenant, &token.jti).await? {
        return Err(Inactive::Revoked);
    }
    let client = state.client(tenant, &token.client_id).await?;
    if !client.is_some_and(|c| c.is_active()) {
        return Err(Inactive::ClientInactive);
    }
    Ok(token)
}

/// The client and user an ID token hint names (`id_token_hint` at authorization and logout),
/// when its signature and issuer check out and it is not an access token. Its expiry does not
/// matter: a hint is usually an old ID token.
pub async fn id_token_hint(
    state: &AppState,
    tenant: &TenantId,
    issuer: &str,
    token: &str,
) -> Option<(String, String)> {
    let (claims, header) = state.keys.verify(tenant, token).await.ok()?;
    if header
        .token_type()
        .is_some_and(|t| t.eq_ignore_ascii_case(access_token::TYP))
    {
        return None;
    }
    if claims.get("iss").and_then(serde_json::Value::as_str) != Some(issuer) {
        return None;
    }
    let client_id = match claims.get("aud")? {
        serde_json::Value::String(aud) => aud.clone(),
        serde_json::Value::Array(auds) => auds.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    let sub = claims.get("sub")?.as_str()?.to_owned();
    Some((client_id, sub))
}
