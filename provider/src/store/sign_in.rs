//! Pending authorization requests, magic links and authorization codes. Link tokens and codes
//! are looked up by their keyed digest; consuming either is one conditional update, so two
//! concurrent uses cannot both succeed.

use shared::TenantId;
use sqlx::{Any, Executor, FromRow};

use super::StoreResult;

#[derive(Clone, Debug, FromRow)]
pub struct PendingRequest {
    pub id: String,
    pub client_id: String,
    pub request: String,
    pub device_digest: Vec<u8>,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
}

pub async fn insert_request<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    pending: &PendingRequest,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO authorization_requests (tenant_id, id, client_id, request, device_digest, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.as_str())
    .bind(&pending.id)
    .bind(&pending.client_id)
    .bind(&pending.request)
    .bind(&pending.device_digest)
    .bind(now)
    .bind(pending.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_request<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<PendingRequest>> {
    let row = sqlx::query_as::<_, PendingRequest>(
        "SELECT id, client_id, request, device_digest, expires_at, completed_at \
         FROM authorization_requests WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Marks a request completed; false when it already was.
pub async fn complete_request<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    id: &str,
    now: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE authorization_requests SET completed_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND completed_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn insert_link<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    link_digest: &[u8],
    request_id: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO login_links (tenant_id, link_digest, request_id, user_id, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.as_str())
    .bind(link_digest)
    .bind(request_id)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, FromRow)]
pub struct Link {
    pub request_id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn get_link<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    link_digest: &[u8],
) -> StoreResult<Option<Link>> {
    let row = sqlx::query_as::<_, Link>(
        "SELECT request_id, user_id, expires_at, used_at FROM login_links \
         WHERE tenant_id = $1 AND link_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(link_digest)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Uses a link once: true for the one caller that consumed it before it expired.
pub async fn consume_link<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    link_digest: &[u8],
    now: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE login_links SET used_at = $3 WHERE tenant_id = $1 AND link_digest = $2 \
         AND used_at IS NULL AND expires_at > $3",
    )
    .bind(tenant.as_str())
    .bind(link_digest)
    .bind(now)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[derive(Clone, Debug, FromRow)]
pub struct Code {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub resources: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    pub access_token_jti: Option<String>,
    pub access_token_exp: Option<i64>,
}

pub async fn insert_code<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    code_digest: &[u8],
    code: &Code,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO authorization_codes (tenant_id, code_digest, client_id, user_id, \
         redirect_uri, scope, resources, nonce, code_challenge, auth_time, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant.as_str())
    .bind(code_digest)
    .bind(&code.client_id)
    .bind(&code.user_id)
    .bind(&code.redirect_uri)
    .bind(&code.scope)
    .bind(&code.resources)
    .bind(code.nonce.as_deref())
    .bind(code.code_challenge.as_deref())
    .bind(code.auth_time)
    .bind(now)
    .bind(code.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_code<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    code_digest: &[u8],
) -> StoreResult<Option<Code>> {
    let row = sqlx::query_as::<_, Code>(
        "SELECT client_id, user_id, redirect_uri, scope, resources, nonce, code_challenge, \
         auth_time, expires_at, redeemed_at, access_token_jti, access_token_exp \
         FROM authorization_codes WHERE tenant_id = $1 AND code_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(code_digest)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Redeems a code once, recording the access token it yields; false when it was redeemed
/// before (a replay) or has expired.
pub async fn redeem_code<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    code_digest: &[u8],
    jti: &str,
    token_exp: i64,
    now: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE authorization_codes SET redeemed_at = $3, access_token_jti = $4, \
         access_token_exp = $5 WHERE tenant_id = $1 AND code_digest = $2 \
         AND redeemed_at IS NULL AND expires_at > $3",
    )
    .bind(tenant.as_str())
    .bind(code_digest)
    .bind(now)
    .bind(jti)
    .bind(token_exp)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}
