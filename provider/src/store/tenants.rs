//! The `tenants` table: one row per issuer, with its admin secret's digest.

use shared::TenantId;
use sqlx::{Any, Executor, FromRow};

use super::{StoreError, StoreResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    pub allowed_email_domains: Vec<String>,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl: i64,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_ttl: i64,
    /// How long a key signs before scheduled rotation replaces it; 0 turns rotation off.
    pub key_rotation_secs: i64,
    /// Whether unknown addresses of an allowed domain may sign in (creating their user).
    pub self_signup: bool,
    /// Whether confidential clients must use PKCE too (public clients always must).
    pub pkce_required_for_confidential: bool,
    /// Whether sign-in also needs the one-time code sent with the link.
    pub require_email_code: bool,
    /// Whether authorization requests must be pushed first (RFC 9126).
    pub require_par: bool,
    /// A refresh token unused this long expires (seconds).
    pub refresh_idle_secs: i64,
    /// A refresh family ends this long after its grant, however used (seconds).
    pub refresh_absolute_secs: i64,
    /// How long a client that lost a refresh response may retry with the same token (seconds).
    pub refresh_grace_secs: i64,
    /// Whether refresh tokens need the `offline_access` scope.
    pub require_offline_access: bool,
    /// Days audit rows are kept before the purge task removes them; 0 keeps them forever.
    pub audit_retention_days: i64,
    /// Whether token issuance is stopped (an abuse control).
    pub issuance_paused: bool,
    /// Dynamic registration: `open`, `token` or `closed`.
    pub registration_policy: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Token lifetime given to new tenants.
pub const DEFAULT_TOKEN_TTL: i64 = 600;
/// Audit retention given to new tenants, in days.
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 365;
/// Scheduled rotation period given to new tenants: 90 days.
pub const DEFAULT_KEY_ROTATION_SECS: i64 = 90 * 24 * 3600;

#[derive(FromRow)]
struct TenantRow {
    id: String,
    display_name: String,
    allowed_email_domains: String,
    access_token_ttl: i64,
    id_token_ttl: i64,
    key_rotation_secs: i64,
    self_signup: i64,
    pkce_required_for_confidential: i64,
    require_email_code: i64,
    require_par: i64,
    refresh_idle_secs: i64,
    refresh_absolute_secs: i64,
    refresh_grace_secs: i64,
    require_offline_access: i64,
    audit_retention_days: i64,
    issuance_paused: i64,
    registration_policy: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(row: TenantRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: TenantId::parse(&row.id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            display_name: row.display_name,
            allowed_email_domains: serde_json::from_str(&row.allowed_email_domains)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            access_token_ttl: row.access_token_ttl,
            id_token_ttl: row.id_token_ttl,
            key_rotation_secs: row.key_rotation_secs,
            self_signup: row.self_signup != 0,
            pkce_required_for_confidential: row.pkce_required_for_confidential != 0,
            require_email_code: row.require_email_code != 0,
            require_par: row.require_par != 0,
            refresh_idle_secs: row.refresh_idle_secs,
            refresh_absolute_secs: row.refresh_absolute_secs,
            refresh_grace_secs: row.refresh_grace_secs,
            require_offline_access: row.require_offline_access != 0,
            audit_retention_days: row.audit_retention_days,
            issuance_paused: row.issuance_paused != 0,
            registration_policy: row.registration_policy,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "id, display_name, allowed_email_domains, access_token_ttl, id_token_ttl, \
                       key_rotation_secs, self_signup, pkce_required_for_confidential, \
                       require_email_code, require_par, refresh_idle_secs, \
                       refresh_absolute_secs, refresh_grace_secs, require_offline_access, \
                       audit_retention_days, issuance_paused, registration_policy, \
                       created_at, updated_at";

fn domains_json(tenant: &Tenant) -> String {
    serde_json::Value::from(tenant.allowed_email_domains.clone()).to_string()
}

/// Inserts a tenant; `StoreError::Conflict` when the id is taken.
pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    admin_secret_digest: &[u8],
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tenants (id, display_name, allowed_email_domains, admin_secret_digest, \
         created_at, updated_at, access_token_ttl, id_token_ttl, key_rotation_secs, self_signup, \
         pkce_required_for_confidential, require_email_code, require_par) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(tenant.id.as_str())
    .bind(&tenant.display_name)
    .bind(domains_json(tenant))
    .bind(admin_secret_digest)
    .bind(tenant.created_at)
    .bind(tenant.updated_at)
    .bind(tenant.access_token_ttl)
    .bind(tenant.id_token_ttl)
    .bind(tenant.key_rotation_secs)
    .bind(i64::from(tenant.self_signup))
    .bind(i64::from(tenant.pkce_required_for_confidential))
    .bind(i64::from(tenant.require_email_code))
    .bind(i64::from(tenant.require_par))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
) -> StoreResult<Option<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
    sqlx::query_as::<_, TenantRow>(&sql)
        .bind(tenant.as_str())
        .fetch_optional(db)
        .await?
        .map(Tenant::try_from)
        .transpose()
}

/// The tenant with its admin secret's digest, in one read, for admin authentication.
pub async fn get_with_admin_digest<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
) -> StoreResult<Option<(Tenant, Vec<u8>)>> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        tenant: TenantRow,
        admin_secret_digest: Vec<u8>,
    }
    let sql = format!("SELECT {COLUMNS}, admin_secret_digest FROM tenants WHERE id = $1");
    sqlx::query_as::<_, Row>(&sql)
        .bind(tenant.as_str())
        .fetch_optional(db)
        .await?
        .map(|row| Ok((Tenant::try_from(row.tenant)?, row.admin_secret_digest)))
        .transpose()
}

