//! The `users` table: people who sign in to a tenant. `user_id` is the `sub` of their tokens and
//! is never reused; emails are stored normalized and are unique per tenant.

use shared::TenantId;
use sqlx::{Any, Executor, FromRow};

use super::{StoreError, StoreResult, tenants::found};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub status: UserStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(FromRow)]
struct UserRow {
    user_id: String,
    email: String,
    name: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            status: UserStatus::parse(&row.status)
                .ok_or_else(|| StoreError::Corrupt(format!("user status {}", row.status)))?,
            user_id: row.user_id,
            email: row.email,
            name: row.name,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "user_id, email, name, status, created_at, updated_at";

/// Inserts a user; `Conflict` when the tenant already has that email.
pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    user: &User,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (tenant_id, user_id, email, name, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.as_str())
    .bind(&user.user_id)
    .bind(&user.email)
    .bind(user.name.as_deref())
    .bind(user.status.as_str())
    .bind(user.created_at)
    .bind(user.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    user_id: &str,
) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2");
    sqlx::query_as::<_, UserRow>(&sql)
        .bind(tenant.as_str())
        .bind(user_id)
        .fetch_optional(db)
        .await?
        .map(User::try_from)
        .transpose()
}

pub async fn find_by_email<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    email: &str,
) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND email = $2");
    sqlx::query_as::<_, UserRow>(&sql)
        .bind(tenant.as_str())
        .bind(email)
        .fetch_optional(db)
        .await?
        .map(User::try_from)
        .transpose()
}

/// The tenant's users in user id order, after the `after` cursor.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<User>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND user_id > $2 \
         ORDER BY user_id LIMIT $3"
    );
    sqlx::query_as::<_, UserRow>(&sql)
        .bind(tenant.as_str())
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
}

/// Writes email, name and status; `NotFound` when absent, `Conflict` when the email is taken.
pub async fn update<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    user: &User,
) -> StoreResult<()> {
    let result = sqlx::query(
        "UPDATE users SET email = $3, name = $4, status = $5, updated_at = $6 \
         WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(tenant.as_str())
    .bind(&user.user_id)
    .bind(&user.email)
    .bind(user.name.as_deref())
    .bind(user.status.as_str())
    .bind(user.updated_at)
    .execute(db)
    .await?;
    found(result.rows_affected())
}
