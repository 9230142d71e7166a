//! `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer), SPEC
//! "Service endpoints".

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Map, Value, json};

use crate::state::AppState;

/// A dependency that does not answer within this is reported as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await;
    let mut checks = Map::new();
    let mut failed = Vec::new();
    record(
        &mut checks,
        &mut failed,
        "database",
        matches!(database, Ok(Ok(()))),
    );
    if let Some(client) = &state.redis {
        let redis = tokio::time::timeout(CHECK_TIMEOUT, ping_redis(client)).await;
        record(
            &mut checks,
            &mut failed,
            "redis",
            matches!(redis, Ok(Ok(()))),
        );
    }
    if failed.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        )
    } else {
        tracing::warn!(failed = ?failed, "not ready");
        let body = json!({ "status": "unavailable", "failed": failed, "checks": checks });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

fn record(
    checks: &mut Map<String, Value>,
    failed: &mut Vec<&'static str>,
    name: &'static str,
    ok: bool,
) {
    checks.insert(name.into(), Value::from(if ok { "ok" } else { "failed" }));
    if !ok {
        failed.push(name);
    }
}

async fn ping_redis(client: &redis::Client) -> redis::RedisResult<()> {
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await?;
    Ok(())
}
