//! Refresh token families and their tokens. Rotation is one conditional update, so of any
//! number of concurrent uses of one token exactly one rotates it.

use shared::TenantId;
use sqlx::{Any, Executor, FromRow};

use super::{StoreResult, Tx};

#[derive(Clone, Debug, FromRow)]
pub struct Family {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub resources: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The browser session the grant was signed in with.
    pub session_digest: Option<Vec<u8>>,
    /// The DPoP key a public client's family is bound to.
    pub dpop_jkt: Option<String>,
}

pub async fn insert_family<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    family: &Family,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_families (tenant_id, id, client_id, user_id, scope, resources, \
         auth_time, created_at, expires_at, session_digest, dpop_jkt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(tenant.as_str())
    .bind(&family.id)
    .bind(&family.client_id)
    .bind(&family.user_id)
    .bind(&family.scope)
    .bind(&family.resources)
    .bind(family.auth_time)
    .bind(now)
    .bind(family.expires_at)
    .bind(family.session_digest.as_deref())
    .bind(family.dpop_jkt.as_deref())
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_family<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<Family>> {
    let row = sqlx::query_as::<_, Family>(
        "SELECT id, client_id, user_id, scope, resources, auth_time, expires_at, revoked_at, \
         session_digest, dpop_jkt FROM refresh_families WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Revokes a family and every access token it produced; false when it already was.
pub async fn revoke_family(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE refresh_families SET revoked_at = $3, revoked_reason = $4 \
         WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) \
         SELECT tenant_id, jti, expires_at, $3 FROM family_access_tokens \
         WHERE tenant_id = $1 AND family_id = $2 ON CONFLICT (tenant_id, jti) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn record_access_token<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    family_id: &str,
    jti: &str,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO family_access_tokens (tenant_id, family_id, jti, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant.as_str())
        .bind(family_id)
        .bind(jti)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

#[derive(Clone, Debug, FromRow)]
pub struct RefreshToken {
    pub family_id: String,
    pub generation: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub rotated_response: Option<Vec<u8>>,
}

pub async fn insert_token<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    digest: &[u8],
    family_id: &str,
    generation: i64,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (tenant_id, token_digest, family_id, generation, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .bind(family_id)
    .bind(generation)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_token<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    digest: &[u8],
) -> StoreResult<Option<RefreshToken>> {
    let row = sqlx::query_as::<_, RefreshToken>(
        "SELECT family_id, generation, expires_at, rotated_at, rotated_response FROM refresh_tokens \
         WHERE tenant_id = $1 AND token_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// The newest generation of a family.
pub async fn latest_generation<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    family_id: &str,
) -> StoreResult<i64> {
    let generation: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(generation) FROM refresh_tokens WHERE tenant_id = $1 AND family_id = $2",
    )
    .bind(tenant.as_str())
    .bind(family_id)
    .fetch_one(db)
    .await?;
    Ok(generation.unwrap_or(0))
}

/// Rotates a token once, keeping the response its rotation produced; false when another use
/// rotated it first.
pub async fn rotate<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    digest: &[u8],
    now: i64,
    sealed_response: &[u8],
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = $3, rotated_response = $4 \
         WHERE tenant_id = $1 AND token_digest = $2 AND rotated_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .bind(now)
    .bind(sealed_response)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Revokes every live family of one user (or of the whole tenant when `user_id` is `None`) and
/// the access tokens they produced; returns how many families.
pub async fn revoke_all(
    tx: &mut Tx,
    tenant: &TenantId,
    user_id: Option<&str>,
    reason: &str,
    now: i64,
) -> StoreResult<u64> {
    sqlx::query(
        "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) \
         SELECT a.tenant_id, a.jti, a.expires_at, $3 FROM family_access_tokens a \
         JOIN refresh_families f ON f.tenant_id = a.tenant_id AND f.id = a.family_id \
         WHERE a.tenant_id = $1 AND f.revoked_at IS NULL AND ($2 = '' OR f.user_id = $2) \
         ON CONFLICT (tenant_id, jti) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(user_id.unwrap_or(""))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let result = sqlx::query(
        "UPDATE refresh_families SET revoked_at = $3, revoked_reason = $4 \
         WHERE tenant_id = $1 AND revoked_at IS NULL AND ($2 = '' OR user_id = $2)",
    )
    .bind(tenant.as_str())
    .bind(user_id.unwrap_or(""))
    .bind(now)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected())
}
