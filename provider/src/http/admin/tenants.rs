//! `/admin/tenants` (root only) and `/a/{tenant}/admin/secret`: creating tenants, reading and
//! changing their settings, and rotating a tenant's admin secret.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::TenantId;

use super::{
    AdminJson, AdminPath, AdminQuery, Page, RootAdmin, TenantAdmin, check_text, page_body,
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    clock::rfc3339,
    crypto::{SecretKind, random_secret},
    email,
    error::AdminError,
    keys::lifecycle::MAX_TOKEN_TTL,
    state::AppState,
    store::{
        self, StoreError,
        tenants::{self, DEFAULT_KEY_ROTATION_SECS, DEFAULT_TOKEN_TTL, Tenant},
    },
};

const MAX_DISPLAY_NAME: usize = 200;
const MAX_EMAIL_DOMAINS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    pub(crate) id: String,
    pub(crate) display_name: Option<String>,
    pub(crate) allowed_email_domains: Option<Vec<String>>,
    pub(crate) self_signup: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTenant {
    display_name: Option<String>,
    allowed_email_domains: Option<Vec<String>>,
    access_token_ttl: Option<i64>,
    id_token_ttl: Option<i64>,
    key_rotation_secs: Option<i64>,
    self_signup: Option<bool>,
    pkce_required_for_confidential: Option<bool>,
    require_email_code: Option<bool>,
    require_par: Option<bool>,
    refresh_idle_secs: Option<i64>,
    refresh_absolute_secs: Option<i64>,
    refresh_grace_secs: Option<i64>,
    require_offline_access: Option<bool>,
    audit_retention_days: Option<i64>,
    issuance_paused: Option<bool>,
}

/// Shortest rotation period: a key must at least outlive its own publish window.
const MIN_KEY_ROTATION_SECS: i64 = 3600;

/// Shortest token lifetime accepted; shorter ones break clients on any clock skew.
const MIN_TOKEN_TTL: i64 = 60;

fn check_ttl(value: i64, field: &str) -> Result<i64, AdminError> {
    if (MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&value) {
        Ok(value)
    } else {
        Err(AdminError::bad_request(
            "invalid_request",
            format!("{field} must be from {MIN_TOKEN_TTL} to {MAX_TOKEN_TTL} seconds"),
        ))
    }
}

pub(super) fn view(tenant: &Tenant, state: &AppState) -> Value {
    json!({
        "id": tenant.id,
        "issuer": tenant.id.issuer(&state.config.public_url),
        "display_name": tenant.display_name,
        "allowed_email_domains": tenant.allowed_email_domains,
        "access_token_ttl": tenant.access_token_ttl,
        "id_token_ttl": tenant.id_token_ttl,
        "key_rotation_secs": tenant.key_rotation_secs,
        "self_signup": tenant.self_signup,
        "pkce_required_for_confidential": tenant.pkce_required_for_confidential,
        "require_email_code": tenant.require_email_code,
        "require_par": tenant.require_par,
        "refresh_idle_secs": tenant.refresh_idle_secs,
        "refresh_absolute_secs": tenant.refresh_absolute_secs,
        "refresh_grace_secs": tenant.refresh_grace_secs,
        "require_offline_access": tenant.require_offline_access,
        "audit_retention_days": tenant.audit_retention_days,
        "issuance_paused": tenant.issuance_paused,
        "created_at": rfc3339(tenant.created_at),
        "updated_at": rfc3339(tenant.updated_at),
    })
}

fn check_domains(domains: Vec<String>) -> Result<Vec<String>, AdminError> {
    if domains.len() > MAX_EMAIL_DOMAINS {
        return Err(AdminError::bad_request(
            "invalid_request",
            format!("at most {MAX_EMAIL_DOMAINS} allowed_email_domains"),
        ));
    }
    let mut normalized: Vec<String> = Vec::with_capacity(domains.len());
    for raw in domains {
        let domain = email::normalize_domain(&raw).ok_or_else(|| {
            AdminError::bad_request("invalid_request", format!("{raw:?} is not a domain name"))
        })?;
        if !normalized.contains(&domain) {
            normalized.push(domain);
        }
    }
    Ok(normalized)
}

