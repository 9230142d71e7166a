//! The `audit_events` table: append-only rows, written in the transaction of the change they
//! describe.

use sqlx::{Any, Executor};

use super::StoreResult;

/// One audit row as stored. `tenant_id` is a plain string because failures are recorded even
/// for tenant ids that do not exist.
#[derive(Clone, Debug)]
pub struct AuditRow<'a> {
    pub tenant_id: &'a str,
    pub occurred_at_ms: i64,
    pub event: &'a str,
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: &'a str,
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    row: &AuditRow<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, occurred_at_ms, event, client_id, user_id, ip, \
         user_agent, request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.tenant_id)
    .bind(row.occurred_at_ms)
    .bind(row.event)
    .bind(row.client_id)
    .bind(row.user_id)
    .bind(row.ip)
    .bind(row.user_agent)
    .bind(row.request_id)
    .bind(row.details)
    .execute(db)
    .await?;
    Ok(())
}

/// An audit row as read back for the admin listing.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredAudit {
    pub id: i64,
    pub occurred_at_ms: i64,
    pub event: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
}

/// The tenant's rows in insertion order after row `after_id`, optionally of one event.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    after_id: i64,
    event: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<StoredAudit>> {
    let rows = sqlx::query_as::<_, StoredAudit>(
        "SELECT id, occurred_at_ms, event, client_id, user_id, ip, user_agent, request_id, details \
         FROM audit_events WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR event = $3) \
         ORDER BY id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(after_id)
    .bind(event.unwrap_or(""))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}
