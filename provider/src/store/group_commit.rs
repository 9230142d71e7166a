//! Group commit: the writes of concurrent requests run one after another in one transaction,
//! and each request goes on only once that transaction has committed. SQLite has one writer
//! and pays an fsync per commit, so a write that waits for the one before it to commit caps
//! throughput at the disk's fsync rate; shared by a batch, one commit serves many grants and
//! every write is as durable as before. Lone audit rows of a batch (no change of their own to
//! ride in) go in with one multi-row insert. PostgreSQL groups concurrent commits itself, so
//! there each write runs in its own transaction on the pool.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::{
    StoreError, StoreResult,
    audit::{self, AuditRow},
};

/// Most writes that share one transaction.
const MAX_BATCH: usize = 256;
/// Longest the batching task keeps its connection while other writers may be waiting for it.
const HOLD: Duration = Duration::from_millis(20);

/// The statements of one change, run inside a transaction the caller does not see.
///
/// A write may run twice: when any write of a batch fails, the batch is rolled back and each
/// of its writes runs again in a transaction of its own, so that one bad write cannot fail its
/// neighbours. `run` therefore only reads its fields.
pub trait Write: Send + Sync + 'static {
    type Output: Send + 'static;

    fn run<'c>(&'c self, conn: &'c mut AnyConnection) -> BoxFuture<'c, StoreResult<Self::Output>>;
}

/// A write waiting for its commit, with its type erased to queue beside others.
trait Job: Send {
    /// Runs the write and keeps its outcome; false when it failed.
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Hands the kept outcome to the waiting request, or `committed`'s error.
    fn finish(self: Box<Self>, committed: StoreResult<()>);
    /// The row of a lone audit write: a batch inserts all of these with one statement.
    fn audit_row(&self) -> Option<&AuditRow> {
        None
    }
}

struct Pending<W: Write> {
    write: W,
    outcome: Option<StoreResult<W::Output>>,
    done: oneshot::Sender<StoreResult<W::Output>>,
}

impl<W: Write> Job for Pending<W> {
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let outcome = self.write.run(conn).await;
            let ran = outcome.is_ok();
            self.outcome = Some(outcome);
            ran
        })
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        let Pending { outcome, done, .. } = *self;
        let outcome = committed.and_then(|()| {
            outcome.unwrap_or_else(|| Err(StoreError::Corrupt("a write never ran".into())))
        });
        // The request may have gone away; its write stands either way.
        let _ = done.send(outcome);
    }
}

/// An audit row with no change to ride in (a client_credentials token, a refusal): written by
/// its batch's one multi-row insert, or on its own when the batch fails.
struct AuditAppend {
    row: AuditRow,
    outcome: Option<StoreResult<()>>,
    done: oneshot::Sender<StoreResult<()>>,
}

impl Job for AuditAppend {
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let outcome = audit::insert(conn, &self.row).await;
            let ran = outcome.is_ok();
            self.outcome = Some(outcome);
            ran
        })
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        let AuditAppend { outcome, done, .. } = *self;
        // No outcome of its own: the batch's insert wrote it.
        let _ = done.send(committed.and_then(|()| outcome.unwrap_or(Ok(()))));
    }

    fn audit_row(&self) -> Option<&AuditRow> {
        Some(&self.row)
    }
}

/// Where writes go: a batching task (SQLite) or straight to the pool (PostgreSQL).
#[derive(Clone, Debug)]
pub struct Writer {
    pool: AnyPool,
    batches: Option<mpsc::Sender<Box<dyn Job>>>,
}

impl Writer {
    /// Writes share commits through a task that holds a connection of `pool` while writes keep
    /// coming (it ends when the last `Writer` is dropped).
    pub fn batching(pool: AnyPool) -> Self {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(pool.clone(), jobs));
        Self {
            pool,
            batches: Some(queue),
        }
    }

    /// Each write in its own transaction.
    pub fn direct(pool: AnyPool) -> Self {
        Self {
            pool,
            batches: None,
        }
    }

    /// Runs `write`; returns its outcome once it is committed.
    pub async fn write<W: Write>(&self, write: W) -> StoreResult<W::Output> {
        let (done, outcome) = oneshot::channel();
        let job = Pending {
            write,
            outcome: None,
            done,
        };
        self.committed(Box::new(job), outcome).await
    }

    /// Writes an audit row that has no change to ride in; returns once it is committed.
    pub async fn append_audit(&self, row: AuditRow) -> StoreResult<()> {
        let (done, outcome) = oneshot::channel();
        let job = AuditAppend {
            row,
            outcome: None,
            done,
        };
        self.committed(Box::new(job), outcome).await
    }

    /// Hands `job` over and waits for the outcome it sends once committed.
    async fn committed<T>(
        &self,
        job: Box<dyn Job>,
        outcome: oneshot::Receiver<StoreResult<T>>,
    ) -> StoreResult<T> {
        self.submit(job).await?;
        outcome.await.map_err(|_| stopped())?
    }

    async fn submit(&self, job: Box<dyn Job>) -> StoreResult<()> {
        match &self.batches {
            Some(queue) => queue.send(job).await.map_err(|_| stopped())?,
            None => match self.pool.acquire().await {
                Ok(mut conn) => alone(&mut conn, job).await,
                Err(err) => job.finish(Err(err.into())),
            },
        }
        Ok(())
    }
}

fn stopped() -> StoreError {
    StoreError::Corrupt("the database writer has stopped".into())
}

async fn write_batches(pool: AnyPool, mut jobs: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                // Every waiting request is answered as busy (retryable); the cause is logged.
                tracing::warn!(error = %err, "no database connection for a batch of writes");
                for job in batch.drain(..) {
                    job.finish(Err(StoreError::Busy));
                }
                continue;
            }
        };
        // Taking the pool's connection and giving it back cost more than a batch, so it is
        // kept while writes keep coming, but for HOLD at most: other writers (sealing, admin
        // changes, sign-in) queue for the same connection.
        let held = Instant::now();
        loop {
            write_batch(&mut conn, &mut batch).await;
            if held.elapsed() >= HOLD {
                break;
            }
            while batch.len() < MAX_BATCH
                && let Ok(job) = jobs.try_recv()
            {
                batch.push(job);
            }
            if batch.is_empty() {
                break;
            }
        }
    }
}

/// Writes a batch in one transaction; when that fails, each write on its own.
async fn write_batch(conn: &mut AnyConnection, batch: &mut Vec<Box<dyn Job>>) {
    if batch.len() > 1 && together(conn, batch).await.is_ok() {
        for job in batch.drain(..) {
            job.finish(Ok(()));
        }
    } else {
        for job in batch.drain(..) {
            alone(conn, job).await;
        }
    }
}

/// Runs a batch in one transaction; an error rolls all of it back.
async fn together(conn: &mut AnyConnection, batch: &mut [Box<dyn Job>]) -> StoreResult<()> {
    let mut tx = conn.begin().await?;
    let rows: Vec<_> = batch.iter().filter_map(|job| job.audit_row()).collect();
    audit::insert_many(&mut tx, &rows).await?;
    drop(rows);
    for job in batch.iter_mut().filter(|job| job.audit_row().is_none()) {
        if !job.run(&mut tx).await {
            return Err(StoreError::Corrupt("a write in the batch failed".into()));
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Runs one write in a transaction of its own and hands over its outcome.
async fn alone(conn: &mut AnyConnection, mut job: Box<dyn Job>) {
    let committed = async {
        let mut tx = conn.begin().await?;
        if job.run(&mut tx).await {
            tx.commit().await?;
        }
        Ok(())
    }
    .await;
    job.finish(committed);
}
