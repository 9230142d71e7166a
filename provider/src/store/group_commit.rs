//! Group commit: the writes of concurrent requests run one after another in one transaction,
//! and each request goes on only once that transaction has committed. SQLite has one writer
//! and pays an fsync per commit, so a write that waits for the one before it to commit caps
//! throughput at the disk's fsync rate; shared by a batch, one commit serves many grants and
//! every write is as durable as before. Lone audit rows of a batch (no change of their own to
//! ride in) go in with one multi-row insert, and writes that have a SQLite chain (`Chain`) go to
//! the connection's thread with the like writes of their batch in one request: sqlx runs each
//! SQLite connection on a thread of its own, and a request to it costs more than the statements.
//! Audit rows are sealed as they are written (`chain_heads`).
//! PostgreSQL groups concurrent commits itself, so there each write runs in its own transaction
//! on the pool (a write with a one-statement form, `Chain::postgres_sql`, as that statement: a
//! transaction by itself, one round trip); only lone audit rows share a batch's transaction
//! there too (one transaction per row cost the server more than the row: client_credentials
//! went from 4,400 to 9,500/s), and are sealed as written there too.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{TryStreamExt, future::BoxFuture};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, any::AnyArguments, query::Query};
use tokio::sync::{mpsc, oneshot};

use super::{
    StoreError, StoreResult,
    audit::{self, AuditRow},
    chain_heads::{ChainHeads, Link},
    warm_pool::WarmPool,
};

/// Most writes that share one transaction.
const MAX_BATCH: usize = 256;
/// Longest the batching task keeps its connection while other writers may be waiting for it.
const HOLD: Duration = Duration::from_millis(20);
/// Most chains sent in one request. Requests are made of power-of-two runs of one chain, so
/// that the connection caches a few prepared forms of each, not one per batch size.
const MAX_CHAINED: usize = 32;

pub type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// The statements of one change, run inside a transaction the caller does not see.
///
/// A write may run twice: when any write of a batch fails, the batch is rolled back and each
/// of its writes runs again in a transaction of its own, so that one bad write cannot fail its
/// neighbours. `run` therefore only reads its fields.
pub trait Write: Send + Sync + 'static {
    type Output: Send + 'static;

    fn run<'c>(&'c self, conn: &'c mut AnyConnection) -> BoxFuture<'c, StoreResult<Self::Output>>;

    /// The write on SQLite as one chain of statements, when it has one; a batch then sends it
    /// with the other writes of the same chain, and `run` is left for when it runs alone.
    fn chain(&self) -> Option<&dyn Chain<Output = Self::Output>> {
        None
    }
}

/// A write on SQLite as statements run in one request to the connection's thread. Each
/// statement after the first is guarded (`WHERE changes() = 1`) so that a write that does not
/// apply writes nothing; like chains of a batch are joined into one request, their parameters
/// renumbered.
pub trait Chain: Send + Sync {
    type Output;

    /// The statements, `;`-separated, with numbered parameters `$1`…`$n`, all of them used.
    fn sql(&self) -> &'static str;
    /// The same write on PostgreSQL as one statement over the same parameters, when it has
    /// one: the first change in a `WITH` part and every later one taking its rows from it, so
    /// that a write that does not apply writes nothing. A statement commits on its own, so it
    /// runs outside a transaction block: one round trip instead of `BEGIN`, one per statement
    /// and `COMMIT`. Its one count (the last change's) stands for the chain's first. A write
    /// with this form runs the chain from `Write::run` with `run_chain`, which picks the form.
    fn postgres_sql(&self) -> Option<&'static str> {
        None
    }
    /// The same chain with its audit row (`audit_row`) sealed as it is written: its last
    /// statements are `audit::sealed_insert_sql` with the seal's three parameters after the
    /// chain's own. A SQLite batch sends this form once the store has a key to seal with
    /// (`Store::seal_audit_as_written`).
    fn sealed_sql(&self) -> Option<&'static str> {
        None
    }
    /// The audit row the chain writes when it applies.
    fn audit_row(&self) -> Option<&AuditRow> {
        None
    }
    /// Binds `$1`…`$n`, in order, as the query's next parameters.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
    /// The outcome, from the rows each statement changed.
    fn output(&self, changes: &[u64]) -> Self::Output;
}

