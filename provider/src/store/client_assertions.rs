//! The `client_assertion_jtis` table: private_key_jwt assertions already used.

use shared::TenantId;
use sqlx::{Any, Executor};

use super::StoreResult;

/// Records an assertion's jti; false when the client already used it (a replay).
pub async fn record_once<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client_id: &str,
    jti: &str,
    expires_at: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "INSERT INTO client_assertion_jtis (tenant_id, client_id, jti, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, client_id, jti) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(client_id)
    .bind(jti)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}
