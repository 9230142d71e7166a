//! Pending authorization requests, magic links and authorization codes. Link tokens and codes
//! are looked up by their keyed digest; consuming either is one conditional update, so two
//! concurrent uses cannot both succeed.

use std::sync::LazyLock;

use futures_util::future::BoxFuture;
use shared::TenantId;
use sqlx::{Any, AnyConnection, Executor, FromRow};

use super::{
    StoreResult,
    audit::{self, AuditRow},
    group_commit::{AnyQuery, Chain, Write, first_applied, run_chain},
    refresh::NewFamily,
    users::UserStatus,
};

#[derive(Clone, Debug, FromRow)]
pub struct PendingRequest {
    pub id: String,
    pub client_id: String,
    pub request: String,
    pub device_digest: Vec<u8>,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    /// Who signed in, once someone has; the request then waits only for consent.
    pub user_id: Option<String>,
    pub auth_time: Option<i64>,
    /// The browser session the person signed in with.
    pub session_digest: Option<Vec<u8>>,
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
        "SELECT id, client_id, request, device_digest, expires_at, completed_at, user_id, \
         auth_time, session_digest FROM authorization_requests WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Records who signed in for a request; false when someone already had.
pub async fn authenticate_request<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    id: &str,
    user_id: &str,
    auth_time: i64,
    session_digest: &[u8],
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE authorization_requests SET user_id = $3, auth_time = $4, session_digest = $5 \
         WHERE tenant_id = $1 AND id = $2 AND completed_at IS NULL AND user_id IS NULL",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(user_id)
    .bind(auth_time)
    .bind(session_digest)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
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

#[allow(clippy::too_many_arguments)]
pub async fn insert_link<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    link_digest: &[u8],
    request_id: &str,
    user_id: &str,
    email_code_digest: Option<&[u8]>,
    requested_ip: Option<&str>,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO login_links (tenant_id, link_digest, request_id, user_id, email_code_digest, \
         requested_ip, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant.as_str())
    .bind(link_digest)
    .bind(request_id)
    .bind(user_id)
    .bind(email_code_digest)
    .bind(requested_ip)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// How many links a user was sent since `since`.
pub async fn links_since<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    user_id: &str,
    since: i64,
) -> StoreResult<i64> {
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_links WHERE tenant_id = $1 AND user_id = $2 AND created_at > $3",
    )
    .bind(tenant.as_str())
    .bind(user_id)
    .bind(since)
    .fetch_one(db)
    .await?;
    Ok(count)
}

/// How many links were sent at the request of `ip` since `since`.
pub async fn links_from_ip_since<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    ip: &str,
    since: i64,
) -> StoreResult<i64> {
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_links WHERE tenant_id = $1 AND requested_ip = $2 \
         AND created_at > $3",
    )
    .bind(tenant.as_str())
    .bind(ip)
    .bind(since)
    .fetch_one(db)
    .await?;
    Ok(count)
}

#[derive(Clone, Debug, FromRow)]
pub struct Link {
    pub link_digest: Vec<u8>,
    pub request_id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub handoff_digest: Option<Vec<u8>>,
    pub handoff_expires_at: Option<i64>,
    pub email_code_digest: Option<Vec<u8>>,
    pub code_attempts: i64,
}

const LINK_COLUMNS: &str = "link_digest, request_id, user_id, expires_at, used_at, handoff_digest, \
                            handoff_expires_at, email_code_digest, code_attempts";

/// Live links of a request that were opened in another browser, for the code typed here.
pub async fn handoff_links<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    request_id: &str,
    now: i64,
) -> StoreResult<Vec<Link>> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM login_links WHERE tenant_id = $1 AND request_id = $2 \
         AND used_at IS NULL AND expires_at > $3 AND handoff_digest IS NOT NULL \
         AND handoff_expires_at > $3"
    );
    let rows = sqlx::query_as::<_, Link>(&sql)
        .bind(tenant.as_str())
        .bind(request_id)
        .bind(now)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// Sets the code shown when the link is opened in another browser.
pub async fn set_handoff<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    link_digest: &[u8],
    handoff_digest: &[u8],
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE login_links SET handoff_digest = $3, handoff_expires_at = $4 \
         WHERE tenant_id = $1 AND link_digest = $2 AND used_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(link_digest)
    .bind(handoff_digest)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Counts a wrong code; the fifth voids the link. Returns the attempts so far.
pub async fn wrong_code<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    link_digest: &[u8],
    now: i64,
    max_attempts: i64,
) -> StoreResult<i64> {
    let attempts: Option<i64> = sqlx::query_scalar(
        "UPDATE login_links SET code_attempts = code_attempts + 1, \
         used_at = CASE WHEN code_attempts + 1 >= $4 THEN $3 ELSE used_at END \
         WHERE tenant_id = $1 AND link_digest = $2 RETURNING code_attempts",
    )
    .bind(tenant.as_str())
    .bind(link_digest)
    .bind(now)
    .bind(max_attempts)
    .fetch_optional(db)
    .await?;
    Ok(attempts.unwrap_or(max_attempts))
}

