//! `/a/{tenant}/admin/clients`: registering clients with RFC 7591 metadata, reading, replacing,
//! suspending, reactivating and revoking them, and rotating their secrets.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::TenantId;

use super::{AdminJson, AdminPath, AdminQuery, Page, TenantAdmin, page_body};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    clock::rfc3339,
    crypto::{SecretKind, random_b64, random_secret},
    error::AdminError,
    oauth::client_metadata::{ClientMetadata, ClientMetadataRequest, MetadataError},
    state::AppState,
    store::{
        self, StoreError,
        clients::{self, Client, ClientStatus},
    },
};

const MAX_CLIENT_ID: usize = 128;

/// RFC 7591 metadata, plus an optional `client_id` an administrator may choose.
#[derive(Debug, Deserialize)]
pub(super) struct CreateClient {
    client_id: Option<String>,
    /// Extension: whether people skip consent for this client (default: yes, an
    /// administrator registered it).
    first_party: Option<bool>,
    #[serde(flatten)]
    metadata: ClientMetadataRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusChange {
    status: String,
}

impl From<MetadataError> for AdminError {
    fn from(err: MetadataError) -> Self {
        AdminError::bad_request(err.code(), err.to_string())
    }
}

/// The RFC 7591 §3.2.1 view of a client: its metadata with `client_id` and timestamps, plus its
/// status. The secret itself appears only in the response that creates it.
pub(super) fn view(client: &Client) -> Value {
    let mut body = serde_json::to_value(&client.metadata).unwrap_or_else(|_| json!({}));
    body["client_id"] = client.client_id.clone().into();
    body["client_id_issued_at"] = client.created_at.into();
    if client.metadata.uses_client_secret() {
        body["client_secret_expires_at"] = 0.into();
    }
    body["status"] = client.status.as_str().into();
    body["first_party"] = client.first_party.into();
    body["updated_at"] = rfc3339(client.updated_at).into();
    body
}

fn with_secret(mut body: Value, secret: Option<String>) -> Value {
    if let Some(secret) = secret {
        body["client_secret"] = secret.into();
    }
    body
}

fn check_client_id(raw: &str) -> Result<(), AdminError> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_CLIENT_ID
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::bad_request(
            "invalid_client_metadata",
            format!("client_id must be 1 to {MAX_CLIENT_ID} characters of A-Z a-z 0-9 - _ . ~"),
        ))
    }
}

/// A fresh secret for clients that authenticate with one.
fn new_secret(state: &AppState, metadata: &ClientMetadata) -> Option<(String, Vec<u8>)> {
    metadata.uses_client_secret().then(|| {
        let secret = random_secret();
        let digest = state.digester.digest(SecretKind::ClientSecret, &secret);
        (secret, digest)
    })
}

/// Registers a client; returns it with its secret, which is never shown again.
pub(crate) async fn create_client(
    state: &AppState,
    tenant: &TenantId,
    meta: &RequestMeta,
    client_id: Option<String>,
    first_party: bool,
    request: ClientMetadataRequest,
) -> Result<(Client, Option<String>), AdminError> {
    if let Some(id) = &client_id {
        check_client_id(id)?;
    }
    let metadata = request.validate()?;
    let secret = new_secret(state, &metadata);
    let now = state.clock.unix();
    let client = Client {
        client_id: client_id.unwrap_or_else(|| random_b64(16)),
        secret_digest: secret.as_ref().map(|(_, digest)| digest.clone()),
        metadata,
        status: ClientStatus::Active,
        first_party,
        created_at: now,
        updated_at: now,
    };

    let mut tx = state.store.begin().await?;
    match clients::insert(&mut *tx, tenant, &client).await {
        Err(StoreError::Conflict) => {
            return Err(AdminError::conflict(
                "client_exists",
                format!("client {} already exists", client.client_id),
            ));
        }
        other => other?,
    }
    let event = AuditEvent::new("client.created")
        .client(&client.client_id)
        .details(json!({ "metadata": client.metadata }));
    audit::record(&mut *tx, state.clock.as_ref(), tenant.as_str(), meta, event).await?;
    store::commit(tx).await?;
    Ok((client, secret.map(|(secret, _)| secret)))
}

pub(super) async fn create(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminJson(request): AdminJson<CreateClient>,
) -> Result<impl IntoResponse, AdminError> {
    let (client, secret) = create_client(
        &state,
        &admin.tenant.id,
        &meta,
        request.client_id,
        request.first_party.unwrap_or(true),
        request.metadata,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(with_secret(view(&client), secret)),
    ))
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: TenantAdmin,
    AdminQuery(page): AdminQuery<Page>,
) -> Result<Json<Value>, AdminError> {
    let limit = page.limit()?;
    let found = clients::list(
        state.store.reader(),
        &admin.tenant.id,
        page.after.as_deref(),
        limit,
    )
    .await?;
    let items: Vec<Value> = found.iter().map(view).collect();
    Ok(Json(page_body(items, limit, |c| {
        c["client_id"].as_str().unwrap_or_default().to_owned()
    })))
}

async fn load(state: &AppState, tenant: &TenantId, client_id: &str) -> Result<Client, AdminError> {
    clients::get(state.store.reader(), tenant, client_id)
        .await?
        .ok_or_else(|| AdminError::not_found("client"))
}