/// Creates a tenant and its admin secret; the secret is returned here and never again.
pub(crate) async fn create_tenant(
    state: &AppState,
    meta: &RequestMeta,
    request: CreateTenant,
) -> Result<(Tenant, String), AdminError> {
    let id = TenantId::parse(&request.id)
        .map_err(|e| AdminError::bad_request("invalid_tenant_id", e.to_string()))?;
    let display_name = match request.display_name {
        Some(name) => check_text(&name, "display_name", MAX_DISPLAY_NAME)?,
        None => id.to_string(),
    };
    let now = state.clock.unix();
    let tenant = Tenant {
        id,
        display_name,
        allowed_email_domains: check_domains(request.allowed_email_domains.unwrap_or_default())?,
        access_token_ttl: DEFAULT_TOKEN_TTL,
        id_token_ttl: DEFAULT_TOKEN_TTL,
        key_rotation_secs: DEFAULT_KEY_ROTATION_SECS,
        self_signup: request.self_signup.unwrap_or(false),
        pkce_required_for_confidential: true,
        require_email_code: false,
        require_par: false,
        refresh_idle_secs: 30 * 24 * 3600,
        refresh_absolute_secs: 90 * 24 * 3600,
        refresh_grace_secs: 5,
        require_offline_access: false,
        audit_retention_days: tenants::DEFAULT_AUDIT_RETENTION_DAYS,
        issuance_paused: false,
        registration_policy: "open".to_owned(),
        created_at: now,
        updated_at: now,
    };
    let secret = random_secret();
    let digest = state.digester.digest(SecretKind::TenantAdmin, &secret);

    let mut tx = state.store.begin().await?;
    match tenants::insert(&mut *tx, &tenant, &digest).await {
        Err(StoreError::Conflict) => {
            return Err(AdminError::conflict(
                "tenant_exists",
                format!("tenant {} already exists", tenant.id),
            ));
        }
        other => other?,
    }
    let details = json!({ "display_name": tenant.display_name, "allowed_email_domains": tenant.allowed_email_domains });
    let event = AuditEvent::new("tenant.created").details(details);
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.id.as_str(),
        meta,
        event,
    )
    .await?;
    state.keys.create_initial(&mut tx, &tenant.id, meta).await?;
    store::commit(tx).await?;
    Ok((tenant, secret))
}

pub(super) async fn create(
    State(state): State<AppState>,
    _root: RootAdmin,
    meta: RequestMeta,
    AdminJson(request): AdminJson<CreateTenant>,
) -> Result<impl IntoResponse, AdminError> {
    let (tenant, secret) = create_tenant(&state, &meta, request).await?;
    let mut body = view(&tenant, &state);
    body["admin_secret"] = secret.into();
    Ok((StatusCode::CREATED, Json(body)))
}

pub(super) async fn list(
    State(state): State<AppState>,
    _root: RootAdmin,
    AdminQuery(page): AdminQuery<Page>,
) -> Result<Json<Value>, AdminError> {
    let limit = page.limit()?;
    let found = tenants::list(state.store.reader(), page.after.as_deref(), limit).await?;
    let items: Vec<Value> = found.iter().map(|t| view(t, &state)).collect();
    Ok(Json(page_body(items, limit, |t| {
        t["id"].as_str().unwrap_or_default().to_owned()
    })))
}

async fn load(state: &AppState, raw_id: &str) -> Result<Tenant, AdminError> {
    let id = TenantId::parse(raw_id).map_err(|_| AdminError::not_found("tenant"))?;
    tenants::get(state.store.reader(), &id)
        .await?
        .ok_or_else(|| AdminError::not_found("tenant"))
}

