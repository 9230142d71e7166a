//! Removal of rows whose use is over: replay caches, revocations of expired tokens, finished
//! sign-ins, ended sessions and families, sent mail. The audit trail keeps its own retention
//! (`audit::chain` and the tenant's `audit_retention_days`).

use sqlx::{Any, Executor};

use super::StoreResult;

/// Each statement deletes rows that ended before `$1` (seconds since the epoch). Refresh tokens
/// go only with their family: a rotated token must stay findable while its family lives, so that
/// presenting it again is caught as reuse.
const STATEMENTS: [(&str, &str); 13] = [
    ("dpop_jtis", "DELETE FROM dpop_jtis WHERE expires_at < $1"),
    (
        "client_assertion_jtis",
        "DELETE FROM client_assertion_jtis WHERE expires_at < $1",
    ),
    (
        "revoked_tokens",
        "DELETE FROM revoked_tokens WHERE expires_at < $1",
    ),
    (
        "authorization_codes",
        "DELETE FROM authorization_codes WHERE expires_at < $1",
    ),
    (
        "login_links",
        "DELETE FROM login_links WHERE expires_at < $1",
    ),
    (
        "authorization_requests",
        "DELETE FROM authorization_requests WHERE expires_at < $1",
    ),
    (
        "pushed_requests",
        "DELETE FROM pushed_requests WHERE expires_at < $1",
    ),
    (
        "web_sessions",
        "DELETE FROM web_sessions WHERE expires_at < $1",
    ),
    (
        "browser_sessions",
        "DELETE FROM browser_sessions WHERE expires_at < $1 OR ended_at < $1",
    ),
    (
        "family_access_tokens",
        "DELETE FROM family_access_tokens WHERE expires_at < $1",
    ),
    (
        "refresh_tokens",
        "DELETE FROM refresh_tokens WHERE (tenant_id, family_id) IN (SELECT tenant_id, id \
         FROM refresh_families WHERE expires_at < $1 OR revoked_at < $1)",
    ),
    (
        "refresh_families",
        "DELETE FROM refresh_families WHERE expires_at < $1 OR revoked_at < $1",
    ),
    (
        "mail_outbox",
        "DELETE FROM mail_outbox WHERE sent_at < $1 OR failed_at < $1",
    ),
];

/// Deletes what ended before `before`; returns the rows removed per table.
pub async fn purge<'e, E>(db: E, before: i64) -> StoreResult<Vec<(&'static str, u64)>>
where
    E: Executor<'e, Database = Any> + Copy,
{
    let mut removed = Vec::new();
    for (table, sql) in STATEMENTS {
        let result = sqlx::query(sql).bind(before).execute(db).await?;
        if result.rows_affected() > 0 {
            removed.push((table, result.rows_affected()));
        }
    }
    Ok(removed)
}