/// Whether a guarded chain applied: its first statement changed a row (the rest ran only then).
pub fn first_applied(changes: &[u64]) -> bool {
    changes.first() == Some(&1)
}

/// Runs one chain on its own (inside the caller's transaction), in its PostgreSQL form there.
pub async fn run_chain<C: Chain + ?Sized>(
    conn: &mut AnyConnection,
    chain: &C,
) -> StoreResult<C::Output> {
    let sql = match chain.postgres_sql() {
        Some(statement) if !super::is_sqlite(conn) => statement,
        _ => chain.sql(),
    };
    let changes = changes(conn, chain.bind(sqlx::query(sql))).await?;
    Ok(chain.output(&changes))
}

/// The rows each statement of a multi-statement query changed, in order.
pub(super) async fn changes(
    conn: &mut AnyConnection,
    query: AnyQuery<'_>,
) -> StoreResult<Vec<u64>> {
    let results = conn
        .fetch_many(query)
        .try_filter_map(|step| async move { Ok(step.left().map(|done| done.rows_affected())) });
    Ok(results.try_collect().await?)
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
    /// The write's SQLite chain text, when it has one (`Write::chain`): its sealed form once
    /// it has a seal.
    fn chain_sql(&self) -> Option<&'static str> {
        None
    }
    /// The audit row of a chain that can seal it as written.
    fn audit_to_seal(&self) -> Option<&AuditRow> {
        None
    }
    /// Gives the chain's audit row its place in the tenant's chain.
    fn seal(&mut self, _link: Link) {}
    /// The seal the chain's audit row took when the batch ran, if it took one.
    fn sealed(&self) -> Option<&Link> {
        None
    }
    /// Whether the write is one statement on PostgreSQL (`Chain::postgres_sql`).
    fn one_statement_on_postgres(&self) -> bool {
        false
    }
    /// Binds the chain's parameters.
    fn bind_chain<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
    }
    /// Keeps the chain's outcome, given the rows its statements changed.
    fn chained(&mut self, _changes: &[u64]) {}
}

struct Pending<W: Write> {
    write: W,
    outcome: Option<StoreResult<W::Output>>,
    done: oneshot::Sender<StoreResult<W::Output>>,
    /// The audit row's place in its chain, and whether the row took it.
    seal: Option<Link>,
    sealed: bool,
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

    fn chain_sql(&self) -> Option<&'static str> {
        let chain = self.write.chain()?;
        match self.seal {
            Some(_) => chain.sealed_sql(),
            None => Some(chain.sql()),
        }
    }

    fn audit_to_seal(&self) -> Option<&AuditRow> {
        let chain = self.write.chain()?;
        chain.sealed_sql().and(chain.audit_row())
    }

    fn seal(&mut self, link: Link) {
        self.seal = Some(link);
    }

    fn sealed(&self) -> Option<&Link> {
        self.seal.as_ref().filter(|_| self.sealed)
    }

    fn one_statement_on_postgres(&self) -> bool {
        self.write
            .chain()
            .is_some_and(|chain| chain.postgres_sql().is_some())
    }

    fn bind_chain<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let Some(chain) = self.write.chain() else {
            return query;
        };
        let query = chain.bind(query);
        match &self.seal {
            Some(seal) => query.bind(seal.seq).bind(&seal.prev).bind(&seal.hash),
            None => query,
        }
    }

    fn chained(&mut self, changes: &[u64]) {
        if let Some(chain) = self.write.chain() {
            self.outcome = Some(Ok(chain.output(changes)));
            // The sealed form's last statement moves the chain's head: it changed a row only
            // when the audit row took its seal.
            self.sealed = self.seal.is_some() && changes.last() == Some(&1);
        }
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
    batches: mpsc::Sender<Box<dyn Job>>,
    /// Where writes other than lone audit rows go each on their own; none: to the batching
    /// task too.
    direct: Option<Arc<WarmPool>>,
    /// What the batching task seals audit rows against.
    heads: Arc<ChainHeads>,
}