pub async fn get_link<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    link_digest: &[u8],
) -> StoreResult<Option<Link>> {
    let sql =
        format!("SELECT {LINK_COLUMNS} FROM login_links WHERE tenant_id = $1 AND link_digest = $2");
    let row = sqlx::query_as::<_, Link>(&sql)
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
    pub session_digest: Option<Vec<u8>>,
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
         redirect_uri, scope, resources, nonce, code_challenge, auth_time, created_at, expires_at, \
         session_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .bind(code.session_digest.as_deref())
    .execute(db)
    .await?;
    Ok(())
}

/// A code presented for exchange, with what its tokens say of the person it was issued to.
#[derive(Debug)]
pub struct Presented {
    pub code: Code,
    /// `None` when the user is gone or may no longer sign in.
    pub holder: Option<Holder>,
}

#[derive(Debug)]
pub struct Holder {
    pub email: String,
    pub name: Option<String>,
}

#[derive(FromRow)]
struct PresentedRow {
    #[sqlx(flatten)]
    code: Code,
    holder_email: Option<String>,
    holder_name: Option<String>,
}

/// The code and its active user in one query: the exchange's one read before its write.
pub async fn get_presented_code<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    code_digest: &[u8],
) -> StoreResult<Option<Presented>> {
    let row = sqlx::query_as::<_, PresentedRow>(
        "SELECT c.client_id, c.user_id, c.redirect_uri, c.scope, c.resources, c.nonce, \
         c.code_challenge, c.auth_time, c.expires_at, c.redeemed_at, c.access_token_jti, \
         c.access_token_exp, c.session_digest, u.email AS holder_email, u.name AS holder_name \
         FROM authorization_codes c \
         LEFT JOIN users u ON u.tenant_id = c.tenant_id AND u.user_id = c.user_id \
         AND u.status = $3 \
         WHERE c.tenant_id = $1 AND c.code_digest = $2",
    )
    .bind(tenant.as_str())
    .bind(code_digest)
    .bind(UserStatus::Active.as_str())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Presented {
        code: row.code,
        holder: row.holder_email.map(|email| Holder {
            email,
            name: row.holder_name,
        }),
    }))
}

/// One code exchange, all or nothing: the code is redeemed, the refresh family it starts (if
/// any) written and the audit row with them. Its output is false, with nothing written, when
/// the code was redeemed meanwhile or has expired.
#[derive(Clone, Debug)]
pub struct Redemption {
    pub tenant: TenantId,
    pub code_digest: Vec<u8>,
    pub access_jti: String,
    pub access_expires_at: i64,
    pub now: i64,
    pub family: Option<NewFamily>,
    pub audit: AuditRow,
}

/// A redemption on SQLite as one request to the connection's thread (see
/// `refresh::ROTATE_ON_SQLITE`): every insert runs only if the statement before it changed a
/// row, so a code redeemed meanwhile writes nothing. The family's statements go between the
/// redemption and the audit row when the grant starts one.
const REDEEM_ON_SQLITE: &str = "\
    UPDATE authorization_codes SET redeemed_at = $3, access_token_jti = $4, \
        access_token_exp = $5 WHERE tenant_id = $1 AND code_digest = $2 \
        AND redeemed_at IS NULL AND expires_at > $3;";
const START_FAMILY_ON_SQLITE: &str = "\
    INSERT INTO refresh_families (tenant_id, id, client_id, user_id, scope, resources, \
        auth_time, created_at, expires_at, session_digest, dpop_jkt) \
        SELECT $1, $15, $16, $17, $18, $19, $20, $26, $21, $22, $23 WHERE changes() = 1; \
    INSERT INTO family_access_tokens (tenant_id, family_id, jti, expires_at) \
        SELECT $1, $15, $4, $5 WHERE changes() = 1; \
    INSERT INTO refresh_tokens (tenant_id, token_digest, family_id, generation, created_at, \
        expires_at) SELECT $1, $24, $15, 0, $26, $25 WHERE changes() = 1;";
/// The audit row's nine parameters start here; the family's follow them.
const AUDIT_ROW: usize = 6;
/// The parameters of a redemption without a family and with one.
const PARAMETERS: usize = 14;
const PARAMETERS_STARTING_FAMILY: usize = 26;

/// A redemption on PostgreSQL as one statement (see `Chain::postgres_sql`): every insert takes
/// its row from `redeemed`, so a code redeemed meanwhile writes nothing. The same parameters as
/// on SQLite.
const REDEEM_ON_POSTGRES: &str = "\
    WITH redeemed AS (UPDATE authorization_codes SET redeemed_at = $3, access_token_jti = $4, \
        access_token_exp = $5 WHERE tenant_id = $1 AND code_digest = $2 \
        AND redeemed_at IS NULL AND expires_at > $3 RETURNING 1)";
