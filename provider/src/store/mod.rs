//! Storage on SQLite (embedded default) or PostgreSQL through sqlx's `Any` driver, with SQL both
//! accept (`$n` placeholders, `RETURNING`, `ON CONFLICT`). One file per table family; every
//! function on tenant-owned rows takes the tenant first.
//!
//! SQLite allows one writer at a time, so writes go through a one-connection pool and reads use
//! their own pool: writers queue in-process instead of failing with `SQLITE_BUSY`, and WAL lets
//! reads run beside them.

pub mod audit;
pub mod chain_heads;
pub mod client_assertions;
pub mod clients;
pub mod consents;
pub mod dpop;
pub mod group_commit;
pub mod instance;
pub mod keys;
pub mod outbox;
pub mod pushed;
pub mod refresh;
pub mod retention;
pub mod revoked_tokens;
pub mod sessions;
pub mod sign_in;
pub mod tenants;
pub mod users;
pub mod warm_pool;
pub mod web_sessions;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    Any, AnyPool, Executor, Transaction,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use self::warm_pool::WarmPool;
use crate::config::{Backend, DatabaseUrl};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Connections to SQLite for reads (writes have one of their own).
const SQLITE_READERS: u32 = 8;
/// Connections to PostgreSQL, for reads and writes.
const POSTGRES_CONNECTIONS: u32 = 16;
/// How long a caller waits for a connection before the request is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a PostgreSQL connection may have been idle and still be handed out without a
/// ping. sqlx pings every connection it takes back; one used again within this window (all of
/// them, under load) is spared a second round trip on the way out, as HikariCP does.
const TRUSTED_IDLE: Duration = Duration::from_secs(1);
/// WAL lets readers run beside the writer; `synchronous = FULL` makes every commit durable;
/// the busy timeout (ms) is how long SQLite waits on another process's write lock. A
/// checkpoint every 250 WAL pages (1 MB) instead of SQLite's 1,000 keeps each one short:
/// under load the commit that runs it no longer stalls the batch behind it (p99 of the token
/// endpoint −25% for −5% of its peak; bench/RESULTS.md).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 250;";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    /// Lock contention or a serialization failure; the request may be retried.
    #[error("database busy")]
    Busy,
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(err)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::Database(db) if is_retryable(db.code().as_deref()) => Self::Busy,
            _ => Self::Other(err),
        }
    }
}

