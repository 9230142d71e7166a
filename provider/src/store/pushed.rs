//! The `pushed_requests` table (RFC 9126): parameters posted ahead, used once.

use shared::TenantId;
use sqlx::{Any, Executor};

use super::StoreResult;

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    id: &str,
    client_id: &str,
    params: &str,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO pushed_requests (tenant_id, id, client_id, params, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(client_id)
    .bind(params)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes a pushed request for `client_id` once, before it expires: its parameters, or `None`.
pub async fn take<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    id: &str,
    client_id: &str,
    now: i64,
) -> StoreResult<Option<String>> {
    let params = sqlx::query_scalar(
        "UPDATE pushed_requests SET used_at = $4 WHERE tenant_id = $1 AND id = $2 \
         AND client_id = $3 AND used_at IS NULL AND expires_at > $4 RETURNING params",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(client_id)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(params)
}
