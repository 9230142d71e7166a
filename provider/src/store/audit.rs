//! The `audit_events` table: append-only rows, written in the transaction of the change they
//! describe, and their seals. On SQLite a seal is part of its row; on PostgreSQL it is a row of
//! `audit_seals`, so that sealing inserts instead of updating (migration 0023 there). Reads go
//! through the `audit_rows` view, each row with its seal, the same on both.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicI64, Ordering},
};

use sqlx::{Any, Executor, Row, any::AnyArguments, query::Query};

use super::{StoreResult, chain_heads::Link};

/// One audit row as written. `tenant_id` is a plain string because failures are recorded even
/// for tenant ids that do not exist. It owns its text, so it can cross into the writing task
/// (`group_commit`).
#[derive(Clone, Debug)]
pub struct AuditRow {
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

/// Binds a row's nine columns, in table order, as the query's next parameters.
pub fn bind<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    row: &'q AuditRow,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
        .bind(row.tenant_id.as_str())
        .bind(row.occurred_at_ms)
        .bind(row.event.as_str())
        .bind(row.client_id.as_deref())
        .bind(row.user_id.as_deref())
        .bind(row.ip.as_deref())
        .bind(row.user_agent.as_deref())
        .bind(row.request_id.as_deref())
        .bind(row.details.as_str())
}

