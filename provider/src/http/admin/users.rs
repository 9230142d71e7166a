//! `/a/{tenant}/admin/users`: the people who may sign in to a tenant. Their `user_id` is the
//! `sub` of their tokens.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::TenantId;

use super::{AdminJson, AdminPath, AdminQuery, TenantAdmin, check_text, page_body};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    clock::rfc3339,
    email,
    error::AdminError,
    state::AppState,
    store::{
        self, StoreError,
        tenants::Tenant,
        users::{self, User, UserStatus},
    },
};

const MAX_NAME: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    email: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    email: Option<String>,
    name: Option<String>,
    status: Option<String>,
}

/// `?email=` finds one user by address; otherwise a page of users.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserQuery {
    email: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

fn view(user: &User) -> Value {
    let mut body = json!({
        "user_id": user.user_id,
        "email": user.email,
        "status": user.status.as_str(),
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
    });
    if let Some(name) = &user.name {
        body["name"] = name.clone().into();
    }
    body
}

/// A normalized address the tenant's allowlist accepts.
fn check_email(raw: &str, tenant: &Tenant) -> Result<String, AdminError> {
    let address = email::normalize(raw)
        .ok_or_else(|| AdminError::bad_request("invalid_email", "email is not a valid address"))?;
    if !email::domain_allowed(&address, &tenant.allowed_email_domains) {
        return Err(AdminError::bad_request(
            "email_domain_not_allowed",
            "the tenant does not accept addresses of this domain",
        ));
    }
    Ok(address)
}

fn check_name(raw: Option<String>) -> Result<Option<String>, AdminError> {
    Ok(raw
        .map(|n| check_text(&n, "name", MAX_NAME))
        .transpose()?
        .filter(|n| !n.is_empty()))
}

fn email_taken() -> AdminError {
    AdminError::conflict("user_exists", "a user with this email already exists")
}

pub(super) async fn create(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminJson(request): AdminJson<CreateUser>,
) -> Result<impl IntoResponse, AdminError> {
    let tenant = &admin.tenant.id;
    let now = state.clock.unix();
    let user = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        email: check_email(&request.email, &admin.tenant)?,
        name: check_name(request.name)?,
        status: UserStatus::Active,
        created_at: now,
        updated_at: now,
    };

    let mut tx = state.store.begin().await?;
    match users::insert(&mut *tx, tenant, &user).await {
        Err(StoreError::Conflict) => return Err(email_taken()),
        other => other?,
    }
    // The event is about this address, so the row may name it.
    let event = AuditEvent::new("user.created")
        .user(&user.user_id)
        .details(json!({ "email": user.email }));
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.as_str(),
        &meta,
        event,
    )
    .await?;
    store::commit(tx).await?;
    Ok((StatusCode::CREATED, Json(view(&user))))
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: TenantAdmin,
    AdminQuery(query): AdminQuery<UserQuery>,
) -> Result<Json<Value>, AdminError> {
    let tenant = &admin.tenant.id;
    if let Some(raw) = &query.email {
        let found = match email::normalize(raw) {
            Some(address) => users::find_by_email(state.store.reader(), tenant, &address).await?,
            None => None,
        };
        let items: Vec<Value> = found.iter().map(view).collect();
        return Ok(Json(json!({ "items": items })));
    }
    let limit = super::Page {
        after: None,
        limit: query.limit,
    }
    .limit()?;
    let found = users::list(state.store.reader(), tenant, query.after.as_deref(), limit).await?;
    let items: Vec<Value> = found.iter().map(view).collect();
    Ok(Json(page_body(items, limit, |u| {
        u["user_id"].as_str().unwrap_or_default().to_owned()
    })))
}

async fn load(state: &AppState, tenant: &TenantId, user_id: &str) -> Result<User, AdminError> {
    users::get(state.store.reader(), tenant, user_id)
        .await?
        .ok_or_else(|| AdminError::not_found("user"))
}

pub(super) async fn get(
    State(state): State<AppState>,
    admin: TenantAdmin,
    AdminPath((_, user_id)): AdminPath<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(view(&load(&state, &admin.tenant.id, &user_id).await?)))
}

/// Changes email, name or status (`active` or `disabled`); a disabled user cannot sign in.
pub(super) async fn update(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminPath((_, user_id)): AdminPath<(String, String)>,
    AdminJson(request): AdminJson<UpdateUser>,
) -> Result<Json<Value>, AdminError> {
    let tenant = &admin.tenant.id;
    let mut user = load(&state, tenant, &user_id).await?;
    let before = user.clone();
    if let Some(raw) = &request.email {
        user.email = check_email(raw, &admin.tenant)?;
    }
    if request.name.is_some() {
        user.name = check_name(request.name)?;
    }
    if let Some(raw) = &request.status {
        user.status = UserStatus::parse(raw).ok_or_else(|| {
            AdminError::bad_request("invalid_request", "status must be active or disabled")
        })?;
    }
    user.updated_at = state.clock.unix();

    let event_name = match (before.status, user.status) {
        (UserStatus::Active, UserStatus::Disabled) => "user.disabled",
        (UserStatus::Disabled, UserStatus::Active) => "user.enabled",
        _ => "user.updated",
    };
    let mut changed = serde_json::Map::new();
    if before.email != user.email {
        changed.insert(
            "email".into(),
            json!({ "from": before.email, "to": user.email }),
        );
    }
    if before.name != user.name {
        changed.insert("name".into(), json!({ "to": user.name }));
    }

    let mut tx = state.store.begin().await?;
    match users::update(&mut *tx, tenant, &user).await {
        Err(StoreError::Conflict) => return Err(email_taken()),
        other => other?,
    }
    let event = AuditEvent::new(event_name)
        .user(&user.user_id)
        .details(Value::Object(changed));
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.as_str(),
        &meta,
        event,
    )
    .await?;
    store::commit(tx).await?;
    Ok(Json(view(&user)))
}
