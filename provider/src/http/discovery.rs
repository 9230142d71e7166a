//! Discovery (RFC 8414 §3, OpenID Connect Discovery §4) at the four SPEC paths, and the tenant's
//! JWK Set (RFC 7517 §5).

use std::sync::LazyLock;

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderValue, header},
    response::Response,
};

use super::protocol::IssuerTenant;
use crate::{error::OAuthError, keys::lifecycle::PUBLISH_WINDOW, oauth::metadata, state::AppState};

/// Caches may keep both documents as long as a staged key waits before it signs.
static CACHE_CONTROL: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&format!("public, max-age={PUBLISH_WINDOW}"))
        .unwrap_or(HeaderValue::from_static("no-cache"))
});

fn cacheable(json: Bytes) -> Response {
    let mut response = Response::new(Body::from(json));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, CACHE_CONTROL.clone());
    response
}

/// Metadata changes only with a release or the tenant's settings, so caches may keep it as long
/// as JWKS, and it is rendered once per tenant and settings, not for every request.
pub(super) async fn metadata(State(state): State<AppState>, tenant: IssuerTenant) -> Response {
    let settings = (
        tenant.tenant.require_par,
        tenant.tenant.registration_policy != "closed",
    );
    let now = state.clock.unix_ms();
    if let Some((par, open, json)) = state.metadata.get(&tenant.tenant.id, now)
        && (par, open) == settings
    {
        return cacheable(json);
    }
    let document = metadata::document(&tenant.issuer, settings.0, settings.1);
    let json = Bytes::from(document.to_string());
    let entry = (settings.0, settings.1, json.clone());
    state.metadata.put(tenant.tenant.id.clone(), entry, now);
    cacheable(json)
}

/// Served with `max-age` equal to the publish window: a staged key is published at least that
/// long before it signs, so every cache that obeys the header has it in time.
pub(super) async fn jwks(
    State(state): State<AppState>,
    tenant: IssuerTenant,
) -> Result<Response, OAuthError> {
    Ok(cacheable(state.keys.jwks(&tenant.tenant.id).await?))
}