impl AuditRow {
    /// What the row's chain hash covers besides its tenant and place.
    pub fn content(&self) -> Content<'_> {
        Content {
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

/// The columns of a row that its chain hash covers, borrowed from a row about to be written
/// (`AuditRow`) or read back (`StoredAudit`).
#[derive(Clone, Copy, Debug)]
pub struct Content<'a> {
    pub occurred_at_ms: i64,
    pub event: &'a str,
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: &'a str,
}

const INSERT_COLUMNS: &str = "INSERT INTO audit_events (tenant_id, occurred_at_ms, event, \
                              client_id, user_id, ip, user_agent, request_id, details";

/// The last statement of a SQLite chain (`group_commit::Chain`): inserts the row whose nine
/// columns are parameters `$first`… if the statement before it changed a row.
pub fn guarded_insert_sql(first: usize) -> String {
    format!(
        "{INSERT_COLUMNS}) SELECT {} WHERE changes() = 1",
        numbered(first, 9)
    )
}

/// The same insert, sealed as it is written (`Chain::sealed_sql`): parameters `$seal`,
/// `$seal + 1` and `$seal + 2` are the row's sequence, the previous hash and its own hash,
/// reckoned by the writer from the tenant's chain head as it last knew it. The row takes them
/// only if the head is still exactly there, and then becomes the head; otherwise it is written
/// unsealed, for the sealing task. So a row sealed as written always extends the chain as it
/// stands, whatever the writer believed.
pub fn sealed_insert_sql(first: usize, seal: usize) -> String {
    let (tenant, seq, prev, hash) = (first, seal, seal + 1, seal + 2);
    let at_head =
        format!("tenant_id = ${tenant} AND head_seq = ${seq} - 1 AND head_hash = ${prev}");
    format!(
        "{INSERT_COLUMNS}, chain_seq, chain_prev, chain_hash) SELECT {}, \
         CASE WHEN linked THEN ${seq} END, CASE WHEN linked THEN ${prev} END, \
         CASE WHEN linked THEN ${hash} END \
         FROM (SELECT EXISTS (SELECT 1 FROM audit_chains WHERE {at_head}) AS linked) \
         WHERE changes() = 1; \
         UPDATE audit_chains SET head_seq = ${seq}, head_hash = ${hash} \
         WHERE {at_head} AND changes() = 1",
        numbered(first, 9)
    )
}

/// `$first, …` : `count` numbered parameters.
fn numbered(first: usize, count: usize) -> String {
    let params: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    params.join(", ")
}

pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, row: &AuditRow) -> StoreResult<()> {
    let query = sqlx::query(
        "INSERT INTO audit_events (tenant_id, occurred_at_ms, event, client_id, user_id, ip, \
         user_agent, request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    );
    bind(query, row).execute(db).await?;
    Ok(())
}

/// Most rows per multi-row insert (nine values each, well under any bound-parameter limit).
const MOST_ROWS_PER_INSERT: usize = 64;

/// Inserts rows with as few statements as power-of-two runs allow (a batch of 37 rows is three
/// inserts: 32, 4 and 1), so that a connection keeps a few prepared forms, not one per count.
pub async fn insert_many(conn: &mut sqlx::AnyConnection, rows: &[&AuditRow]) -> StoreResult<()> {
    // SQLite looks a named parameter's name up by walking a list, so binding hundreds of `$n`
    // costs quadratic time there; plain `?` binds in order.
    let anonymous = super::is_sqlite(conn);
    let statements = if anonymous {
        &INSERT_ANONYMOUS
    } else {
        &INSERT_NUMBERED
    };
    for run in power_of_two_runs(rows, MOST_ROWS_PER_INSERT) {
        let sql = statements.get(run.len());
        let query = run
            .iter()
            .fold(sqlx::query(sql), |query, row| bind(query, row));
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts lone rows sealed as they are written (see `sealed_insert_sql`): `rows` grouped by
/// tenant, each with its link in `links`. Each run of one tenant's rows takes its links only if
/// the tenant's head is still the one its first link was reckoned from, and then moves the head
/// to its last; otherwise the run is written unsealed. Returns, row by row, whether it took its
/// link.
pub async fn insert_many_sealed(
    conn: &mut sqlx::AnyConnection,
    rows: &[&AuditRow],
    links: &[Link],
) -> StoreResult<Vec<bool>> {
    let sqlite = super::is_sqlite(conn);
    let linked: Vec<(&AuditRow, &Link)> = rows.iter().copied().zip(links).collect();
    let mut took = Vec::with_capacity(linked.len());
    for tenant_rows in linked.chunk_by(|a, b| a.0.tenant_id == b.0.tenant_id) {
        for run in power_of_two_runs(tenant_rows, MOST_ROWS_PER_INSERT) {
            let (first, last) = (run[0].1, run[run.len() - 1].1);
            let tenant = run[0].0.tenant_id.as_str();
            let sql = if sqlite {
                SEALED_INSERT.get(run.len())
            } else {
                SEALED_INSERT_POSTGRES.get(run.len())
            };
            let query = run.iter().fold(sqlx::query(sql), |query, (row, link)| {
                bind(query, row)
                    .bind(link.seq)
                    .bind(&link.prev)
                    .bind(&link.hash)
            });
            let query = query
                .bind(tenant)
                .bind(first.seq - 1)
                .bind(&first.prev)
                .bind(last.seq)
                .bind(&last.hash);
            let moved = if sqlite {
                let query = query.bind(tenant).bind(first.seq - 1).bind(&first.prev);
                let changes = super::group_commit::changes(conn, query).await?;
                changes.last() == Some(&1)
            } else {
                query.fetch_one(&mut *conn).await?.try_get::<bool, _>(0)?
            };
            took.extend(std::iter::repeat_n(moved, run.len()));
        }
    }
    Ok(took)
}

/// The sealed insert of `rows` rows of one tenant with `?` parameters: each row's nine columns
/// and its link, then the head the first link follows; and the head's move to the last link.
fn sealed_insert_many_sql(rows: usize) -> String {
    let at_head = "tenant_id = ? AND head_seq = ? AND head_hash = ?";
    format!(
        "{INSERT_COLUMNS}, chain_seq, chain_prev, chain_hash) SELECT v.column1, v.column2, \
         v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, \
         CASE WHEN h.linked THEN v.column10 END, CASE WHEN h.linked THEN v.column11 END, \
         CASE WHEN h.linked THEN v.column12 END \
         FROM (VALUES {}) AS v, \
         (SELECT EXISTS (SELECT 1 FROM audit_chains WHERE {at_head}) AS linked) AS h; \
         UPDATE audit_chains SET head_seq = ?, head_hash = ? WHERE {at_head}",
        values_list(rows, 12, true)
    )
}

/// The same on PostgreSQL, as one statement with numbered parameters (the rows' twelve each,
/// then the tenant, the head the first link follows and the last link), answering whether the
/// head moved. The head moves first: a sealing transaction of another connection may hold it,
/// and the move then waits for its commit, finds the head elsewhere and leaves the rows
/// unsealed. Two statements, as on SQLite, would each see the head as it stood when they began.
/// Seals go in `audit_seals` (migration 0023 there), so each row takes its id before it is
/// written, for its seal to name.
fn sealed_insert_many_postgres_sql(rows: usize) -> String {
    let tenant = rows * 12 + 1;
    let (seq, prev, last_seq, last_hash) = (tenant + 1, tenant + 2, tenant + 3, tenant + 4);
    format!(
        "WITH moved AS (UPDATE audit_chains SET head_seq = ${last_seq}, head_hash = ${last_hash} \
         WHERE tenant_id = ${tenant} AND head_seq = ${seq} AND head_hash = ${prev} RETURNING 1), \
         v AS (SELECT nextval('audit_events_id_seq') AS id, * FROM (VALUES {}) AS r), \
         written AS (INSERT INTO audit_events (id, tenant_id, occurred_at_ms, event, client_id, \
         user_id, ip, user_agent, request_id, details) OVERRIDING SYSTEM VALUE SELECT id, \
         column1, column2, column3, column4, column5, column6, column7, column8, column9 FROM v), \
         sealed AS (INSERT INTO audit_seals (tenant_id, seq, event_id, prev, hash) \
         SELECT column1, column10, id, column11, column12 FROM v WHERE EXISTS (SELECT 1 FROM moved)) \
         SELECT EXISTS (SELECT 1 FROM moved)",
        values_list(rows, 12, false)
    )
}

/// A multi-row statement in each power-of-two length, formatted once, the first time a run of
/// that length is written (batches come many times a second; the text of each length never
/// changes).
struct ByRunLength {
    text: [OnceLock<String>; usize::BITS as usize],
    format: fn(usize) -> String,
}

impl ByRunLength {
    const fn new(format: fn(usize) -> String) -> Self {
        Self {
            text: [const { OnceLock::new() }; usize::BITS as usize],
            format,
        }
    }

    /// The statement for a run of `rows` rows, a power of two (`power_of_two_runs`).
    fn get(&self, rows: usize) -> &str {
        assert!(rows.is_power_of_two(), "runs are powers of two");
        self.text[rows.ilog2() as usize].get_or_init(|| (self.format)(rows))
    }
}

static INSERT_ANONYMOUS: ByRunLength = ByRunLength::new(|rows| insert_sql(rows, true));
static INSERT_NUMBERED: ByRunLength = ByRunLength::new(|rows| insert_sql(rows, false));
static SEALED_INSERT: ByRunLength = ByRunLength::new(sealed_insert_many_sql);
static SEALED_INSERT_POSTGRES: ByRunLength = ByRunLength::new(sealed_insert_many_postgres_sql);
static SEAL_ANONYMOUS: ByRunLength = ByRunLength::new(seal_sql);
static SEAL_INSERT: ByRunLength = ByRunLength::new(seal_insert_sql);

/// `items` cut into runs of at most `most` whose lengths are powers of two, longest first, so
/// that multi-row statements come in a few prepared forms, not one per count.
fn power_of_two_runs<T>(items: &[T], most: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (run, later) = rest.split_at(1 << rest.len().min(most).ilog2());
        rest = later;
        Some(run)
    })
}

/// The insert of `rows` rows, with `?` or numbered parameters.
fn insert_sql(rows: usize, anonymous: bool) -> String {
    format!(
        "{INSERT_COLUMNS}) VALUES {}",
        values_list(rows, 9, anonymous)
    )
}

/// `(…), (…)`: `rows` tuples of `columns` parameters, `?` or numbered `$1`…`$n` in order.
fn values_list(rows: usize, columns: usize, anonymous: bool) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|i| {
            let params: Vec<String> = (1..=columns)
                .map(|p| {
                    if anonymous {
                        "?".to_owned()
                    } else {
                        format!("${}", columns * i + p)
                    }
                })
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    tuples.join(", ")
}

/// An audit row as read back, with its place in the tenant's chain once sealed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredAudit {
    pub id: i64,
    pub occurred_at_ms: i64,
    pub event: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
    pub chain_seq: Option<i64>,
    pub chain_prev: Option<String>,
    pub chain_hash: Option<String>,
}

