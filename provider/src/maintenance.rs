//! Background upkeep, safe with any number of replicas: sealing new audit rows into their
//! tenant's chain (every second when idle, every tenth of a second while rows keep coming),
//! dropping idle in-process rate-limit counters every minute, and
//! once an hour purging what retention allows.

use std::time::Duration;

use serde_json::json;

use crate::{
    audit::{self, AuditEvent, RequestMeta, chain},
    state::AppState,
    store::{self, StoreResult, audit as audit_store, retention, tenants},
};

/// How often the sealer looks for new audit rows while none came since its last pass.
pub const SEAL_TICK: Duration = Duration::from_secs(1);
/// How soon the sealer looks again after a pass that sealed rows. Under steady load it then
/// seals a tenth of a second's rows at a time, not a second's in one burst (about twenty
/// transactions back to back at 2,600 grants/s on PostgreSQL) that takes a core from the token
/// endpoint all at once (bench/RESULTS.md, host S).
pub const SEAL_BUSY_TICK: Duration = Duration::from_millis(100);
/// How often idle in-process rate-limit counters are dropped.
pub const PRUNE_TICK: Duration = Duration::from_secs(60);
/// How often retention runs.
pub const PURGE_TICK: Duration = Duration::from_secs(3600);
/// Expired rows stay this long after their end, for investigations, before they are purged.
pub const PURGE_MARGIN_SECS: i64 = 24 * 3600;

/// What one retention pass removed.
#[derive(Debug, Default)]
pub struct Purged {
    /// Audit rows removed, per tenant.
    pub audit_rows: Vec<(String, u64)>,
    /// Other rows removed, per table.
    pub expired_rows: Vec<(&'static str, u64)>,
}

/// One retention pass: each tenant's audit rows older than its retention (a prefix of its
/// chain, whose anchor moves past them, recorded as `audit.purged`), then rows whose use ended
/// more than `PURGE_MARGIN_SECS` ago.
pub async fn purge_once(state: &AppState) -> StoreResult<Purged> {
    let now = state.clock.unix();
    let mut purged = Purged::default();
    let mut after = None;
    loop {
        let page = tenants::list(state.store.reader(), after.as_deref(), 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.as_str().to_owned());
        for tenant in &page {
            if tenant.audit_retention_days == 0 {
                continue;
            }
            let id = tenant.id.as_str();
            chain::seal(&state.store, &state.digester, id).await?;
            let before_ms = (now - tenant.audit_retention_days * 86_400) * 1000;
            let Some((seq, hash)) =
                audit_store::last_sealed_before(state.store.reader(), id, before_ms).await?
            else {
                continue;
            };
            let mut tx = state.store.begin().await?;
            let rows = audit_store::purge_through(&mut tx, id, seq, &hash).await?;
            let event = AuditEvent::new("audit.purged").details(json!({
                "through_seq": seq,
                "rows": rows,
                "retention_days": tenant.audit_retention_days,
            }));
            let meta = RequestMeta::default();
            audit::record(&mut *tx, state.clock.as_ref(), id, &meta, event).await?;
            store::commit(tx).await?;
            purged.audit_rows.push((id.to_owned(), rows));
        }
    }
    purged.expired_rows = retention::purge(state.store.writer(), now - PURGE_MARGIN_SECS).await?;
    Ok(purged)
}

/// How long the sealer rests after a pass: briefly while rows keep coming, a full tick when
/// there were none or the pass failed (a database that refused it gets a second to recover).
fn next_seal_after(pass: &StoreResult<u64>) -> Duration {
    match pass {
        Ok(sealed) if *sealed > 0 => SEAL_BUSY_TICK,
        _ => SEAL_TICK,
    }
}

/// Runs sealing and retention until the process stops.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let seal = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(seal);
        let mut purge = tokio::time::interval(PURGE_TICK);
        let mut prune = tokio::time::interval(PRUNE_TICK);
        for tick in [&mut purge, &mut prune] {
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = &mut seal => {
                    let sealed = chain::seal_all(&state.store, &state.digester).await;
                    if let Err(err) = &sealed {
                        tracing::warn!(error = %err, "audit rows could not be sealed");
                    }
                    seal.as_mut().reset(tokio::time::Instant::now() + next_seal_after(&sealed));
                }
                _ = prune.tick() => state.limits.prune(),
                _ = purge.tick() => match purge_once(&state).await {
                    Ok(purged) => tracing::info!(
                        audit = ?purged.audit_rows,
                        expired = ?purged.expired_rows,
                        "retention ran"
                    ),
                    Err(err) => tracing::warn!(error = %err, "retention could not run"),
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn sealer_comes_back_soon_only_after_sealing_rows() {
        assert_eq!(next_seal_after(&Ok(1)), SEAL_BUSY_TICK);
        assert_eq!(next_seal_after(&Ok(128)), SEAL_BUSY_TICK);
        assert_eq!(next_seal_after(&Ok(0)), SEAL_TICK);
        let refused = Err(StoreError::Corrupt("refused".to_owned()));
        assert_eq!(next_seal_after(&refused), SEAL_TICK);
    }
}
