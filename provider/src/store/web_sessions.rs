//! The `web_sessions` table: tower-sessions records kept in the database, keyed by the digest of
//! the session cookie.

use sqlx::{Any, Executor};

use super::StoreResult;

/// Stores a new record; false when the id is taken (the caller draws another).
pub async fn create<'e>(
    db: impl Executor<'e, Database = Any>,
    id_digest: &[u8],
    data: &str,
    expires_at: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "INSERT INTO web_sessions (id_digest, data, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id_digest) DO NOTHING",
    )
    .bind(id_digest)
    .bind(data)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn save<'e>(
    db: impl Executor<'e, Database = Any>,
    id_digest: &[u8],
    data: &str,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO web_sessions (id_digest, data, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id_digest) DO UPDATE SET data = excluded.data, \
         expires_at = excluded.expires_at",
    )
    .bind(id_digest)
    .bind(data)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The record's data, unless it is missing or expired.
pub async fn load<'e>(
    db: impl Executor<'e, Database = Any>,
    id_digest: &[u8],
    now: i64,
) -> StoreResult<Option<String>> {
    let data = sqlx::query_scalar::<_, String>(
        "SELECT data FROM web_sessions WHERE id_digest = $1 AND expires_at > $2",
    )
    .bind(id_digest)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(data)
}

pub async fn delete<'e>(
    db: impl Executor<'e, Database = Any>,
    id_digest: &[u8],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM web_sessions WHERE id_digest = $1")
        .bind(id_digest)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes expired records; returns how many.
pub async fn purge_expired<'e>(
    db: impl Executor<'e, Database = Any>,
    now: i64,
) -> StoreResult<u64> {
    let result = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(db)
        .await?;
    Ok(result.rows_affected())
}
