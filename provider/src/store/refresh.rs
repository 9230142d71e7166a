//! Refresh token families and their tokens. Rotation is one conditional update, so of any
//! number of concurrent uses of one token exactly one rotates it.

use std::sync::LazyLock;

use futures_util::future::BoxFuture;
use shared::TenantId;
use sqlx::{Any, AnyConnection, Executor, FromRow};

use super::{
    StoreResult, Tx,
    audit::{self, AuditRow},
    group_commit::{AnyQuery, Chain, Write, first_applied, run_chain},
    users::UserStatus,
};

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

#[derive(Clone, Debug, FromRow)]
pub struct RefreshToken {
    pub family_id: String,
    pub generation: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    /// The token that replaced this one, once rotated.
    pub successor_digest: Option<Vec<u8>>,
}

/// A refresh token to store: the first of a family or the successor of a rotated one.
#[derive(Clone, Copy, Debug)]
pub struct NewToken<'a> {
    pub digest: &'a [u8],
    pub family_id: &'a str,
    pub generation: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// The sealed response that issued it, for a retry of its predecessor.
    pub issued_response: Option<&'a [u8]>,
}

pub async fn insert_token<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    token: &NewToken<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (tenant_id, token_digest, family_id, generation, created_at, \
         expires_at, issued_response) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.as_str())
    .bind(token.digest)
    .bind(token.family_id)
    .bind(token.generation)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.issued_response)
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
        "SELECT family_id, generation, expires_at, rotated_at, successor_digest FROM refresh_tokens \
         WHERE tenant_id = $1 AND token_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// A presented token with its family, read together (the refresh grant, introspection and
/// revocation all need both).
#[derive(Clone, Debug)]
pub struct Presented {
    pub token: RefreshToken,
    pub family: Family,
    /// Whether the family's user may still sign in.
    pub user_active: bool,
}

#[derive(FromRow)]
struct PresentedRow {
    generation: i64,
    token_expires_at: i64,
    rotated_at: Option<i64>,
    successor_digest: Option<Vec<u8>>,
    user_status: Option<String>,
    #[sqlx(flatten)]
    family: Family,
}

pub async fn get_presented<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    digest: &[u8],
) -> StoreResult<Option<Presented>> {
    let row = sqlx::query_as::<_, PresentedRow>(
        "SELECT t.generation, t.expires_at AS token_expires_at, t.rotated_at, t.successor_digest, \
         u.status AS user_status, f.id, f.client_id, f.user_id, f.scope, f.resources, \
         f.auth_time, f.expires_at, f.revoked_at, f.session_digest, f.dpop_jkt \
         FROM refresh_tokens t \
         JOIN refresh_families f ON f.tenant_id = t.tenant_id AND f.id = t.family_id \
         LEFT JOIN users u ON u.tenant_id = f.tenant_id AND u.user_id = f.user_id \
         WHERE t.tenant_id = $1 AND t.token_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Presented {
        token: RefreshToken {
            family_id: row.family.id.clone(),
            generation: row.generation,
            expires_at: row.token_expires_at,
            rotated_at: row.rotated_at,
            successor_digest: row.successor_digest,
        },
        user_active: row.user_status.as_deref() == Some(UserStatus::Active.as_str()),
        family: row.family,
    }))
}

/// The sealed response that issued a token, while that token is the newest of its family (not
/// rotated itself): what a retry of its predecessor gets again.
pub async fn newest_issued_response<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    digest: &[u8],
) -> StoreResult<Option<Vec<u8>>> {
    let response: Option<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT issued_response FROM refresh_tokens \
         WHERE tenant_id = $1 AND token_digest = $2 AND rotated_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .fetch_optional(db)
    .await?;
    Ok(response.flatten())
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

/// A family's first rows: the family, the access token issued with it and its first refresh
/// token, written with the grant that starts it.
#[derive(Clone, Debug)]
pub struct NewFamily {
    pub family: Family,
    pub access_jti: String,
    pub access_expires_at: i64,
    pub token_digest: Vec<u8>,
    pub token_expires_at: i64,
    pub now: i64,
}

/// One rotation, all or nothing: the presented token is marked rotated, its successor stored
/// with the sealed response (for a retry), the new access token recorded and the audit row
/// written. Its output is false, with nothing written, when another use rotated the token
/// first.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub tenant: TenantId,
    pub digest: Vec<u8>,
    pub now: i64,
    pub sealed_response: Vec<u8>,
    pub family_id: String,
    pub successor_digest: Vec<u8>,
    pub successor_generation: i64,
    pub successor_expires_at: i64,
    pub access_jti: String,
    pub access_expires_at: i64,
    pub audit: AuditRow,
}

