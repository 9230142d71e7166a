//! Pushed authorization requests (RFC 9126): an authenticated client posts its authorization
//! request ahead and gets a one-minute, single-use `request_uri` to send the browser with.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    client_auth,
    protocol::{FormBody, IssuerTenant},
};
use crate::{
    crypto::random_b64,
    error::OAuthError,
    oauth::authorize::{self, Policy, Refusal},
    state::AppState,
    store::pushed,
};

/// The prefix of every `request_uri` this server issues (RFC 9126 §2.2).
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request may wait for the browser.
const PUSHED_TTL: i64 = 60;
/// Client authentication parameters, which are not part of the stored request.
const AUTH_PARAMS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

pub(super) async fn par(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    FormBody(mut params): FormBody,
) -> Result<Response, OAuthError> {
    let client =
        client_auth::authenticate(&state, &tenant.tenant, &tenant.issuer, &headers, &params)
            .await?;
    if params.contains("request_uri") {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed"));
    }
    if !params.contains("client_id") {
        params.push("client_id", &client.client_id);
    }
    let policy = Policy {
        pkce_required_for_confidential: tenant.tenant.pkce_required_for_confidential,
    };
    match authorize::check(&params, Some(&client), policy) {
        Ok(_) => {}
        Err(Refusal::Page(message)) => return Err(OAuthError::invalid_request(message)),
        Err(Refusal::Redirect {
            error, description, ..
        }) => {
            return Err(OAuthError::new(StatusCode::BAD_REQUEST, error, description));
        }
    }
    let id = random_b64(24);
    let stored = params.encode_without(AUTH_PARAMS);
    let expires_at = state.clock.unix() + PUSHED_TTL;
    pushed::insert(
        state.store.writer(),
        &tenant.tenant.id,
        &id,
        &client.client_id,
        &stored,
        expires_at,
    )
    .await?;
    let body =
        json!({ "request_uri": format!("{REQUEST_URI_PREFIX}{id}"), "expires_in": PUSHED_TTL });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
