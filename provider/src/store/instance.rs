//! Instance-wide secrets: the sealed digest key and the generated root admin secret's digest.

use sqlx::{Any, Executor};

use super::StoreResult;

pub const DIGEST_KEY: &str = "secret-digest-key";
pub const ROOT_ADMIN_DIGEST: &str = "root-admin-digest";

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    name: &str,
) -> StoreResult<Option<Vec<u8>>> {
    let value = sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await?;
    Ok(value)
}

/// Stores `value` under `name` unless a value is already there; true when this call stored it.
/// Replicas starting together race here, and exactly one of them wins.
pub async fn insert_if_absent<'e>(
    db: impl Executor<'e, Database = Any>,
    name: &str,
    value: &[u8],
    now: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "INSERT INTO instance_secrets (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(value)
    .bind(now)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Replaces a stored value (used when rewrapping sealed values under a new key).
pub async fn set<'e>(
    db: impl Executor<'e, Database = Any>,
    name: &str,
    value: &[u8],
) -> StoreResult<()> {
    sqlx::query("UPDATE instance_secrets SET value = $2 WHERE name = $1")
        .bind(name)
        .bind(value)
        .execute(db)
        .await?;
    Ok(())
}
