//! The `consents` table: what a person allowed a client, remembered per user and client.

use shared::TenantId;
use sqlx::{Any, Executor};

use super::StoreResult;

/// The scopes and resources the user granted the client, if any.
pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    user_id: &str,
    client_id: &str,
) -> StoreResult<Option<(Vec<String>, Vec<String>)>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT scopes, resources FROM consents \
         WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3",
    )
    .bind(tenant.as_str())
    .bind(user_id)
    .bind(client_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(scopes, resources)| {
        (
            serde_json::from_str(&scopes).unwrap_or_default(),
            serde_json::from_str(&resources).unwrap_or_default(),
        )
    }))
}

/// Records a grant, replacing the previous one.
pub async fn put<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &TenantId,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    resources: &[String],
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO consents (tenant_id, user_id, client_id, scopes, resources, granted_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, user_id, client_id) \
         DO UPDATE SET scopes = $4, resources = $5, granted_at = $6",
    )
    .bind(tenant.as_str())
    .bind(user_id)
    .bind(client_id)
    .bind(serde_json::Value::from(scopes.to_vec()).to_string())
    .bind(serde_json::Value::from(resources.to_vec()).to_string())
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}