impl StoredAudit {
    /// What the row's chain hash covers besides its tenant and place.
    pub fn content(&self) -> Content<'_> {
        Content {
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

const COLUMNS: &str = "id, occurred_at_ms, event, client_id, user_id, ip, user_agent, \
                       request_id, details, chain_seq, chain_prev, chain_hash";

/// The tenant's rows in insertion order after row `after_id`, optionally of one event.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    after_id: i64,
    event: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<StoredAudit>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_rows WHERE tenant_id = $1 AND id > $2 \
         AND ($3 = '' OR event = $3) ORDER BY id LIMIT $4"
    );
    let rows = sqlx::query_as::<_, StoredAudit>(&sql)
        .bind(tenant_id)
        .bind(after_id)
        .bind(event.unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// What an export selects: a time range and optional filters.
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
}

/// One page of sealed rows in chain order after `after_seq`, within the filter.
pub async fn export_page<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    filter: &ExportFilter,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<StoredAudit>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_rows WHERE tenant_id = $1 AND chain_seq > $2 \
         AND occurred_at_ms >= $3 AND occurred_at_ms < $4 AND ($5 = '' OR event = $5) \
         AND ($6 = '' OR user_id = $6) AND ($7 = '' OR client_id = $7) \
         ORDER BY chain_seq LIMIT $8"
    );
    let rows = sqlx::query_as::<_, StoredAudit>(&sql)
        .bind(tenant_id)
        .bind(after_seq)
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .bind(filter.event.as_deref().unwrap_or(""))
        .bind(filter.user_id.as_deref().unwrap_or(""))
        .bind(filter.client_id.as_deref().unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// A tenant's chain: its last sealed row, and the row the kept chain starts after (0 and the
/// genesis hash until retention purges anything).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ChainHead {
    pub head_seq: i64,
    pub head_hash: String,
    pub anchor_seq: i64,
    pub anchor_hash: String,
}

