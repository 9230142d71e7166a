//! `GET /a/{tenant}/admin/audit`: a paginated JSON listing of the tenant's audit trail, oldest
//! first, for admin tools. (The streamed CSV/NDJSON export is a separate route.)

use axum::{Json, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{AdminQuery, Page, TenantAdmin, page_body};
use crate::{error::AdminError, state::AppState, store::audit::StoredAudit};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
    event: Option<String>,
}

fn view(row: &StoredAudit) -> Value {
    let time =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.occurred_at_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
    let mut body = json!({
        "id": row.id,
        "time": time,
        "event": row.event,
        "details": serde_json::from_str::<Value>(&row.details).unwrap_or(Value::Null),
    });
    for (key, value) in [
        ("client_id", &row.client_id),
        ("user_id", &row.user_id),
        ("ip", &row.ip),
        ("user_agent", &row.user_agent),
        ("request_id", &row.request_id),
    ] {
        if let Some(value) = value {
            body[key] = value.clone().into();
        }
    }
    body
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: TenantAdmin,
    AdminQuery(query): AdminQuery<AuditQuery>,
) -> Result<Json<Value>, AdminError> {
    let limit = Page {
        after: None,
        limit: query.limit,
    }
    .limit()?;
    let rows = crate::store::audit::list(
        state.store.reader(),
        admin.tenant.id.as_str(),
        query.after.unwrap_or(0),
        query.event.as_deref(),
        limit,
    )
    .await?;
    let items: Vec<Value> = rows.iter().map(view).collect();
    Ok(Json(page_body(items, limit, |row| row["id"].to_string())))
}