pub(super) async fn get(
    State(state): State<AppState>,
    _root: RootAdmin,
    AdminPath(id): AdminPath<String>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(view(&load(&state, &id).await?, &state)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    _root: RootAdmin,
    meta: RequestMeta,
    AdminPath(id): AdminPath<String>,
    AdminJson(request): AdminJson<UpdateTenant>,
) -> Result<Json<Value>, AdminError> {
    let mut tenant = load(&state, &id).await?;
    if let Some(name) = request.display_name {
        tenant.display_name = check_text(&name, "display_name", MAX_DISPLAY_NAME)?;
    }
    if let Some(domains) = request.allowed_email_domains {
        tenant.allowed_email_domains = check_domains(domains)?;
    }
    if let Some(ttl) = request.access_token_ttl {
        tenant.access_token_ttl = check_ttl(ttl, "access_token_ttl")?;
    }
    if let Some(ttl) = request.id_token_ttl {
        tenant.id_token_ttl = check_ttl(ttl, "id_token_ttl")?;
    }
    if let Some(period) = request.key_rotation_secs {
        if period != 0 && period < MIN_KEY_ROTATION_SECS {
            return Err(AdminError::bad_request(
                "invalid_request",
                format!("key_rotation_secs must be 0 (off) or at least {MIN_KEY_ROTATION_SECS}"),
            ));
        }
        tenant.key_rotation_secs = period;
    }
    if let Some(on) = request.self_signup {
        tenant.self_signup = on;
    }
    if let Some(on) = request.pkce_required_for_confidential {
        tenant.pkce_required_for_confidential = on;
    }
    if let Some(on) = request.require_email_code {
        tenant.require_email_code = on;
    }
    if let Some(on) = request.require_par {
        tenant.require_par = on;
    }
    if let Some(on) = request.require_offline_access {
        tenant.require_offline_access = on;
    }
    let was_paused = tenant.issuance_paused;
    if let Some(paused) = request.issuance_paused {
        tenant.issuance_paused = paused;
    }
    if let Some(days) = request.audit_retention_days {
        if !(0..=3650).contains(&days) {
            return Err(AdminError::bad_request(
                "invalid_request",
                "audit_retention_days must be from 0 (keep forever) to 3650",
            ));
        }
        tenant.audit_retention_days = days;
    }
    if let Some(grace) = request.refresh_grace_secs {
        if !(0..=60).contains(&grace) {
            return Err(AdminError::bad_request(
                "invalid_request",
                "refresh_grace_secs must be from 0 to 60",
            ));
        }
        tenant.refresh_grace_secs = grace;
    }
    let idle = request
        .refresh_idle_secs
        .unwrap_or(tenant.refresh_idle_secs);
    let absolute = request
        .refresh_absolute_secs
        .unwrap_or(tenant.refresh_absolute_secs);
    if idle < 60 || absolute < idle || absolute > 400 * 24 * 3600 {
        return Err(AdminError::bad_request(
            "invalid_request",
            "refresh lifetimes need 60 s <= refresh_idle_secs <= refresh_absolute_secs <= 400 days",
        ));
    }
    (tenant.refresh_idle_secs, tenant.refresh_absolute_secs) = (idle, absolute);
    tenant.updated_at = state.clock.unix();

    let mut tx = state.store.begin().await?;
    tenants::update(&mut *tx, &tenant).await?;
    let details = json!({
        "display_name": tenant.display_name,
        "allowed_email_domains": tenant.allowed_email_domains,
        "access_token_ttl": tenant.access_token_ttl,
        "id_token_ttl": tenant.id_token_ttl,
        "key_rotation_secs": tenant.key_rotation_secs,
        "self_signup": tenant.self_signup,
        "pkce_required_for_confidential": tenant.pkce_required_for_confidential,
        "require_email_code": tenant.require_email_code,
        "require_par": tenant.require_par,
        "refresh_idle_secs": tenant.refresh_idle_secs,
        "refresh_absolute_secs": tenant.refresh_absolute_secs,
        "refresh_grace_secs": tenant.refresh_grace_secs,
        "require_offline_access": tenant.require_offline_access,
        "audit_retention_days": tenant.audit_retention_days,
        "issuance_paused": tenant.issuance_paused,
    });
    let event = AuditEvent::new("tenant.updated").details(details);
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.id.as_str(),
        &meta,
        event,
    )
    .await?;
    if tenant.issuance_paused != was_paused {
        let name = if tenant.issuance_paused {
            "tenant.issuance_paused"
        } else {
            "tenant.issuance_resumed"
        };
        let clock = state.clock.as_ref();
        audit::record(
            &mut *tx,
            clock,
            tenant.id.as_str(),
            &meta,
            AuditEvent::new(name),
        )
        .await?;
    }
    store::commit(tx).await?;
    state.tenants.forget(&tenant.id);
    Ok(Json(view(&tenant, &state)))
}

/// Replaces the tenant's admin secret; the old one stops working at once.
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
) -> Result<Json<Value>, AdminError> {
    let secret = random_secret();
    let digest = state.digester.digest(SecretKind::TenantAdmin, &secret);
    let tenant = &admin.tenant.id;

    let mut tx = state.store.begin().await?;
    tenants::set_admin_secret_digest(&mut *tx, tenant, &digest, state.clock.unix()).await?;
    let event = AuditEvent::new("tenant.admin_secret_rotated")
        .details(json!({ "by": if admin.by_root { "root" } else { "tenant" } }));
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.as_str(),
        &meta,
        event,
    )
    .await?;
    store::commit(tx).await?;
    Ok(Json(json!({ "id": tenant, "admin_secret": secret })))
}
