//! `POST /a/{tenant}/admin/registration`: the tenant's dynamic registration policy. `open`
//! takes anyone's registration, `token` only one carrying the initial access token issued here
//! (shown once; asking again replaces it), `closed` none.

use axum::{Json, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminJson, TenantAdmin};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    crypto::{SecretKind, random_secret},
    error::AdminError,
    http::register::POLICIES,
    state::AppState,
    store::{self, tenants},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyRequest {
    policy: String,
}

pub(super) async fn set_policy(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminJson(request): AdminJson<PolicyRequest>,
) -> Result<Json<Value>, AdminError> {
    if !POLICIES.contains(&request.policy.as_str()) {
        return Err(AdminError::bad_request(
            "invalid_request",
            "policy must be open, token or closed",
        ));
    }
    let token = (request.policy == "token").then(random_secret);
    let digest = token
        .as_ref()
        .map(|t| state.digester.digest(SecretKind::RegistrationToken, t));
    let id = &admin.tenant.id;
    let mut tx = state.store.begin().await?;
    tenants::set_registration(&mut *tx, id, &request.policy, digest.as_deref()).await?;
    let event =
        AuditEvent::new("tenant.registration_changed").details(json!({ "policy": request.policy }));
    audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), &meta, event).await?;
    store::commit(tx).await?;
    state.tenants.forget(id);
    let mut body = json!({ "policy": request.policy });
    if let Some(token) = token {
        body["initial_access_token"] = token.into();
    }
    Ok(Json(body))
}