pub(super) async fn get(
    State(state): State<AppState>,
    admin: TenantAdmin,
    AdminPath((_, client_id)): AdminPath<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(view(
        &load(&state, &admin.tenant.id, &client_id).await?,
    )))
}

/// RFC 7592-style replacement of the whole metadata. A client that starts using a secret gets
/// one in this response; one that stops loses it.
pub(super) async fn replace(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminPath((_, client_id)): AdminPath<(String, String)>,
    AdminJson(request): AdminJson<ClientMetadataRequest>,
) -> Result<Json<Value>, AdminError> {
    let tenant = &admin.tenant.id;
    let client = load(&state, tenant, &client_id).await?;
    let (client, new_secret_value) = replace_client(&state, tenant, &meta, client, request).await?;
    Ok(Json(with_secret(view(&client), new_secret_value)))
}

/// Replaces a client's metadata (RFC 7591 rules); a client that starts using a secret gets one,
/// returned here once, and one that stops loses it.
pub(crate) async fn replace_client(
    state: &AppState,
    tenant: &TenantId,
    meta: &RequestMeta,
    mut client: Client,
    request: ClientMetadataRequest,
) -> Result<(Client, Option<String>), AdminError> {
    if client.status == ClientStatus::Revoked {
        return Err(AdminError::conflict(
            "client_revoked",
            "a revoked client cannot change",
        ));
    }
    let metadata = request.validate()?;
    let mut new_secret_value = None;
    if !metadata.uses_client_secret() {
        client.secret_digest = None;
    } else if client.secret_digest.is_none()
        && let Some((secret, digest)) = new_secret(state, &metadata)
    {
        client.secret_digest = Some(digest);
        new_secret_value = Some(secret);
    }
    client.metadata = metadata;
    client.updated_at = state.clock.unix();

    let mut tx = state.store.begin().await?;
    clients::update_metadata(&mut *tx, tenant, &client).await?;
    let event = AuditEvent::new("client.updated")
        .client(&client.client_id)
        .details(json!({ "metadata": client.metadata }));
    audit::record(&mut *tx, state.clock.as_ref(), tenant.as_str(), meta, event).await?;
    store::commit(tx).await?;
    state.forget_client(tenant, &client.client_id);
    Ok((client, new_secret_value))
}

/// `{"status": "active" | "suspended" | "revoked"}`. Revocation is final.
pub(super) async fn set_status(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminPath((_, client_id)): AdminPath<(String, String)>,
    AdminJson(change): AdminJson<StatusChange>,
) -> Result<Json<Value>, AdminError> {
    let tenant = &admin.tenant.id;
    let to = ClientStatus::parse(&change.status).ok_or_else(|| {
        AdminError::bad_request(
            "invalid_request",
            "status must be active, suspended or revoked",
        )
    })?;
    let mut client = load(&state, tenant, &client_id).await?;
    if client.status == to {
        return Ok(Json(view(&client)));
    }
    if client.status == ClientStatus::Revoked {
        return Err(AdminError::conflict(
            "client_revoked",
            "a revoked client cannot change",
        ));
    }
    let event_name = match to {
        ClientStatus::Active => "client.reactivated",
        ClientStatus::Suspended => "client.suspended",
        ClientStatus::Revoked => "client.revoked",
    };
    let now = state.clock.unix();

    let mut tx = state.store.begin().await?;
    match clients::set_status(&mut *tx, tenant, &client_id, client.status, to, now).await {
        // Changed by someone else since we read it: let the caller look again.
        Err(StoreError::NotFound) => {
            return Err(AdminError::conflict(
                "conflict",
                "the client changed; retry",
            ));
        }
        other => other?,
    }
    let event = AuditEvent::new(event_name)
        .client(&client_id)
        .details(json!({ "from": client.status.as_str(), "to": to.as_str() }));
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.as_str(),
        &meta,
        event,
    )
    .await?;
    store::commit(tx).await?;
    state.forget_client(tenant, &client_id);
    client.status = to;
    client.updated_at = now;
    Ok(Json(view(&client)))
}

/// Issues a new secret; the old one stops working at once.
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminPath((_, client_id)): AdminPath<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let tenant = &admin.tenant.id;
    let client = load(&state, tenant, &client_id).await?;
    if client.status == ClientStatus::Revoked {
        return Err(AdminError::conflict(
            "client_revoked",
            "a revoked client cannot change",
        ));
    }
    let (secret, digest) = new_secret(&state, &client.metadata).ok_or_else(|| {
        AdminError::bad_request(
            "invalid_request",
            "this client does not use a client secret",
        )
    })?;

    let mut tx = state.store.begin().await?;
    clients::set_secret_digest(&mut *tx, tenant, &client_id, &digest, state.clock.unix()).await?;
    let event = AuditEvent::new("client.secret_rotated").client(&client_id);
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.as_str(),
        &meta,
        event,
    )
    .await?;
    store::commit(tx).await?;
    state.forget_client(tenant, &client_id);
    Ok(Json(
        json!({ "client_id": client_id, "client_secret": secret, "client_secret_expires_at": 0 }),
    ))
}