/// Where the search for unsealed rows starts: on PostgreSQL, a transaction id below which
/// every row is sealed, learnt pass by pass (migrations 0022 and 0023 there: the index the
/// search reads holds every row, sealed or not, so a search from its start would walk them
/// all). It is kept in `audit_sealed_below` too, so that a restart, or another replica, does
/// not begin by walking the whole table. SQLite's index holds unsealed rows only, and needs no
/// start.
#[derive(Clone, Debug, Default)]
pub struct SealedBelow(Arc<AtomicI64>);

impl SealedBelow {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    /// The start, read from the database the first time (this process has learnt none yet).
    pub async fn start<'e>(&self, db: impl Executor<'e, Database = Any>) -> StoreResult<i64> {
        if self.get() == 0 {
            let kept = sqlx::query_scalar("SELECT xid FROM audit_sealed_below")
                .fetch_one(db)
                .await?;
            self.0.fetch_max(kept, Ordering::AcqRel);
        }
        Ok(self.get())
    }

    /// Records that every row written below `xid` is sealed, here and in the database.
    pub async fn advance_to<'e>(
        &self,
        db: impl Executor<'e, Database = Any>,
        xid: i64,
    ) -> StoreResult<()> {
        if self.0.fetch_max(xid, Ordering::AcqRel) < xid {
            sqlx::query("UPDATE audit_sealed_below SET xid = GREATEST(xid, $1)")
                .bind(xid)
                .execute(db)
                .await?;
        }
        Ok(())
    }
}

/// The xmin of a new snapshot (PostgreSQL): every transaction below it has ended, so every row
/// it wrote is visible to any later statement, or never will be.
pub async fn ended_below<'e>(db: impl Executor<'e, Database = Any>) -> StoreResult<i64> {
    let xid = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        .fetch_one(db)
        .await?;
    Ok(xid)
}

/// Tenants (and the `_system` bucket) with rows not yet sealed; on PostgreSQL, among rows
/// written from transaction `since` on.
pub async fn unsealed_tenants<'e>(
    db: impl Executor<'e, Database = Any>,
    since: Option<i64>,
) -> StoreResult<Vec<String>> {
    let tenants = match since {
        None => {
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_rows WHERE chain_seq IS NULL")
                .fetch_all(db)
                .await?
        }
        Some(since) => {
            static SQL: OnceLock<String> = OnceLock::new();
            let sql = SQL.get_or_init(|| {
                format!(
                    "SELECT DISTINCT tenant_id FROM audit_events e WHERE {}",
                    unsealed_since(1)
                )
            });
            sqlx::query_scalar(sql).bind(since).fetch_all(db).await?
        }
    };
    Ok(tenants)
}

