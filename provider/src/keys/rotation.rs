//! The scheduled rotation task: every minute, each tenant with rotation on takes one step of
//! `lifecycle::scheduled`. Safe with any number of replicas (see `KeyService::rotate_if_due`).

use std::time::Duration;

use crate::{state::AppState, store::tenants};

/// How often the task looks for due work.
pub const TICK: Duration = Duration::from_secs(60);

/// One pass over every tenant; returns how many key changes were applied. A failing tenant is
/// logged and skipped so one bad row cannot stop rotation for the rest.
pub async fn run_once(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let mut changed = 0;
    for (tenant, period) in tenants::rotation_schedule(state.store.reader()).await? {
        match state.keys.rotate_if_due(&tenant, period).await {
            Ok(n) => changed += n,
            Err(err) => tracing::warn!(%tenant, error = %err, "scheduled key rotation failed"),
        }
    }
    Ok(changed)
}

/// Runs `run_once` every `TICK` until the process stops.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match run_once(&state).await {
                Ok(0) => {}
                Ok(changed) => tracing::info!(changed, "scheduled key rotation applied changes"),
                Err(err) => tracing::warn!(error = %err, "scheduled key rotation could not run"),
            }
        }
    })
}
