//! The token endpoint (RFC 6749 §3.2): client authentication, then the grant. Grants live in
//! their own functions; this version serves `client_credentials` (§4.4) with RFC 8707 resources.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    client_auth,
    protocol::{FormBody, IssuerTenant},
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    error::OAuthError,
    oauth::{
        access_token::NewAccessToken,
        client_metadata::GRANT_CLIENT_CREDENTIALS,
        params::{Params, Repeated},
        resource, scope,
    },
    state::AppState,
    store::clients::Client,
    tokens,
};

/// A JSON answer that no cache may keep (RFC 6749 §5.1).
pub(super) fn no_store(body: Value) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub(super) fn single<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, OAuthError> {
    params.single(name).map_err(|Repeated(name)| {
        OAuthError::invalid_request(format!("parameter {name} is repeated"))
    })
}

pub(super) async fn token(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    meta: RequestMeta,
    headers: HeaderMap,
    FormBody(params): FormBody,
) -> Result<Response, OAuthError> {
    let grant_type = single(&params, "grant_type")?
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?
        .to_owned();
    let client =
        client_auth::authenticate(&state, &tenant.tenant, &tenant.issuer, &headers, &params)
            .await?;
    match grant_type.as_str() {
        GRANT_CLIENT_CREDENTIALS => {
            client_credentials(&state, &tenant, &client, &params, &meta).await
        }
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant type {other} is not supported"),
        )),
    }
}

async fn client_credentials(
    state: &AppState,
    tenant: &IssuerTenant,
    client: &Client,
    params: &Params,
    meta: &RequestMeta,
) -> Result<Response, OAuthError> {
    if !client.metadata.allows_grant(GRANT_CLIENT_CREDENTIALS) || client.metadata.is_public() {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use the client_credentials grant",
        ));
    }
    let granted = scope::grant(single(params, "scope")?, client.metadata.scope.as_deref())
        .map_err(|token| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("scope {token} is not allowed"),
            )
        })?;
    let resources = resource::check(&params.all("resource"))
        .map_err(|why| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", why))?;
    // Without a resource indicator the token is for this issuer's own endpoints.
    let audience = if resources.is_empty() {
        vec![tenant.issuer.clone()]
    } else {
        resources
    };

    let jti = tokens::new_jti();
    let ttl = client
        .metadata
        .access_token_ttl
        .unwrap_or(tenant.tenant.access_token_ttl);
    let new = NewAccessToken {
        issuer: &tenant.issuer,
        subject: &client.client_id,
        client_id: &client.client_id,
        audience: &audience,
        scope: &granted,
        issued_at: state.clock.unix(),
        ttl,
        jti: &jti,
    };
    let access_token = tokens::issue(state, &tenant.tenant.id, new).await?;

    let details = json!({ "grant_type": GRANT_CLIENT_CREDENTIALS, "jti": jti, "scope": granted.join(" "), "aud": audience });
    let event = AuditEvent::new("token.issued")
        .client(&client.client_id)
        .details(details);
    audit::record(
        state.store.writer(),
        state.clock.as_ref(),
        tenant.tenant.id.as_str(),
        meta,
        event,
    )
    .await?;

    let mut body =
        json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": ttl });
    if !granted.is_empty() {
        body["scope"] = granted.join(" ").into();
    }
    Ok(no_store(body))
}
