//! Group commit for audit rows that have no transaction of their own to ride in (a token
//! issued by client_credentials, a failed admin login): rows from concurrent requests are
//! written in one transaction, and each request goes on only once the transaction holding its
//! row has committed. Every row is as durable as before, but one commit (one fsync on SQLite)
//! is shared by a whole batch instead of paid per request.

use tokio::sync::{mpsc, oneshot};

use super::{
    StoreError, StoreResult,
    audit::{AuditRow, insert},
};
use sqlx::AnyPool;

/// Most rows written in one transaction.
const MAX_BATCH: usize = 256;

/// An audit row that owns its text, to cross into the writing task.
#[derive(Clone, Debug)]
pub struct OwnedAuditRow {
    pub tenant_id: String,
    pub occurred_at_ms: i64,
    pub event: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
}

impl OwnedAuditRow {
    fn borrowed(&self) -> AuditRow<'_> {
        AuditRow {
            tenant_id: &self.tenant_id,
            occurred_at_ms: self.occurred_at_ms,
            event: &self.event,
            client_id: self.client_id.as_deref(),
            user_id: self.user_id.as_deref(),
            ip: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            request_id: self.request_id.as_deref(),
            details: &self.details,
        }
    }
}

type Job = (OwnedAuditRow, oneshot::Sender<StoreResult<()>>);

/// The queue in front of the writing task; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditBatcher {
    queue: mpsc::Sender<Job>,
}

impl AuditBatcher {
    /// Starts the writing task on `writer` (it ends when the last batcher is dropped).
    pub fn start(writer: AnyPool) -> Self {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(writer, jobs));
        Self { queue }
    }

    /// Writes `row`; returns once it is committed.
    pub async fn append(&self, row: OwnedAuditRow) -> StoreResult<()> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send((row, done))
            .await
            .map_err(|_| StoreError::Corrupt("the audit writer has stopped".into()))?;
        committed
            .await
            .map_err(|_| StoreError::Corrupt("the audit writer has stopped".into()))?
    }
}

async fn write_batches(writer: AnyPool, mut jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write_together(&writer, &batch).await {
            Ok(()) => {
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            // One bad row must not fail its neighbours: write them one by one, so each
            // request gets its own outcome.
            Err(_) => {
                for (row, done) in batch.drain(..) {
                    let _ = done.send(insert(&writer, &row.borrowed()).await);
                }
            }
        }
    }
}

async fn write_together(writer: &AnyPool, batch: &[Job]) -> StoreResult<()> {
    let mut tx = writer.begin().await?;
    for (row, _) in batch {
        insert(&mut *tx, &row.borrowed()).await?;
    }
    tx.commit().await?;
    Ok(())
}
