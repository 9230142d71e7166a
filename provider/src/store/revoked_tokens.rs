//! The `revoked_tokens` table: JWT access tokens revoked before they expire (RFC 7009), by jti.

use shared::TenantId;
use sqlx::{Any, Executor};

use super::StoreResult;

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, jti) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(jti)
    .bind(expires_at)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn is_revoked<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    jti: &str,
) -> StoreResult<bool> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT jti FROM revoked_tokens WHERE tenant_id = $1 AND jti = $2")
            .bind(tenant.as_str())
            .bind(jti)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}
