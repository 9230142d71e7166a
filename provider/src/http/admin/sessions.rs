//! `POST /a/{tenant}/admin/revoke/sessions` (SPEC; the incident runbook's "invalidate
//! sessions"): ends the refresh families and browser sessions of one user, or of the whole
//! tenant, in one transaction, and answers the counts.

use axum::{Json, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{OptionalJson, TenantAdmin};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    error::AdminError,
    state::AppState,
    store::{self, refresh, sessions, users},
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeSessions {
    user_id: Option<String>,
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    OptionalJson(request): OptionalJson<RevokeSessions>,
) -> Result<Json<Value>, AdminError> {
    let tenant = &admin.tenant.id;
    let user_id = request.unwrap_or_default().user_id;
    if let Some(user_id) = &user_id
        && users::get(state.store.reader(), tenant, user_id)
            .await?
            .is_none()
    {
        return Err(AdminError::not_found("user"));
    }
    let now = state.clock.unix();
    let mut tx = state.store.begin().await?;
    let families = refresh::revoke_all(&mut tx, tenant, user_id.as_deref(), "admin", now).await?;
    let browser_sessions = sessions::end_all(&mut *tx, tenant, user_id.as_deref(), now).await?;
    let counts =
        json!({ "refresh_families_revoked": families, "browser_sessions_ended": browser_sessions });
    let mut event = AuditEvent::new("session.revoked").details(json!({
        "scope": if user_id.is_some() { "user" } else { "tenant" },
        "counts": counts,
    }));
    if let Some(user_id) = &user_id {
        event = event.user(user_id);
    }
    audit::record(
        &mut *tx,
        state.clock.as_ref(),
        tenant.as_str(),
        &meta,
        event,
    )
    .await?;
    store::commit(tx).await?;
    Ok(Json(counts))
}
