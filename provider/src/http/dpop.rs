//! DPoP at this server's endpoints (RFC 9449): the request's proof, checked once per jti and
//! against a server nonce that changes every `NONCE_SLOT` seconds (§8), so a proof cannot be
//! made ahead of time.

use axum::http::{HeaderMap, StatusCode};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use shared::TenantId;

use crate::{
    crypto::{SecretKind, ct_eq},
    error::OAuthError,
    oauth::dpop::{self, Proof},
    state::AppState,
    store,
};

const NONCE_SLOT: i64 = 300;

fn nonce_at(state: &AppState, tenant: &TenantId, slot: i64) -> String {
    let digest = state
        .digester
        .digest(SecretKind::DpopNonce, &format!("{tenant}\n{slot}"));
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The nonce clients should put in their next proof.
pub(super) fn current_nonce(state: &AppState, tenant: &TenantId) -> String {
    nonce_at(state, tenant, state.clock.unix() / NONCE_SLOT)
}

/// The current nonce, or the one before it (a proof made just before the slot turned).
fn nonce_ok(state: &AppState, tenant: &TenantId, nonce: &str) -> bool {
    let slot = state.clock.unix() / NONCE_SLOT;
    [slot, slot - 1]
        .iter()
        .any(|s| ct_eq(nonce_at(state, tenant, *s).as_bytes(), nonce.as_bytes()))
}

/// Where a proof is presented: errors at the token endpoint are 400, at a resource 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum At {
    TokenEndpoint,
    Resource,
}

fn refuse(
    state: &AppState,
    tenant: &TenantId,
    at: At,
    error: &'static str,
    description: &str,
) -> OAuthError {
    let status = if at == At::TokenEndpoint {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNAUTHORIZED
    };
    let mut err = OAuthError::new(status, error, description);
    if at == At::Resource {
        err.www_authenticate = Some(format!(
            "DPoP error=\"{error}\", algs=\"{}\"",
            dpop::ALGORITHMS.join(" ")
        ));
    }
    err.dpop_nonce = Some(current_nonce(state, tenant));
    err
}

/// The request's DPoP proof, checked, or `None` when it carries none.
pub(super) async fn proof(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    at: At,
) -> Result<Option<Proof>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(refuse(
            state,
            tenant,
            at,
            "invalid_dpop_proof",
            "send one DPoP header",
        ));
    }
    let text = value.to_str().unwrap_or_default();
    let proof = dpop::check(text, method, url, state.clock.unix(), access_token)
        .map_err(|why| refuse(state, tenant, at, "invalid_dpop_proof", &why))?;
    if !proof
        .nonce
        .as_deref()
        .is_some_and(|n| nonce_ok(state, tenant, n))
    {
        return Err(refuse(
            state,
            tenant,
            at,
            "use_dpop_nonce",
            "use the server's DPoP nonce",
        ));
    }
    // A jti is remembered per key for as long as its proof could be accepted: in Redis when
    // configured (failing closed: no replay check, no proof), else in the database.
    let window = 2 * dpop::IAT_WINDOW;
    let jti = hex_sha256(&proof.jti);
    let cache_key = format!("dpop:{tenant}:{}:{jti}", proof.jkt);
    let ttl = std::time::Duration::from_secs(window.unsigned_abs());
    let first_use = match state.limits.first_use(&cache_key, ttl).await {
        Some(Ok(first)) => first,
        Some(Err(err)) => {
            tracing::warn!(error = %err, "DPoP replay cache unavailable");
            return Err(OAuthError::unavailable());
        }
        None => {
            let expires_at = state.clock.unix() + window;
            store::dpop::record_once(
                state.store.writer(),
                tenant,
                &proof.jkt,
                &proof.jti,
                expires_at,
            )
            .await?
        }
    };
    if !first_use {
        return Err(refuse(
            state,
            tenant,
            at,
            "invalid_dpop_proof",
            "the proof was already used",
        ));
    }
    Ok(Some(proof))
}

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    crate::crypto::hex(&sha2::Sha256::digest(text.as_bytes()))
}
