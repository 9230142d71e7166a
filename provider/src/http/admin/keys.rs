//! `/a/{tenant}/admin/keys`: listing, staging, activating and revoking signing keys
//! (SPEC "Key states"; the incident runbook's first step).

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminPath, OptionalJson, TenantAdmin};
use crate::{
    audit::RequestMeta,
    clock::rfc3339,
    error::AdminError,
    keys::{KeyView, lifecycle::PUBLISH_WINDOW, material::Alg},
    state::AppState,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StageKey {
    alg: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActivateKey {
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeKeys {
    kid: Option<String>,
}

fn view(key: &KeyView) -> Value {
    let mut body = json!({
        "kid": key.kid,
        "alg": key.alg,
        "state": key.state.as_str(),
        "created_at": rfc3339(key.created_at),
    });
    for (name, at) in [
        ("activated_at", key.activated_at),
        ("retired_at", key.retired_at),
        ("revoked_at", key.revoked_at),
    ] {
        if let Some(at) = at {
            body[name] = rfc3339(at).into();
        }
    }
    if key.state == crate::keys::lifecycle::KeyState::Staged {
        body["activatable_at"] = rfc3339(key.created_at + PUBLISH_WINDOW).into();
    }
    body
}

async fn keys_body(state: &AppState, admin: &TenantAdmin) -> Result<Value, AdminError> {
    let keys = state.keys.list(&admin.tenant.id).await?;
    Ok(Value::Array(keys.iter().map(view).collect()))
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: TenantAdmin,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(keys_body(&state, &admin).await?))
}

pub(super) async fn stage(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    OptionalJson(request): OptionalJson<StageKey>,
) -> Result<impl IntoResponse, AdminError> {
    let alg = match request.unwrap_or_default().alg {
        None => Alg::Es256,
        Some(raw) => Alg::parse(&raw).ok_or_else(|| {
            AdminError::bad_request("invalid_request", "alg must be ES256, RS256 or EdDSA")
        })?,
    };
    let kid = state.keys.stage(&admin.tenant.id, alg, &meta).await?;
    let keys = state.keys.list(&admin.tenant.id).await?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| AdminError::not_found("key"))?;
    Ok((StatusCode::CREATED, Json(view(key))))
}

pub(super) async fn activate(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminPath((_, kid)): AdminPath<(String, String)>,
    OptionalJson(request): OptionalJson<ActivateKey>,
) -> Result<Json<Value>, AdminError> {
    let force = request.unwrap_or_default().force;
    state
        .keys
        .activate(&admin.tenant.id, &kid, force, &meta)
        .await?;
    Ok(Json(keys_body(&state, &admin).await?))
}

/// `{"kid"}` revokes that key; no body revokes every active key. The tenant keeps signing with
/// the promoted key.
pub(super) async fn revoke(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    OptionalJson(request): OptionalJson<RevokeKeys>,
) -> Result<Json<Value>, AdminError> {
    let kid = request.unwrap_or_default().kid;
    let revoked = state
        .keys
        .revoke(&admin.tenant.id, kid.as_deref(), &meta)
        .await?;
    Ok(Json(
        json!({ "revoked": revoked, "keys": keys_body(&state, &admin).await? }),
    ))
}
