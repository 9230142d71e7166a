//! Admin authentication by `x-admin-secret`: the root secret opens everything; a tenant's own
//! secret opens only that tenant. Secrets are compared as keyed digests in constant time, and
//! every failure is audited.

use axum::{
    extract::{FromRequestParts, RawPathParams},
    http::request::Parts,
};
use serde_json::json;
use shared::TenantId;

use crate::{
    audit::{self, AuditEvent, RequestMeta, SYSTEM_TENANT},
    crypto::SecretKind,
    error::AdminError,
    http::{
        client_ip::ClientIp,
        limits::{self, Limited},
    },
    limits::{Actor, Class, Refusal},
    state::AppState,
    store::tenants::{self, Tenant},
};

const HEADER: &str = "x-admin-secret";

/// The caller holds the root secret.
#[derive(Debug)]
pub struct RootAdmin;

/// The caller may administer `tenant`, by its own secret or the root secret.
#[derive(Debug)]
pub struct TenantAdmin {
    pub tenant: Tenant,
    pub by_root: bool,
}

fn presented_secret(parts: &Parts) -> Option<&str> {
    parts.headers.get(HEADER).and_then(|v| v.to_str().ok())
}

impl FromRequestParts<AppState> for RootAdmin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        refuse_if_blocked(parts, state).await?;
        if presented_secret(parts).is_some_and(|s| state.is_root_secret(s)) {
            return Ok(Self);
        }
        Err(refuse(parts, state, SYSTEM_TENANT, json!({ "scope": "root" })).await)
    }
}

impl FromRequestParts<AppState> for TenantAdmin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        refuse_if_blocked(parts, state).await?;
        let raw_tenant = RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(name, _)| *name == "tenant")
                    .map(|(_, value)| value.to_owned())
            })
            .unwrap_or_default();
        let tenant_id = TenantId::parse(&raw_tenant).ok();
        let presented = presented_secret(parts).unwrap_or_default();

        if !presented.is_empty() && state.is_root_secret(presented) {
            let tenant = match &tenant_id {
                Some(id) => tenants::get(state.store.reader(), id).await?,
                None => None,
            };
            return tenant
                .map(|tenant| Self {
                    tenant,
                    by_root: true,
                })
                .ok_or_else(|| AdminError::not_found("tenant"));
        }

        if let Some(id) = &tenant_id
            && let Some((tenant, digest)) =
                tenants::get_with_admin_digest(state.store.reader(), id).await?
        {
            if state
                .digester
                .verify(SecretKind::TenantAdmin, presented, &digest)
            {
                return Ok(Self {
                    tenant,
                    by_root: false,
                });
            }
            return Err(refuse(parts, state, id.as_str(), json!({ "scope": "tenant" })).await);
        }
        // Unknown or malformed tenant: recorded under the system bucket, answered like any
        // other failure so the response does not tell which tenants exist.
        let details =
            json!({ "scope": "tenant", "tenant": raw_tenant.chars().take(63).collect::<String>() });
        Err(refuse(parts, state, SYSTEM_TENANT, details).await)
    }
}

fn client_actor(parts: &Parts) -> Option<Actor> {
    parts
        .extensions
        .get::<ClientIp>()
        .map(|ClientIp(ip)| Actor::ip(*ip))
}

/// An address past its failed-login limit is refused before any secret is compared, so
/// guessing stops for a while even if the next guess would be right.
async fn refuse_if_blocked(parts: &Parts, state: &AppState) -> Result<(), AdminError> {
    let Some(actor) = client_actor(parts) else {
        return Ok(());
    };
    match state.limits.blocked(Class::AdminFailure, &actor).await {
        Ok(None) => Ok(()),
        Ok(Some(retry_after)) => Err(Limited::refused(Refusal {
            class: Class::AdminFailure,
            kind: actor.kind,
            limit: state
                .limits
                .ceiling(Class::AdminFailure, &actor)
                .unwrap_or_default(),
            retry_after,
        })
        .admin()),
        // The limit guards secrets: without its store, refuse rather than allow guessing.
        Err(()) => Err(Limited::unavailable().admin()),
    }
}

/// Records `admin.auth_failed` and returns the 401 to answer with (429 once the address has
/// failed too often, which also blocks it for a while).
async fn refuse(
    parts: &mut Parts,
    state: &AppState,
    tenant_id: &str,
    details: serde_json::Value,
) -> AdminError {
    let Ok(meta) = RequestMeta::from_request_parts(parts, state).await;
    let details = json!({
        "reason": if presented_secret(parts).is_some() { "wrong_secret" } else { "missing_secret" },
        "path": parts.uri.path(),
        "detail": details,
    });
    crate::reporting::admin_auth_failed(tenant_id);
    let over_limit = match client_actor(parts) {
        Some(actor) => {
            match limits::enforce(state, Class::AdminFailure, std::slice::from_ref(&actor)).await {
                Ok(()) => None,
                Err(limited) => {
                    state.limits.block(Class::AdminFailure, &actor).await;
                    Some(limited)
                }
            }
        }
        None => None,
    };
    let event = AuditEvent::new("admin.auth_failed").details(details);
    if let Err(err) =
        audit::record_alone(&state.store, state.clock.as_ref(), tenant_id, &meta, event).await
    {
        tracing::warn!(error = %err, "could not record admin.auth_failed");
    }
    match over_limit {
        Some(limited) => limited.admin(),
        None => AdminError::unauthorized(),
    }
}