/// Tenants in id order, after the `after` cursor.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id > $1 ORDER BY id LIMIT $2");
    sqlx::query_as::<_, TenantRow>(&sql)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(Tenant::try_from)
        .collect()
}

/// Writes the tenant's display name and email domains; `NotFound` when it does not exist.
pub async fn update<'e>(db: impl Executor<'e, Database = Any>, tenant: &Tenant) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE tenants SET display_name = $2, allowed_email_domains = $3, updated_at = $4, \
         access_token_ttl = $5, id_token_ttl = $6, key_rotation_secs = $7, self_signup = $8, \
         pkce_required_for_confidential = $9, require_email_code = $10, \
         require_par = $11, refresh_idle_secs = $12, refresh_absolute_secs = $13, \
         refresh_grace_secs = $14, require_offline_access = $15, \
         audit_retention_days = $16, issuance_paused = $17 WHERE id = $1",
    )
    .bind(tenant.id.as_str())
    .bind(&tenant.display_name)
    .bind(domains_json(tenant))
    .bind(tenant.updated_at)
    .bind(tenant.access_token_ttl)
    .bind(tenant.id_token_ttl)
    .bind(tenant.key_rotation_secs)
    .bind(i64::from(tenant.self_signup))
    .bind(i64::from(tenant.pkce_required_for_confidential))
    .bind(i64::from(tenant.require_email_code))
    .bind(i64::from(tenant.require_par))
    .bind(tenant.refresh_idle_secs)
    .bind(tenant.refresh_absolute_secs)
    .bind(tenant.refresh_grace_secs)
    .bind(i64::from(tenant.require_offline_access))
    .bind(tenant.audit_retention_days)
    .bind(i64::from(tenant.issuance_paused))
    .execute(db)
    .await?;
    found(result.rows_affected())
}

pub async fn set_admin_secret_digest<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    digest: &[u8],
    now: i64,
) -> StoreResult<()> {
    let result =
        sqlx::query("UPDATE tenants SET admin_secret_digest = $2, updated_at = $3 WHERE id = $1")
            .bind(tenant.as_str())
            .bind(digest)
            .bind(now)
            .execute(db)
            .await?;
    found(result.rows_affected())
}

/// `NotFound` when an update touched no row.
pub(crate) fn found(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Every tenant with scheduled rotation on, and its period: the rotation task's work list.
pub async fn rotation_schedule<'e>(
    db: impl Executor<'e, Database = Any>,
) -> StoreResult<Vec<(TenantId, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, key_rotation_secs FROM tenants WHERE key_rotation_secs > 0 ORDER BY id",
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(id, period)| {
            TenantId::parse(&id)
                .map(|id| (id, period))
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect()
}

/// The tenant's registration policy (`open`, `token` or `closed`) and its initial access
/// token's digest.
pub async fn registration<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
) -> StoreResult<Option<(String, Option<Vec<u8>>)>> {
    let row = sqlx::query_as(
        "SELECT registration_policy, registration_token_digest FROM tenants WHERE id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn set_registration<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    policy: &str,
    token_digest: Option<&[u8]>,
) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE tenants SET registration_policy = $2, registration_token_digest = $3 WHERE id = $1",
    )
    .bind(tenant.as_str())
    .bind(policy)
    .bind(token_digest)
    .execute(db)
    .await?;
    found(result.rows_affected())
}