/// On PostgreSQL, the condition on `audit_events e` that its row was written from transaction
/// `$since` on and has no seal yet. Written out rather than read through `audit_rows`, whose
/// outer join the planner would not turn into an anti-join for `chain_seq IS NULL` (it reads
/// both tables whole for that). The upper bound leaves out nothing (a statement sees only rows
/// written below its snapshot's xmax), but it tells the planner the range is narrow: with an
/// open-ended one and no statistics yet (a new table, or autovacuum off) it read all of the
/// tenant's rows through its index by time instead, and sorted them.
fn unsealed_since(since: usize) -> String {
    format!(
        "written_by >= ${since}::text::xid8 \
         AND written_by < pg_snapshot_xmax(pg_current_snapshot()) \
         AND NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.event_id = e.id)"
    )
}

/// Creates the tenant's chain if it has none yet.
pub async fn ensure_chain<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    genesis: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_chains (tenant_id, head_seq, head_hash, anchor_seq, anchor_hash) \
         VALUES ($1, 0, $2, 0, $2) ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(genesis)
    .execute(db)
    .await?;
    Ok(())
}

/// The tenant's chain, taking its row lock until the transaction ends (PostgreSQL; SQLite has
/// one writer anyway), so two sealers never extend one chain at once.
pub async fn lock_chain<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
) -> StoreResult<ChainHead> {
    let head = sqlx::query_as::<_, ChainHead>(
        "UPDATE audit_chains SET head_seq = head_seq WHERE tenant_id = $1 \
         RETURNING head_seq, head_hash, anchor_seq, anchor_hash",
    )
    .bind(tenant_id)
    .fetch_one(db)
    .await?;
    Ok(head)
}

pub async fn chain<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
) -> StoreResult<Option<ChainHead>> {
    let head = sqlx::query_as::<_, ChainHead>(
        "SELECT head_seq, head_hash, anchor_seq, anchor_hash FROM audit_chains \
         WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db)
    .await?;
    Ok(head)
}

/// On PostgreSQL, where a search for unsealed rows starts: after row `id` of transaction
/// `xid`, in the order `unsealed` returns rows (their transactions', then their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After {
    pub xid: i64,
    pub id: i64,
}

impl After {
    /// Before every row written by transaction `xid` or a later one.
    pub fn start_of(xid: i64) -> Self {
        Self { xid, id: i64::MIN }
    }
}

/// A row waiting for its seal, with (on PostgreSQL) the transaction that wrote it.
#[derive(Debug, sqlx::FromRow)]
pub struct Unsealed {
    #[sqlx(flatten)]
    pub row: StoredAudit,
    /// Not named `written_by`: an output column of that name would be what `ORDER BY
    /// written_by` sorts by, and the scan could no longer follow the index.
    #[sqlx(default)]
    writer_xid: Option<i64>,
}

impl Unsealed {
    /// Where the search for the rows after this one starts (PostgreSQL).
    pub fn after(&self) -> Option<After> {
        self.writer_xid.map(|xid| After {
            xid,
            id: self.row.id,
        })
    }
}

/// The tenant's oldest rows not yet sealed: in insertion order on SQLite, and on PostgreSQL,
/// among rows written after `after`, in the order their transactions began.
pub async fn unsealed<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    after: Option<After>,
    limit: i64,
) -> StoreResult<Vec<Unsealed>> {
    static BY_ID: OnceLock<String> = OnceLock::new();
    static BY_WRITER: OnceLock<String> = OnceLock::new();
    let sql = match after {
        None => BY_ID.get_or_init(|| {
            format!(
                "SELECT {COLUMNS} FROM audit_rows WHERE tenant_id = $1 AND chain_seq IS NULL \
                 ORDER BY id LIMIT $2"
            )
        }),
        // The row comparison follows `audit_events_by_writer` (written_by, tenant_id, id), so
        // the scan begins right after the row: one transaction's many rows are not read again.
        Some(_) => BY_WRITER.get_or_init(|| {
            format!(
                "SELECT id, occurred_at_ms, event, client_id, user_id, ip, user_agent, \
                 request_id, details, NULL::bigint AS chain_seq, NULL::text AS chain_prev, \
                 NULL::text AS chain_hash, written_by::text::bigint AS writer_xid \
                 FROM audit_events e WHERE tenant_id = $1 AND {} \
                 AND (written_by, tenant_id, id) > ($3::text::xid8, $1, $4) \
                 ORDER BY written_by, id LIMIT $2",
                unsealed_since(3)
            )
        }),
    };
    let query = sqlx::query_as::<_, Unsealed>(sql)
        .bind(tenant_id)
        .bind(limit);
    let query = match after {
        None => query,
        Some(after) => query.bind(after.xid).bind(after.id),
    };
    Ok(query.fetch_all(db).await?)
}

