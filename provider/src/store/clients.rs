//! The `clients` table: RFC 7591 metadata, the secret's keyed digest, and the client's status.

use shared::TenantId;
use sqlx::{Any, Executor, FromRow};

use super::{StoreError, StoreResult, tenants::found};
use crate::oauth::client_metadata::ClientMetadata;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientStatus {
    Active,
    Suspended,
    Revoked,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    pub client_id: String,
    pub secret_digest: Option<Vec<u8>>,
    pub metadata: ClientMetadata,
    pub status: ClientStatus,
    /// Registered by an administrator: trusted, so people are not asked to consent.
    pub first_party: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Client {
    /// Only active clients may do anything at all.
    pub fn is_active(&self) -> bool {
        self.status == ClientStatus::Active
    }
}

#[derive(FromRow)]
struct ClientRow {
    client_id: String,
    secret_digest: Option<Vec<u8>>,
    metadata: String,
    status: String,
    first_party: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        Ok(Self {
            metadata: serde_json::from_str(&row.metadata)
                .map_err(|e| StoreError::Corrupt(format!("client metadata: {e}")))?,
            status: ClientStatus::parse(&row.status)
                .ok_or_else(|| StoreError::Corrupt(format!("client status {}", row.status)))?,
            client_id: row.client_id,
            secret_digest: row.secret_digest,
            first_party: row.first_party != 0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str =
    "client_id, secret_digest, metadata, status, first_party, created_at, updated_at";

fn metadata_json(metadata: &ClientMetadata) -> StoreResult<String> {
    serde_json::to_string(metadata).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Inserts a client; `Conflict` when the tenant already has that client id.
pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client: &Client,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO clients (tenant_id, client_id, secret_digest, metadata, status, created_at, \
         updated_at, first_party) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant.as_str())
    .bind(&client.client_id)
    .bind(client.secret_digest.as_deref())
    .bind(metadata_json(&client.metadata)?)
    .bind(client.status.as_str())
    .bind(client.created_at)
    .bind(client.updated_at)
    .bind(i64::from(client.first_party))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client_id: &str,
) -> StoreResult<Option<Client>> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE tenant_id = $1 AND client_id = $2");
    sqlx::query_as::<_, ClientRow>(&sql)
        .bind(tenant.as_str())
        .bind(client_id)
        .fetch_optional(db)
        .await?
        .map(Client::try_from)
        .transpose()
}

/// The tenant's clients in client id order, after the `after` cursor.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<Client>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM clients WHERE tenant_id = $1 AND client_id > $2 \
         ORDER BY client_id LIMIT $3"
    );
    sqlx::query_as::<_, ClientRow>(&sql)
        .bind(tenant.as_str())
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

/// Replaces a client's metadata and secret digest (the digest follows the auth method: a client
/// that becomes public loses its secret); `NotFound` when absent.
pub async fn update_metadata<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client: &Client,
) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE clients SET metadata = $3, secret_digest = $4, updated_at = $5 \
         WHERE tenant_id = $1 AND client_id = $2",
    )
    .bind(tenant.as_str())
    .bind(&client.client_id)
    .bind(metadata_json(&client.metadata)?)
    .bind(client.secret_digest.as_deref())
    .bind(client.updated_at)
    .execute(db)
    .await?;
    found(result.rows_affected())
}

/// Moves a client from `from` to `to`; `NotFound` when it is absent or no longer in `from`,
/// so two concurrent changes cannot both apply.
pub async fn set_status<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client_id: &str,
    from: ClientStatus,
    to: ClientStatus,
    now: i64,
) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE clients SET status = $4, updated_at = $5 \
         WHERE tenant_id = $1 AND client_id = $2 AND status = $3",
    )
    .bind(tenant.as_str())
    .bind(client_id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now)
    .execute(db)
    .await?;
    found(result.rows_affected())
}

pub async fn set_secret_digest<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client_id: &str,
    digest: &[u8],
    now: i64,
) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE clients SET secret_digest = $3, updated_at = $4 \
         WHERE tenant_id = $1 AND client_id = $2",
    )
    .bind(tenant.as_str())
    .bind(client_id)
    .bind(digest)
    .bind(now)
    .execute(db)
    .await?;
    found(result.rows_affected())
}

/// Sets the digest of the client's RFC 7592 registration access token.
pub async fn set_registration_token_digest<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client_id: &str,
    digest: &[u8],
) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE clients SET registration_token_digest = $3 WHERE tenant_id = $1 AND client_id = $2",
    )
    .bind(tenant.as_str())
    .bind(client_id)
    .bind(digest)
    .execute(db)
    .await?;
    found(result.rows_affected())
}

/// The digest of the client's registration access token, if it registered itself.
pub async fn registration_token_digest<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    client_id: &str,
) -> StoreResult<Option<Vec<u8>>> {
    let digest: Option<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT registration_token_digest FROM clients WHERE tenant_id = $1 AND client_id = $2",
    )
    .bind(tenant.as_str())
    .bind(client_id)
    .fetch_optional(db)
    .await?;
    Ok(digest.flatten())
}
