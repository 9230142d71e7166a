//! Dynamic client registration: RFC 7591 at `registration_endpoint` (`POST /a/{t}/register`),
//! open or behind the tenant's initial access token as its policy says, and RFC 7592 management
//! (`GET`, `PUT`, `DELETE /a/{t}/register/{client_id}`) with the registration access token
//! issued at registration. Registered clients are third-party: people are asked to consent.
//! Errors use the RFC's format (`{"error", "error_description"}`).

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    admin::{create_client, replace_client},
    client_ip::ClientIp,
    limits,
    protocol::IssuerTenant,
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    crypto::{SecretKind, random_secret},
    error::AdminError,
    limits::{Actor, Class},
    oauth::client_metadata::ClientMetadataRequest,
    state::AppState,
    store::{
        self,
        clients::{self, Client, ClientStatus},
        tenants,
    },
};

/// How a tenant takes registrations.
pub(super) const POLICIES: [&str; 3] = ["open", "token", "closed"];

/// An RFC 7591 §3.2.2 / RFC 6750 error response.
fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = Json(json!({ "error": code, "error_description": description }));
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    response
}

fn from_admin(err: AdminError) -> Response {
    error(err.status, err.code, &err.message)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

fn parse_metadata(body: &Bytes) -> Option<ClientMetadataRequest> {
    serde_json::from_slice(body).ok()
}

fn not_metadata() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        "the body must be a JSON object of client metadata",
    )
}

fn bad_access_token() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the registration access token is not valid for this client",
    )
}

/// The RFC 7591 §3.2.1 response: the metadata as registered, never a `null`.
fn registered(
    tenant: &IssuerTenant,
    client: &Client,
    secret: Option<String>,
    access_token: Option<String>,
) -> Value {
    let mut body = serde_json::to_value(&client.metadata).unwrap_or_else(|_| json!({}));
    body["client_id"] = client.client_id.clone().into();
    body["client_id_issued_at"] = client.created_at.into();
    if let Some(secret) = secret {
        body["client_secret"] = secret.into();
        body["client_secret_expires_at"] = 0.into();
    }
    body["registration_client_uri"] =
        format!("{}/register/{}", tenant.issuer, client.client_id).into();
    if let Some(token) = access_token {
        body["registration_access_token"] = token.into();
    }
    body
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /a/{t}/register`.
pub(super) async fn register(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    meta: RequestMeta,
    headers: HeaderMap,
    ip: Option<axum::Extension<ClientIp>>,
    body: Bytes,
) -> Response {
    let id = &tenant.tenant.id;
    let mut actors = vec![Actor::tenant(id.as_str())];
    actors.extend(ip.map(|axum::Extension(ClientIp(ip))| Actor::ip(ip)));
    if let Err(limited) = limits::enforce(&state, Class::Registration, &actors).await {
        return limited.oauth().into_response();
    }
    let Ok(Some((policy, token_digest))) = tenants::registration(state.store.reader(), id).await
    else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "retry shortly",
        );
    };
    match policy.as_str() {
        "open" => {}
        "token" => {
            let presented = bearer(&headers).unwrap_or_default();
            let valid = token_digest.is_some_and(|digest| {
                state
                    .digester
                    .verify(SecretKind::RegistrationToken, presented, &digest)
            });
            if !valid {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "this tenant takes registrations with an initial access token",
                );
            }
        }
        _ => {
            return error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "this tenant does not take dynamic registrations",
            );
        }
    }
    let Some(request) = parse_metadata(&body) else {
        return not_metadata();
    };
    let request = request.with_default_scope();
    let (client, secret) = match create_client(&state, id, &meta, None, false, request).await {
        Ok(created) => created,
        Err(err) => return from_admin(err),
    };
    let access_token = random_secret();
    let digest = state
        .digester
        .digest(SecretKind::RegistrationToken, &access_token);
    let stored = clients::set_registration_token_digest(
        state.store.writer(),
        id,
        &client.client_id,
        &digest,
    )
    .await;
    if stored.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "retry shortly",
        );
    }
    no_store(
        StatusCode::CREATED,
        registered(&tenant, &client, secret, Some(access_token)),
    )
}

/// The client named in the path, when the request carries its registration access token.
async fn authorized(
    state: &AppState,
    tenant: &IssuerTenant,
    client_id: &str,
    headers: &HeaderMap,
) -> Option<Client> {
    let id = &tenant.tenant.id;
    let presented = bearer(headers)?;
    let digest = clients::registration_token_digest(state.store.reader(), id, client_id)
        .await
        .ok()??;
    if !state
        .digester
        .verify(SecretKind::RegistrationToken, presented, &digest)
    {
        return None;
    }
    match clients::get(state.store.reader(), id, client_id).await {
        Ok(Some(client)) if client.status != ClientStatus::Revoked => Some(client),
        _ => None,
    }
}

/// `GET /a/{t}/register/{client_id}` (RFC 7592 §2.1).
pub(super) async fn read(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    Path((_, client_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match authorized(&state, &tenant, &client_id, &headers).await {
        Some(client) => no_store(StatusCode::OK, registered(&tenant, &client, None, None)),
        None => bad_access_token(),
    }
}

/// `PUT /a/{t}/register/{client_id}` (RFC 7592 §2.2): the whole metadata again.
pub(super) async fn update(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    meta: RequestMeta,
    Path((_, client_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(client) = authorized(&state, &tenant, &client_id, &headers).await else {
        return bad_access_token();
    };
    // §2.2: the body names the client it replaces.
    let named = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if named.as_deref() != Some(client_id.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body must carry this client's client_id",
        );
    }
    let Some(request) = parse_metadata(&body) else {
        return not_metadata();
    };
    let request = request.with_default_scope();
    let id = &tenant.tenant.id;
    match replace_client(&state, id, &meta, client, request).await {
        Ok((client, secret)) => {
            no_store(StatusCode::OK, registered(&tenant, &client, secret, None))
        }
        Err(err) => from_admin(err),
    }
}

/// `DELETE /a/{t}/register/{client_id}` (RFC 7592 §2.3): the client is revoked for good.
pub(super) async fn delete(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    meta: RequestMeta,
    Path((_, client_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(client) = authorized(&state, &tenant, &client_id, &headers).await else {
        return bad_access_token();
    };
    let id = &tenant.tenant.id;
    let now = state.clock.unix();
    let revoked = async {
        let mut tx = state.store.begin().await?;
        clients::set_status(
            &mut *tx,
            id,
            &client.client_id,
            client.status,
            ClientStatus::Revoked,
            now,
        )
        .await?;
        let event = AuditEvent::new("client.revoked")
            .client(&client.client_id)
            .details(json!({ "via": "registration_management" }));
        audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), &meta, event).await?;
        store::commit(tx).await
    };
    if revoked.await.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "retry shortly",
        );
    }
    state.forget_client(id, &client.client_id);
    StatusCode::NO_CONTENT.into_response()
}