const START_FAMILY_ON_POSTGRES: &str = ", \
    family AS (INSERT INTO refresh_families (tenant_id, id, client_id, user_id, scope, \
        resources, auth_time, created_at, expires_at, session_digest, dpop_jkt) \
        SELECT $1, $15, $16, $17, $18, $19, $20, $26, $21, $22, $23 FROM redeemed), \
    access AS (INSERT INTO family_access_tokens (tenant_id, family_id, jti, expires_at) \
        SELECT $1, $15, $4, $5 FROM redeemed), \
    token AS (INSERT INTO refresh_tokens (tenant_id, token_digest, family_id, generation, \
        created_at, expires_at) SELECT $1, $24, $15, 0, $26, $25 FROM redeemed)";
const AUDIT_ON_POSTGRES: &str = " \
    INSERT INTO audit_events (tenant_id, occurred_at_ms, event, client_id, user_id, ip, \
        user_agent, request_id, details) \
        SELECT $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM redeemed";

/// The redemption chains, with and without a family, with the audit row sealed as written
/// (`Chain::sealed_sql`) or not.
static REDEEM: LazyLock<String> =
    LazyLock::new(|| [REDEEM_ON_SQLITE, &audit::guarded_insert_sql(AUDIT_ROW)].concat());
static REDEEM_STARTING_FAMILY: LazyLock<String> = LazyLock::new(|| {
    [
        REDEEM_ON_SQLITE,
        START_FAMILY_ON_SQLITE,
        &audit::guarded_insert_sql(AUDIT_ROW),
    ]
    .concat()
});
static REDEEM_SEALED: LazyLock<String> = LazyLock::new(|| {
    [
        REDEEM_ON_SQLITE,
        &audit::sealed_insert_sql(AUDIT_ROW, PARAMETERS + 1),
    ]
    .concat()
});
static REDEEM_STARTING_FAMILY_SEALED: LazyLock<String> = LazyLock::new(|| {
    [
        REDEEM_ON_SQLITE,
        START_FAMILY_ON_SQLITE,
        &audit::sealed_insert_sql(AUDIT_ROW, PARAMETERS_STARTING_FAMILY + 1),
    ]
    .concat()
});
/// The redemption statements on PostgreSQL, with and without a family.
static REDEEM_STATEMENT: LazyLock<String> =
    LazyLock::new(|| [REDEEM_ON_POSTGRES, AUDIT_ON_POSTGRES].concat());
static REDEEM_STATEMENT_STARTING_FAMILY: LazyLock<String> = LazyLock::new(|| {
    [
        REDEEM_ON_POSTGRES,
        START_FAMILY_ON_POSTGRES,
        AUDIT_ON_POSTGRES,
    ]
    .concat()
});

impl Chain for Redemption {
    type Output = bool;

    fn sql(&self) -> &'static str {
        if self.family.is_some() {
            &REDEEM_STARTING_FAMILY
        } else {
            &REDEEM
        }
    }

    fn sealed_sql(&self) -> Option<&'static str> {
        Some(if self.family.is_some() {
            &REDEEM_STARTING_FAMILY_SEALED
        } else {
            &REDEEM_SEALED
        })
    }

    fn audit_row(&self) -> Option<&AuditRow> {
        Some(&self.audit)
    }

    fn postgres_sql(&self) -> Option<&'static str> {
        Some(if self.family.is_some() {
            &REDEEM_STATEMENT_STARTING_FAMILY
        } else {
            &REDEEM_STATEMENT
        })
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let query = query
            .bind(self.tenant.as_str())
            .bind(&self.code_digest)
            .bind(self.now)
            .bind(&self.access_jti)
            .bind(self.access_expires_at);
        let query = audit::bind(query, &self.audit);
        let Some(new) = &self.family else {
            return query;
        };
        let family = &new.family;
        query
            .bind(&family.id)
            .bind(&family.client_id)
            .bind(&family.user_id)
            .bind(&family.scope)
            .bind(&family.resources)
            .bind(family.auth_time)
            .bind(family.expires_at)
            .bind(family.session_digest.as_deref())
            .bind(family.dpop_jkt.as_deref())
            .bind(&new.token_digest)
            .bind(new.token_expires_at)
            .bind(new.now)
    }

    fn output(&self, changes: &[u64]) -> bool {
        first_applied(changes)
    }
}

impl Write for Redemption {
    type Output = bool;

    fn run<'c>(&'c self, conn: &'c mut AnyConnection) -> BoxFuture<'c, StoreResult<bool>> {
        Box::pin(run_chain(conn, self))
    }

    fn chain(&self) -> Option<&dyn Chain<Output = bool>> {
        Some(self)
    }
}
