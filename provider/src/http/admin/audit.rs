//! The tenant's audit trail: `GET /a/{tenant}/admin/audit`, a paginated JSON listing for admin
//! tools, oldest first; and `GET /a/{tenant}/admin/audit/export`, the sealed rows of a time
//! range as CSV or NDJSON, streamed page by page in constant memory.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{AdminQuery, Page, TenantAdmin, page_body};
use crate::{
    audit::{
        self, AuditEvent, RequestMeta, chain,
        file::{self, Format},
    },
    error::AdminError,
    state::AppState,
    store::{
        Store,
        audit::{ExportFilter, StoredAudit},
    },
};

/// Rows read per page of an export.
const EXPORT_PAGE: i64 = 1000;
/// Pending rows an export seals before it starts, at most.
const EXPORT_SEAL_LIMIT: u64 = 20_000;

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
    if let (Some(seq), Some(hash)) = (row.chain_seq, &row.chain_hash) {
        body["seq"] = seq.into();
        body["hash"] = hash.clone().into();
    }
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    from: String,
    to: String,
    format: Option<String>,
    event: Option<String>,
    user_id: Option<String>,
    client_id: Option<String>,
}

fn time_bound(name: &str, value: &str) -> Result<i64, AdminError> {
    file::parse_rfc3339_ms(value).ok_or_else(|| {
        AdminError::bad_request(
            "invalid_request",
            format!("{name} must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"),
        )
    })
}

pub(super) async fn export(
    State(state): State<AppState>,
    admin: TenantAdmin,
    meta: RequestMeta,
    AdminQuery(query): AdminQuery<ExportQuery>,
) -> Result<Response, AdminError> {
    let from_ms = time_bound("from", &query.from)?;
    let to_ms = time_bound("to", &query.to)?;
    if from_ms >= to_ms {
        return Err(AdminError::bad_request(
            "invalid_request",
            "from must be before to",
        ));
    }
    let format = Format::parse(query.format.as_deref().unwrap_or("csv")).ok_or_else(|| {
        AdminError::bad_request("invalid_request", "format must be csv or ndjson")
    })?;
    let tenant = admin.tenant.id.as_str().to_owned();
    let filter = ExportFilter {
        from_ms,
        to_ms,
        event: query.event.filter(|v| !v.is_empty()),
        user_id: query.user_id.filter(|v| !v.is_empty()),
        client_id: query.client_id.filter(|v| !v.is_empty()),
    };
    let event = AuditEvent::new("audit.exported").details(json!({
        "from": query.from,
        "to": query.to,
        "format": format.extension(),
        "event": filter.event,
        "user_id": filter.user_id,
        "client_id": filter.client_id,
    }));
    audit::record_alone(&state.store, state.clock.as_ref(), &tenant, &meta, event).await?;
    // Seal what has been written until now, so the export holds it with its chain. The sealing
    // task keeps the backlog to about a second's worth; should it have fallen far behind, the
    // export seals a bounded share and holds the rows sealed so far.
    chain::seal_at_most(&state.store, &state.digester, &tenant, EXPORT_SEAL_LIMIT).await?;

    let filename = format!(
        "attachment; filename=\"audit-{tenant}-{}.{}\"",
        query.from.replace(':', ""),
        format.extension()
    );
    let body = Body::from_stream(pages(state.store.clone(), tenant, filter, format));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The export's body: the CSV header, then one chunk per page of rows, read by keyset so memory
/// stays flat however many rows there are. A failed read ends the stream with an error, which
/// cuts the response short rather than passing a partial file off as whole.
fn pages(
    store: Store,
    tenant: String,
    filter: ExportFilter,
    format: Format,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    struct Cursor {
        store: Store,
        tenant: String,
        filter: ExportFilter,
        after_seq: i64,
        header: bool,
        done: bool,
    }
    let start = Cursor {
        store,
        tenant,
        filter,
        after_seq: 0,
        header: format == Format::Csv,
        done: false,
    };
    futures_util::stream::unfold(start, move |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let mut chunk = if std::mem::take(&mut cursor.header) {
            file::csv_header()
        } else {
            Vec::new()
        };
        let page = crate::store::audit::export_page(
            cursor.store.reader(),
            &cursor.tenant,
            &cursor.filter,
            cursor.after_seq,
            EXPORT_PAGE,
        )
        .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(error = %err, "audit export stopped");
                cursor.done = true;
                return Some((Err(std::io::Error::other("audit export stopped")), cursor));
            }
        };
        cursor.done = (rows.len() as i64) < EXPORT_PAGE;
        if let Some(seq) = rows.last().and_then(|row| row.chain_seq) {
            cursor.after_seq = seq;
        }
        file::encode(format, &rows, &mut chunk);
        Some((Ok(Bytes::from(chunk)), cursor))
    })
}
