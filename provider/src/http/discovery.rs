//! Discovery (RFC 8414 §3, OpenID Connect Discovery §4) at the four SPEC paths, and the tenant's
//! JWK Set (RFC 7517 §5).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::protocol::IssuerTenant;
use crate::{error::OAuthError, keys::lifecycle::PUBLISH_WINDOW, oauth::metadata, state::AppState};

fn cacheable(body: serde_json::Value, max_age: i64) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// Metadata changes only with a release, so caches may keep it as long as JWKS.
pub(super) async fn metadata(tenant: IssuerTenant) -> Response {
    cacheable(
        metadata::document(
            &tenant.issuer,
            tenant.tenant.require_par,
            tenant.tenant.registration_policy != "closed",
        ),
        PUBLISH_WINDOW,
    )
}

/// Served with `max-age` equal to the publish window: a staged key is published at least that
/// long before it signs, so every cache that obeys the header has it in time.
pub(super) async fn jwks(
    State(state): State<AppState>,
    tenant: IssuerTenant,
) -> Result<Response, OAuthError> {
    let jwks = state.keys.jwks(&tenant.tenant.id).await?;
    Ok(cacheable(jwks, PUBLISH_WINDOW))
}
