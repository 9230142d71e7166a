//! The mail outbox: messages are written in the transaction that decides to send them and sent
//! by a background task, so a restart loses no mail and a slow SMTP server never slows a page.
//! Several replicas may run the sender: a message is claimed by moving its next attempt forward
//! in one conditional update before it is sent.

use sqlx::{Any, Executor, FromRow};

use super::StoreResult;

#[derive(Clone, Debug, FromRow)]
pub struct Queued {
    pub id: i64,
    pub tenant_id: String,
    pub recipient: String,
    pub sealed: Vec<u8>,
    pub attempts: i64,
}

pub async fn enqueue<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    recipient: &str,
    sealed: &[u8],
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mail_outbox (tenant_id, recipient, sealed, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(tenant_id)
    .bind(recipient)
    .bind(sealed)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Messages due for an attempt, oldest first.
pub async fn due<'e>(
    db: impl Executor<'e, Database = Any>,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<Queued>> {
    let rows = sqlx::query_as::<_, Queued>(
        "SELECT id, tenant_id, recipient, sealed, attempts FROM mail_outbox \
         WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Claims a message for this sender until `lease_until`; false when another sender has it.
pub async fn claim<'e>(
    db: impl Executor<'e, Database = Any>,
    id: i64,
    now: i64,
    lease_until: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE mail_outbox SET next_attempt_at = $3, attempts = attempts + 1 \
         WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2",
    )
    .bind(id)
    .bind(now)
    .bind(lease_until)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks a message sent and forgets its body.
pub async fn sent<'e>(db: impl Executor<'e, Database = Any>, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE mail_outbox SET sent_at = $2, sealed = $3 WHERE id = $1")
        .bind(id)
        .bind(now)
        .bind(Vec::<u8>::new())
        .execute(db)
        .await?;
    Ok(())
}

/// Records a failed attempt: retried at `retry_at`, or given up (`retry_at` None).
pub async fn failed<'e>(
    db: impl Executor<'e, Database = Any>,
    id: i64,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE mail_outbox SET last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
         failed_at = CASE WHEN $3 IS NULL THEN $4 ELSE NULL END, \
         sealed = CASE WHEN $3 IS NULL THEN $5 ELSE sealed END WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .bind(Vec::<u8>::new())
    .execute(db)
    .await?;
    Ok(())
}

/// Mails waiting to be sent (not sent, not given up on).
pub async fn pending_count<'e>(db: impl Executor<'e, Database = Any>) -> StoreResult<i64> {
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
    )
    .fetch_one(db)
    .await?;
    Ok(count)
}