impl Writer {
    /// Writes share commits through a task that holds a connection of `pool` while writes keep
    /// coming (it ends when the last `Writer` is dropped).
    pub fn batching(pool: AnyPool) -> Self {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        let heads = Arc::new(ChainHeads::default());
        tokio::spawn(write_batches(pool, jobs, heads.clone()));
        Self {
            batches: queue,
            direct: None,
            heads,
        }
    }

    /// The chain heads a SQLite batch seals its chains' audit rows against.
    pub fn chain_heads(&self) -> &ChainHeads {
        &self.heads
    }

    /// Each write in its own transaction, where the server groups concurrent commits itself
    /// (PostgreSQL); lone audit rows still share a batching task's transactions, since one
    /// transaction per row costs the server more than the row.
    pub fn direct_writes(warm: Arc<WarmPool>) -> Self {
        Self {
            direct: Some(warm.clone()),
            ..Self::batching(warm.pool().clone())
        }
    }

    /// Runs `write`; returns its outcome once it is committed.
    pub async fn write<W: Write>(&self, write: W) -> StoreResult<W::Output> {
        let (done, outcome) = oneshot::channel();
        let job = Pending {
            write,
            outcome: None,
            done,
            seal: None,
            sealed: false,
        };
        self.committed(Box::new(job), outcome, self.direct.as_deref())
            .await
    }

    /// Writes an audit row that has no change to ride in; returns once it is committed.
    pub async fn append_audit(&self, row: AuditRow) -> StoreResult<()> {
        let (done, outcome) = oneshot::channel();
        let job = AuditAppend {
            row,
            outcome: None,
            done,
        };
        self.committed(Box::new(job), outcome, None).await
    }

    /// Hands `job` over (to the batching task unless it goes `direct`) and waits for the
    /// outcome it sends once committed.
    async fn committed<T>(
        &self,
        job: Box<dyn Job>,
        outcome: oneshot::Receiver<StoreResult<T>>,
        direct: Option<&WarmPool>,
    ) -> StoreResult<T> {
        self.submit(job, direct).await?;
        outcome.await.map_err(|_| stopped())?
    }

    async fn submit(&self, job: Box<dyn Job>, direct: Option<&WarmPool>) -> StoreResult<()> {
        let Some(warm) = direct else {
            return self.batches.send(job).await.map_err(|_| stopped());
        };
        match warm.lend().await {
            Ok(mut conn) => {
                if alone(&mut conn, job).await {
                    conn.finished();
                }
            }
            Err(err) => job.finish(Err(err.into())),
        }
        Ok(())
    }
}

fn stopped() -> StoreError {
    StoreError::Corrupt("the database writer has stopped".into())
}

