//! The `browser_sessions` table: who is signed in, in which browser, until when.

use shared::TenantId;
use sqlx::{Any, Executor, FromRow};

use super::StoreResult;

#[derive(Clone, Debug, FromRow)]
pub struct BrowserSession {
    pub user_id: String,
    pub auth_time: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    sid_digest: &[u8],
    user_id: &str,
    auth_time: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO browser_sessions (tenant_id, sid_digest, user_id, auth_time, created_at, \
         last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $4, $5)",
    )
    .bind(tenant.as_str())
    .bind(sid_digest)
    .bind(user_id)
    .bind(auth_time)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    sid_digest: &[u8],
) -> StoreResult<Option<BrowserSession>> {
    let row = sqlx::query_as::<_, BrowserSession>(
        "SELECT user_id, auth_time, last_seen_at, expires_at, ended_at FROM browser_sessions \
         WHERE tenant_id = $1 AND sid_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(sid_digest)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn touch<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    sid_digest: &[u8],
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE browser_sessions SET last_seen_at = $3 WHERE tenant_id = $1 AND sid_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(sid_digest)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends one session; false when it had already ended.
pub async fn end<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    sid_digest: &[u8],
    now: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE browser_sessions SET ended_at = $3 \
         WHERE tenant_id = $1 AND sid_digest = $2 AND ended_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(sid_digest)
    .bind(now)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends every open session of one user (or of the whole tenant when `user_id` is `None`);
/// returns how many.
pub async fn end_all<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    user_id: Option<&str>,
    now: i64,
) -> StoreResult<u64> {
    let result = sqlx::query(
        "UPDATE browser_sessions SET ended_at = $3 \
         WHERE tenant_id = $1 AND ended_at IS NULL AND ($2 = '' OR user_id = $2)",
    )
    .bind(tenant.as_str())
    .bind(user_id.unwrap_or(""))
    .bind(now)
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}
