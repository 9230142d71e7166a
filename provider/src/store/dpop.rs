//! The `dpop_jtis` table: DPoP proofs seen within their acceptance window.

use shared::TenantId;
use sqlx::{Any, Executor};

use super::StoreResult;

/// Records a proof's jti for its key; false when that key already used it (a replay).
pub async fn record_once<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    jkt: &str,
    jti: &str,
    expires_at: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "INSERT INTO dpop_jtis (tenant_id, jkt, jti, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, jkt, jti) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(jkt)
    .bind(jti)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}