/// A rotation on SQLite as one request to the connection's thread (each statement a round
/// trip to it costs more than the statement): each insert runs only if the statement before it
/// changed a row, so a lost race writes nothing. The audit row (`$11`…`$19`) comes last.
const ROTATE_ON_SQLITE: &str = "\
    UPDATE refresh_tokens SET rotated_at = $3, successor_digest = $5 \
        WHERE tenant_id = $1 AND token_digest = $2 AND rotated_at IS NULL; \
    INSERT INTO refresh_tokens (tenant_id, token_digest, family_id, generation, created_at, \
        expires_at, issued_response) SELECT $1, $5, $6, $7, $3, $8, $4 WHERE changes() = 1; \
    INSERT INTO family_access_tokens (tenant_id, family_id, jti, expires_at) \
        SELECT $1, $6, $9, $10 WHERE changes() = 1;";
const AUDIT_ROW: usize = 11;
const PARAMETERS: usize = 19;
static ROTATE: LazyLock<String> =
    LazyLock::new(|| [ROTATE_ON_SQLITE, &audit::guarded_insert_sql(AUDIT_ROW)].concat());
static ROTATE_SEALED: LazyLock<String> = LazyLock::new(|| {
    [
        ROTATE_ON_SQLITE,
        &audit::sealed_insert_sql(AUDIT_ROW, PARAMETERS + 1),
    ]
    .concat()
});

/// A rotation on PostgreSQL as one statement (see `Chain::postgres_sql`): each insert takes its
/// row from `rotated`, so a lost race writes nothing. The same parameters as on SQLite.
const ROTATE_ON_POSTGRES: &str = "\
    WITH rotated AS (UPDATE refresh_tokens SET rotated_at = $3, successor_digest = $5 \
        WHERE tenant_id = $1 AND token_digest = $2 AND rotated_at IS NULL RETURNING 1), \
    successor AS (INSERT INTO refresh_tokens (tenant_id, token_digest, family_id, \
        generation, created_at, expires_at, issued_response) \
        SELECT $1, $5, $6, $7, $3, $8, $4 FROM rotated), \
    access AS (INSERT INTO family_access_tokens (tenant_id, family_id, jti, expires_at) \
        SELECT $1, $6, $9, $10 FROM rotated) \
    INSERT INTO audit_events (tenant_id, occurred_at_ms, event, client_id, user_id, ip, \
        user_agent, request_id, details) \
        SELECT $11, $12, $13, $14, $15, $16, $17, $18, $19 FROM rotated";

impl Chain for Rotation {
    type Output = bool;

    fn sql(&self) -> &'static str {
        &ROTATE
    }

    fn sealed_sql(&self) -> Option<&'static str> {
        Some(&ROTATE_SEALED)
    }

    fn audit_row(&self) -> Option<&AuditRow> {
        Some(&self.audit)
    }

    fn postgres_sql(&self) -> Option<&'static str> {
        Some(ROTATE_ON_POSTGRES)
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let query = query
            .bind(self.tenant.as_str())
            .bind(&self.digest)
            .bind(self.now)
            .bind(&self.sealed_response)
            .bind(&self.successor_digest)
            .bind(&self.family_id)
            .bind(self.successor_generation)
            .bind(self.successor_expires_at)
            .bind(&self.access_jti)
            .bind(self.access_expires_at);
        audit::bind(query, &self.audit)
    }

    fn output(&self, changes: &[u64]) -> bool {
        first_applied(changes)
    }
}

impl Write for Rotation {
    type Output = bool;

    fn run<'c>(&'c self, conn: &'c mut AnyConnection) -> BoxFuture<'c, StoreResult<bool>> {
        Box::pin(run_chain(conn, self))
    }

    fn chain(&self) -> Option<&dyn Chain<Output = bool>> {
        Some(self)
    }
}