async fn write_batches(
    pool: AnyPool,
    mut jobs: mpsc::Receiver<Box<dyn Job>>,
    heads: Arc<ChainHeads>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut joined = JoinedChains::default();
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
            write_batch(&mut conn, &mut batch, &mut joined, &heads).await;
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

/// Writes a batch in one transaction; when that fails, each write on its own. A write goes the
/// batch's way even alone: a chain's request then carries `BEGIN` and `COMMIT`, and audit rows
/// are sealed on SQLite.
async fn write_batch(
    conn: &mut AnyConnection,
    batch: &mut Vec<Box<dyn Job>>,
    joined: &mut JoinedChains,
    heads: &ChainHeads,
) {
    if together(conn, batch, joined, heads).await.is_ok() {
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
async fn together(
    conn: &mut AnyConnection,
    batch: &mut [Box<dyn Job>],
    joined: &mut JoinedChains,
    heads: &ChainHeads,
) -> StoreResult<()> {
    if super::is_sqlite(conn) {
        return chained_together(conn, batch, joined, heads).await;
    }
    let mut tx = conn.begin().await?;
    for job in batch.iter_mut().filter(|job| job.audit_row().is_none()) {
        if !job.run(&mut tx).await {
            return Err(StoreError::Corrupt("a write in the batch failed".into()));
        }
    }
    // By tenant, in the order of their ids: concurrent batches of other replicas move the
    // heads they share in the same order, so they wait for each other but never deadlock.
    let mut rows: Vec<&AuditRow> = batch.iter().filter_map(|job| job.audit_row()).collect();
    rows.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
    let committed: StoreResult<Vec<(Link, bool)>> = async {
        let links = match heads.plan(&mut tx, &rows).await {
            Some(links) => {
                let took = audit::insert_many_sealed(&mut tx, &rows, &links).await?;
                links.into_iter().zip(took).collect()
            }
            None => {
                audit::insert_many(&mut tx, &rows).await?;
                Vec::new()
            }
        };
        tx.commit().await?;
        Ok(links)
    }
    .await;
    match committed {
        Ok(links) => {
            let seals = links.iter().map(|(link, took)| took.then_some(link));
            heads.record(rows.iter().map(|row| row.tenant_id.as_str()).zip(seals));
            Ok(())
        }
        Err(err) => {
            // The heads are read again: whatever failed may have been one believed wrongly.
            for row in &rows {
                heads.forget(&row.tenant_id);
            }
            Err(err)
        }
    }
}

/// A SQLite batch: like chains side by side, then lone audit rows, then the rest. The
/// transaction's `BEGIN` rides in the first request and its `COMMIT` in the last when only
/// chains follow: under load each request's answer waits for a busy runtime to pick it up, and
/// a separate `BEGIN` and `COMMIT` cost a batch of fourteen rotations as much as a third of its
/// time. The audit rows of chains and the lone ones are sealed as they are written
/// (`chain_heads`).
async fn chained_together(
    conn: &mut AnyConnection,
    batch: &mut [Box<dyn Job>],
    joined: &mut JoinedChains,
    heads: &ChainHeads,
) -> StoreResult<()> {
    // Writes of one batch were concurrent, so their order among themselves is the caller's
    // anyway: like chains together, and lone rows by tenant (one sealed insert per tenant).
    batch.sort_by(|a, b| batch_order(a.as_ref()).cmp(&batch_order(b.as_ref())));
    let chained = batch.iter().filter(|job| job.chain_sql().is_some()).count();
    let (chains, others) = batch.split_at_mut(chained);
    // Sealing changes every chain of a kind to its sealed form alike, so the order stays the
    // one just sorted, and the links follow it: the chains' rows, then the lone ones.
    let mut rows: Vec<&AuditRow> = chains
        .iter()
        .filter_map(|job| job.audit_to_seal())
        .collect();
    let chain_rows = rows.len();
    rows.extend(others.iter().filter_map(|job| job.audit_row()));
    let links = heads.plan(conn, &rows).await;
    drop(rows);
    let mut lone_links = Vec::new();
    if let Some(mut links) = links {
        lone_links = links.split_off(chain_rows);
        let sealable = chains
            .iter_mut()
            .filter(|job| job.audit_to_seal().is_some());
        for (job, link) in sealable.zip(links) {
            job.seal(link);
        }
    }
    let mut lone_took = Vec::new();
    let written = async {
        let mut rest = &mut *chains;
        let mut begin = true;
        while let Some(sql) = rest.first().and_then(|job| job.chain_sql()) {
            let like = rest
                .iter()
                .take_while(|job| job.chain_sql() == Some(sql))
                .count();
            let run = joined_run(like);
            let (now, later) = rest.split_at_mut(run);
            let framing = Framing {
                begin,
                commit: later.is_empty() && others.is_empty(),
            };
            run_joined(conn, joined.sql(sql, run, framing), framing, now).await?;
            begin = false;
            rest = later;
        }
        if others.is_empty() {
            return Ok(());
        }
        if begin {
            conn.execute("BEGIN IMMEDIATE").await?;
        }
        let rows: Vec<_> = others.iter().filter_map(|job| job.audit_row()).collect();
        if lone_links.is_empty() {
            audit::insert_many(conn, &rows).await?;
        } else {
            lone_took = audit::insert_many_sealed(conn, &rows, &lone_links).await?;
        }
        drop(rows);
        for job in others.iter_mut().filter(|job| job.audit_row().is_none()) {
            if !job.run(conn).await {
                return Err(StoreError::Corrupt("a write in the batch failed".into()));
            }
        }
        conn.execute("COMMIT").await?;
        Ok(())
    }
    .await;
    if written.is_err() {
        // Undoes whatever ran; when no transaction is open (BEGIN or COMMIT failed in a way
        // that closed it) this fails, harmlessly. The heads are read again: the batch's seals
        // are undone, and whatever failed it may have been a head the writer got wrong.
        let _ = conn.execute("ROLLBACK").await;
        let chain_rows = chains.iter().filter_map(|job| job.audit_to_seal());
        for row in chain_rows.chain(others.iter().filter_map(|job| job.audit_row())) {
            heads.forget(&row.tenant_id);
        }
        return written;
    }
    let chain_seals = chains.iter().filter_map(|job| {
        let row = job.audit_to_seal()?;
        Some((row.tenant_id.as_str(), job.sealed()))
    });
    let lone_rows = others.iter().filter_map(|job| job.audit_row());
    let lone_seals = lone_rows
        .zip(lone_links.iter().zip(&lone_took))
        .map(|(row, (link, took))| (row.tenant_id.as_str(), took.then_some(link)));
    heads.record(chain_seals.chain(lone_seals));
    written
}

/// Where a write goes in a SQLite batch: chains first, like with like; lone audit rows last,
/// by tenant.
fn batch_order(job: &dyn Job) -> (bool, Option<&'static str>, Option<&str>) {
    let tenant = job.audit_row().map(|row| row.tenant_id.as_str());
    (job.chain_sql().is_none(), job.chain_sql(), tenant)
}

/// Whether a joined request also opens the batch's transaction, and whether it commits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Framing {
    begin: bool,
    commit: bool,
}

/// How many of `like` waiting chains to join into the next request: the largest power of two
/// that fits, up to `MAX_CHAINED`.
fn joined_run(like: usize) -> usize {
    let fits = like.min(MAX_CHAINED);
    1 << fits.ilog2()
}

/// Sends `jobs` (all of one chain) as one request and hands each its statements' changes.
async fn run_joined(
    conn: &mut AnyConnection,
    sql: &str,
    framing: Framing,
    jobs: &mut [Box<dyn Job>],
) -> StoreResult<()> {
    let query = jobs
        .iter()
        .fold(sqlx::query(sql), |query, job| job.bind_chain(query));
    let mut changes = changes(conn, query).await?;
    // BEGIN and COMMIT report a count too; it is nobody's.
    if framing.commit {
        changes.pop();
    }
    if framing.begin && !changes.is_empty() {
        changes.remove(0);
    }
    let per_job = changes.len() / jobs.len();
    if per_job == 0 || changes.len() % jobs.len() != 0 {
        return Err(StoreError::Corrupt("a joined chain ran partly".into()));
    }
    for (job, changes) in jobs.iter_mut().zip(changes.chunks(per_job)) {
        job.chained(changes);
    }
    Ok(())
}

/// The texts of joined chains, made once per chain, run length and framing.
#[derive(Default)]
struct JoinedChains(HashMap<(&'static str, usize, Framing), String>);

impl JoinedChains {
    fn sql(&mut self, chain: &'static str, run: usize, framing: Framing) -> &str {
        self.0
            .entry((chain, run, framing))
            .or_insert_with(|| framed(join_chain(chain, run), framing))
    }
}

/// A joined chain with the statements that open and commit the transaction around it.
/// `IMMEDIATE` takes the write lock at once, so a busy database is waited for (busy_timeout)
/// rather than failing the batch when its first write would upgrade the lock.
fn framed(joined: String, framing: Framing) -> String {
    let begin = if framing.begin {
        "BEGIN IMMEDIATE;\n"
    } else {
        ""
    };
    let commit = if framing.commit { ";\nCOMMIT" } else { "" };
    format!("{begin}{joined}{commit}")
}

/// `run` copies of a chain's statements, each copy's parameters numbered after the last's.
fn join_chain(chain: &str, run: usize) -> String {
    let chain = chain.trim().trim_end_matches(';');
    let params = parameters(chain).max().unwrap_or(0);
    let mut joined = String::with_capacity((chain.len() + 8) * run);
    for copy in 0..run {
        if copy > 0 {
            joined.push_str(";\n");
        }
        renumber(chain, copy * params, &mut joined);
    }
    joined
}

/// The numbers of a text's `$n` parameters.
fn parameters(sql: &str) -> impl Iterator<Item = usize> + '_ {
    sql.split('$').skip(1).filter_map(|after| {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        after[..digits].parse().ok()
    })
}

/// Appends `sql` to `out` with every `$n` written as `$(n + by)`.
fn renumber(sql: &str, by: usize, out: &mut String) {
    let mut parts = sql.split('$');
    out.push_str(parts.next().unwrap_or_default());
    for after in parts {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<usize>() {
            Ok(n) => {
                out.push('$');
                out.push_str(&(n + by).to_string());
                out.push_str(&after[digits..]);
            }
            Err(_) => {
                out.push('$');
                out.push_str(after);
            }
        }
    }
}

/// Runs one write in a transaction of its own (on PostgreSQL, a write that is one statement
/// is one) and hands over its outcome; true when it ran and committed without an error.
async fn alone(conn: &mut AnyConnection, mut job: Box<dyn Job>) -> bool {
    if job.one_statement_on_postgres() && !super::is_sqlite(conn) {
        // `run` keeps the outcome, an error included, for `finish`.
        let ran = job.run(conn).await;
        job.finish(Ok(()));
        return ran;
    }
    let committed = async {
        let mut tx = conn.begin().await?;
        let ran = job.run(&mut tx).await;
        if ran {
            tx.commit().await?;
        }
        Ok(ran)
    }
    .await;
    let ran = matches!(committed, Ok(true));
    job.finish(committed.map(|_| ()));
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_chains_number_each_copy_after_the_last() {
        let chain =
            "UPDATE t SET a = $2 WHERE id = $1; INSERT INTO u SELECT $1, $3 WHERE changes() = 1;";
        assert_eq!(
            join_chain(chain, 2),
            "UPDATE t SET a = $2 WHERE id = $1; INSERT INTO u SELECT $1, $3 WHERE changes() = 1;\n\
             UPDATE t SET a = $5 WHERE id = $4; INSERT INTO u SELECT $4, $6 WHERE changes() = 1"
        );
        assert_eq!(
            join_chain("SELECT $10, $9", 3),
            "SELECT $10, $9;\nSELECT $20, $19;\nSELECT $30, $29"
        );
    }

    #[test]
    fn framing_opens_and_commits_around_the_joined_chain() {
        let joined = || "UPDATE t SET a = $1".to_owned();
        let both = Framing {
            begin: true,
            commit: true,
        };
        assert_eq!(
            framed(joined(), both),
            "BEGIN IMMEDIATE;\nUPDATE t SET a = $1;\nCOMMIT"
        );
        let neither = Framing {
            begin: false,
            commit: false,
        };
        assert_eq!(framed(joined(), neither), "UPDATE t SET a = $1");
    }

    #[test]
    fn runs_are_powers_of_two_up_to_the_most_chained() {
        let runs: Vec<usize> = [1, 2, 3, 7, 8, 31, 32, 33, 200].map(joined_run).to_vec();
        assert_eq!(runs, [1, 2, 2, 4, 8, 16, 32, 32, 32]);
    }
}
