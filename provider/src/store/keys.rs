//! The `signing_keys` table and the tenant's `keys_version`, which every key change bumps first:
//! the bump serializes key changes per tenant and tells other replicas their cache is stale.

use shared::TenantId;
use sqlx::{Any, Executor, FromRow};

use super::{StoreResult, tenants::found};

#[derive(Clone, Debug, FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub public_jwk: String,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Bumps the tenant's keys version, taking its row lock until the transaction ends (PostgreSQL;
/// SQLite has one writer anyway). Returns the new version; `NotFound` for an unknown tenant.
pub async fn lock_and_bump<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
) -> StoreResult<i64> {
    let version = sqlx::query_scalar(
        "UPDATE tenants SET keys_version = keys_version + 1 WHERE id = $1 RETURNING keys_version",
    )
    .bind(tenant.as_str())
    .fetch_optional(db)
    .await?;
    version.ok_or(super::StoreError::NotFound)
}

pub async fn version<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
) -> StoreResult<Option<i64>> {
    let version = sqlx::query_scalar("SELECT keys_version FROM tenants WHERE id = $1")
        .bind(tenant.as_str())
        .fetch_optional(db)
        .await?;
    Ok(version)
}

/// The tenant's keys and its keys version, oldest key first.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
) -> StoreResult<Vec<StoredKey>> {
    let keys = sqlx::query_as::<_, StoredKey>(
        "SELECT kid, alg, state, public_jwk, private_key, created_at, activated_at, retired_at, \
         revoked_at FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at, kid",
    )
    .bind(tenant.as_str())
    .fetch_all(db)
    .await?;
    Ok(keys)
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    key: &StoredKey,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (tenant_id, kid, alg, state, public_jwk, private_key, created_at, \
         activated_at, retired_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant.as_str())
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.state)
    .bind(&key.public_jwk)
    .bind(&key.private_key)
    .bind(key.created_at)
    .bind(key.activated_at)
    .bind(key.retired_at)
    .bind(key.revoked_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves a key to `state`, stamping the matching time column.
pub async fn set_state<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    kid: &str,
    state: &str,
    now: i64,
) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE signing_keys SET state = $3, \
         activated_at = CASE WHEN $3 = 'active' THEN $4 ELSE activated_at END, \
         retired_at = CASE WHEN $3 = 'retired' THEN $4 ELSE retired_at END, \
         revoked_at = CASE WHEN $3 = 'revoked' THEN $4 ELSE revoked_at END \
         WHERE tenant_id = $1 AND kid = $2",
    )
    .bind(tenant.as_str())
    .bind(kid)
    .bind(state)
    .bind(now)
    .execute(db)
    .await?;
    found(result.rows_affected())
}

/// Every tenant's sealed private keys, for rewrapping under a new key encryption key. The one
/// cross-tenant read of this table: an operator command, never a request.
pub async fn all_sealed<'e>(
    db: impl Executor<'e, Database = Any>,
) -> StoreResult<Vec<(String, String, Vec<u8>)>> {
    let rows = sqlx::query_as(
        "SELECT tenant_id, kid, private_key FROM signing_keys ORDER BY tenant_id, kid",
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}

pub async fn set_sealed<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    kid: &str,
    sealed: &[u8],
) -> StoreResult<()> {
    let result =
        sqlx::query("UPDATE signing_keys SET private_key = $3 WHERE tenant_id = $1 AND kid = $2")
            .bind(tenant.as_str())
            .bind(kid)
            .bind(sealed)
            .execute(db)
            .await?;
    found(result.rows_affected())
}

pub async fn delete<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    kid: &str,
) -> StoreResult<()> {
    let result = sqlx::query(
        "DELETE FROM signing_keys WHERE tenant_id = $1 AND kid = $2 AND state = 'retired'",
    )
    .bind(tenant.as_str())
    .bind(kid)
    .execute(db)
    .await?;
    found(result.rows_affected())
}

/// How many keys each tenant has in each state, ordered by tenant.
pub async fn count_by_state<'e>(
    db: impl Executor<'e, Database = Any>,
) -> StoreResult<Vec<(String, String, i64)>> {
    let counts = sqlx::query_as(
        "SELECT tenant_id, state, COUNT(*) FROM signing_keys GROUP BY tenant_id, state \
         ORDER BY tenant_id, state",
    )
    .fetch_all(db)
    .await?;
    Ok(counts)
}