/// SQLite BUSY/LOCKED (with extended codes) and PostgreSQL serialization or deadlock failures.
fn is_retryable(code: Option<&str>) -> bool {
    match code {
        Some("40001" | "40P01") => true,
        Some(code) => code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
        None => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type Tx = Transaction<'static, Any>;

/// Commits a transaction begun with `Store::begin`.
pub async fn commit(tx: Tx) -> StoreResult<()> {
    Ok(tx.commit().await?)
}

#[derive(Clone, Debug)]
pub struct Store {
    reader: Arc<WarmPool>,
    writer: AnyPool,
    backend: Backend,
    writes: group_commit::Writer,
    sealed_below: audit::SealedBelow,
}

impl Store {
    /// Connects (creating the SQLite file and its folder if needed) without migrating.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url.as_str())?;
        match url.backend() {
            Backend::Sqlite => {
                if let Some(dir) = url.sqlite_path().as_deref().and_then(|p| p.parent())
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)?;
                }
                let writer = sqlite_pool(1).connect_with(options.clone()).await?;
                let reader = sqlite_pool(SQLITE_READERS).connect_with(options).await?;
                Ok(Self {
                    // Reads are this pool's only users: every connection may be kept warm.
                    reader: Arc::new(WarmPool::new(
                        reader,
                        SQLITE_READERS as usize,
                        ACQUIRE_TIMEOUT,
                    )),
                    writes: group_commit::Writer::batching(writer.clone()),
                    writer,
                    backend: Backend::Sqlite,
                    sealed_below: audit::SealedBelow::default(),
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for > TRUSTED_IDLE {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await?;
                // Reads and writes share the pool; half of it may be kept warm, the rest
                // stays for transactions and the batching task.
                let warm = Arc::new(WarmPool::new(
                    pool.clone(),
                    POSTGRES_CONNECTIONS as usize / 2,
                    ACQUIRE_TIMEOUT,
                ));
                Ok(Self {
                    writes: group_commit::Writer::direct_writes(warm.clone()),
                    reader: warm,
                    writer: pool,
                    backend: Backend::Postgres,
                    sealed_below: audit::SealedBelow::default(),
                })
            }
        }
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.writer).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.writer).await,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Writes a consistent copy of a SQLite database to `path` while it serves (`VACUUM INTO`
    /// reads one snapshot; writers carry on). PostgreSQL has `pg_dump` for this.
    pub async fn backup_to(&self, path: &str) -> StoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Corrupt(
                "backups of PostgreSQL are taken with pg_dump".to_owned(),
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A write transaction; commit it to keep the change and its audit row together.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(self.writer.begin().await?)
    }

    /// Runs a write in a transaction shared with concurrent requests' writes (SQLite) or of
    /// its own (PostgreSQL); returns its outcome once committed. See `group_commit`.
    pub async fn write<W: group_commit::Write>(&self, write: W) -> StoreResult<W::Output> {
        self.writes.write(write).await
    }

    /// Writes an audit row that has no change to ride in, sharing a commit (and on SQLite one
    /// insert) with concurrent requests' writes; returns once it is committed.
    pub async fn append_audit(&self, row: audit::AuditRow) -> StoreResult<()> {
        self.writes.append_audit(row).await
    }

    /// Seals the audit rows written through the group commit as they are written, with
    /// `digester` (see `chain_heads`; on PostgreSQL the lone rows only); other rows are sealed
    /// by the sealing task.
    pub fn seal_audit_as_written(&self, digester: std::sync::Arc<crate::crypto::SecretDigester>) {
        self.writes.chain_heads().seal_with(digester);
    }

    /// Tells the writer that something else moves the tenant's chain head (the sealing task,
    /// inside its transaction).
    pub fn forget_chain_head(&self, tenant: &str) {
        self.writes.chain_heads().forget(tenant);
    }

    /// Where the sealer's search for unsealed audit rows starts (PostgreSQL; see
    /// `audit::SealedBelow`).
    pub fn audit_sealed_below(&self) -> Option<&audit::SealedBelow> {
        (self.backend == Backend::Postgres).then_some(&self.sealed_below)
    }

    /// The transaction the sealer's search starts from: on PostgreSQL, `audit_sealed_below`'s
    /// start (read from the database the first time); SQLite needs none.
    pub async fn audit_search_start<'e>(
        &self,
        db: impl Executor<'e, Database = Any>,
    ) -> StoreResult<Option<i64>> {
        match self.audit_sealed_below() {
            Some(sealed_below) => Ok(Some(sealed_below.start(db).await?)),
            None => Ok(None),
        }
    }

    /// The pool for a single write that needs no transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &WarmPool {
        &self.reader
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> StoreResult<()> {
        // Through the warm connections: under load they may be all the reader pool has.
        sqlx::query("SELECT 1").execute(&*self.reader).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Whether a connection is to SQLite, for the few writes with a faster form there.
pub(crate) fn is_sqlite(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

fn sqlite_pool(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A connection to a local file cannot go stale; a ping per acquire is a round trip
        // to its thread for nothing.
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::Executor::execute(conn, SQLITE_PRAGMAS).await?;
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_serialization_failures_are_retryable() {
        for code in ["5", "6", "261", "517", "40001", "40P01"] {
            assert!(is_retryable(Some(code)), "{code}");
        }
        for code in ["19", "2067", "23505", "42P01"] {
            assert!(!is_retryable(Some(code)), "{code}");
        }
        assert!(!is_retryable(None));
    }
}