/// How many of the tenant's rows wait to be sealed.
pub async fn unsealed_count<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
) -> StoreResult<i64> {
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_rows WHERE tenant_id = $1 AND chain_seq IS NULL",
    )
    .bind(tenant_id)
    .fetch_one(db)
    .await?;
    Ok(count)
}

/// A stored row and the place in its chain sealing computed for it.
#[derive(Clone, Debug)]
pub struct Seal {
    pub id: i64,
    pub link: Link,
}

/// Makes PostgreSQL plan the rest of this transaction's statements for the tables as they are
/// now. It keeps a prepared statement's generic plan for the connection's life, or until the
/// next ANALYZE: one made while `audit_events` was small (a new database) reads all of it to
/// find a batch's rows, and would go on doing so as it grows. The sealing transactions run a
/// few times a second; planning each costs less than one such scan.
pub async fn plan_for_current_sizes(conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    if !super::is_sqlite(conn) {
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Seals rows of the tenant with as few statements as power-of-two runs allow (sealing shares
/// SQLite's one writer with every request, so each statement seals many rows), keeping a few
/// prepared forms on the connection rather than one per batch size, which would push the token
/// endpoint's own statements out of its cache.
pub async fn seal_rows(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    seals: &[Seal],
) -> StoreResult<()> {
    // Plain `?` on SQLite, as in `insert_many`: it binds in order, where `$n` is looked up by
    // name, which costs quadratic time in the number of parameters.
    let sqlite = super::is_sqlite(conn);
    let statements = if sqlite {
        &SEAL_ANONYMOUS
    } else {
        &SEAL_INSERT
    };
    for run in power_of_two_runs(seals, usize::MAX) {
        let sql = statements.get(run.len());
        let query = run.iter().fold(sqlx::query(sql), |query, seal| {
            query
                .bind(seal.id)
                .bind(seal.link.seq)
                .bind(&seal.link.prev)
                .bind(&seal.link.hash)
        });
        let query = if sqlite { query } else { query.bind(tenant_id) };
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The update that seals `rows` rows on SQLite, where the seal is part of the row.
fn seal_sql(rows: usize) -> String {
    // Both databases name the columns of a VALUES list column1, column2, ...
    format!(
        "UPDATE audit_events SET chain_seq = v.column2, chain_prev = v.column3, \
         chain_hash = v.column4 FROM (VALUES {}) AS v WHERE audit_events.id = v.column1",
        values_list(rows, 4, true)
    )
}

/// The insert of `rows` seals on PostgreSQL, where seals have a table of their own: each row's
/// id, sequence, previous hash and hash, then the tenant.
fn seal_insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO audit_seals (event_id, seq, prev, hash, tenant_id) \
         SELECT v.column1, v.column2, v.column3, v.column4, ${} FROM (VALUES {}) AS v",
        rows * 4 + 1,
        values_list(rows, 4, false)
    )
}

pub async fn set_head<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    seq: i64,
    hash: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE audit_chains SET head_seq = $2, head_hash = $3 WHERE tenant_id = $1")
        .bind(tenant_id)
        .bind(seq)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

/// The tenant's sealed rows in chain order after `after_seq`.
pub async fn sealed_after<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<StoredAudit>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_rows WHERE tenant_id = $1 AND chain_seq > $2 \
         ORDER BY chain_seq LIMIT $3"
    );
    let rows = sqlx::query_as::<_, StoredAudit>(&sql)
        .bind(tenant_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// The last sealed row older than `before_ms`, which retention may purge up to.
pub async fn last_sealed_before<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant_id: &str,
    before_ms: i64,
) -> StoreResult<Option<(i64, String)>> {
    // Chain order and time order may differ by a moment; purge only a prefix of the chain.
    let row = sqlx::query_as::<_, (i64, String)>(
        "SELECT chain_seq, chain_hash FROM audit_rows WHERE tenant_id = $1 \
         AND chain_seq IS NOT NULL AND chain_seq < COALESCE((SELECT MIN(chain_seq) \
         FROM audit_rows WHERE tenant_id = $1 AND chain_seq IS NOT NULL \
         AND occurred_at_ms >= $2), 9223372036854775807) \
         ORDER BY chain_seq DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(before_ms)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Deletes the tenant's sealed rows up to `seq` and moves the chain's anchor there; returns how
/// many rows went.
pub async fn purge_through(
    tx: &mut super::Tx,
    tenant_id: &str,
    seq: i64,
    hash: &str,
) -> StoreResult<u64> {
    let sql = if super::is_sqlite(tx) {
        "DELETE FROM audit_events WHERE tenant_id = $1 AND chain_seq IS NOT NULL \
         AND chain_seq <= $2"
    } else {
        "WITH gone AS (DELETE FROM audit_seals WHERE tenant_id = $1 AND seq <= $2 \
         RETURNING event_id) DELETE FROM audit_events WHERE id IN (SELECT event_id FROM gone)"
    };
    let deleted = sqlx::query(sql)
        .bind(tenant_id)
        .bind(seq)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE audit_chains SET anchor_seq = $2, anchor_hash = $3 \
         WHERE tenant_id = $1 AND anchor_seq < $2",
    )
    .bind(tenant_id)
    .bind(seq)
    .bind(hash)
    .execute(&mut **tx)
    .await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_statements_number_their_parameters_in_order_or_leave_them_anonymous() {
        assert_eq!(
            values_list(2, 4, false),
            "($1, $2, $3, $4), ($5, $6, $7, $8)"
        );
        assert_eq!(values_list(2, 4, true), "(?, ?, ?, ?), (?, ?, ?, ?)");
        assert!(
            seal_sql(1)
                .ends_with("FROM (VALUES (?, ?, ?, ?)) AS v WHERE audit_events.id = v.column1")
        );
        assert!(
            seal_insert_sql(2)
                .ends_with("v.column4, $9 FROM (VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)) AS v")
        );
        assert!(insert_sql(1, true).ends_with("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    }

    #[test]
    fn the_postgres_sealed_insert_numbers_the_head_after_the_rows() {
        let sql = sealed_insert_many_postgres_sql(2);
        assert!(sql.starts_with(
            "WITH moved AS (UPDATE audit_chains SET head_seq = $28, head_hash = $29 \
             WHERE tenant_id = $25 AND head_seq = $26 AND head_hash = $27 RETURNING 1)"
        ));
        assert!(sql.contains("(VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12), ($13,"));
        assert!(sql.contains("$24)) AS r)"));
        assert_eq!(SEALED_INSERT_POSTGRES.get(2), sql);
    }

    #[test]
    fn rows_go_in_power_of_two_runs_of_at_most_the_cap() {
        let rows: Vec<u32> = (0..37).collect();
        let lengths: Vec<usize> = power_of_two_runs(&rows, 64).map(<[u32]>::len).collect();
        assert_eq!(lengths, [32, 4, 1]);
        let lengths: Vec<usize> = power_of_two_runs(&rows, 8).map(<[u32]>::len).collect();
        assert_eq!(lengths, [8, 8, 8, 8, 4, 1]);
        let joined: Vec<u32> = power_of_two_runs(&rows, 8).flatten().copied().collect();
        assert_eq!(joined, rows);
        assert_eq!(power_of_two_runs::<u32>(&[], 8).count(), 0);
    }

    #[test]
    fn each_run_length_has_its_own_statement_formatted_once() {
        let four = INSERT_NUMBERED.get(4);
        assert_eq!(four, insert_sql(4, false));
        assert!(std::ptr::eq(four, INSERT_NUMBERED.get(4)));
        assert_eq!(INSERT_NUMBERED.get(8), insert_sql(8, false));
        assert_eq!(SEAL_ANONYMOUS.get(1), seal_sql(1));
        assert_eq!(SEALED_INSERT.get(2), sealed_insert_many_sql(2));
    }

    #[test]
    #[should_panic(expected = "powers of two")]
    fn a_run_length_other_than_a_power_of_two_has_no_statement() {
        INSERT_NUMBERED.get(3);
    }
}
