//! Connections kept warm between queries, in front of sqlx's pool.
//!
//! sqlx pings every connection given back to its pool, in a task of its own: a query dropped
//! half-way can leave a connection mid-protocol, and the ping finds out. A connection whose
//! query ran to its end is known to be clean, so it comes back here instead and the next query
//! takes it as it is: no task, no round trip (about a fifth of the work of a read on
//! PostgreSQL; bench/RESULTS.md). A connection whose query failed or was dropped is not put
//! back here; it goes back to sqlx and its ping.
//!
//! Connections kept here never reach callers waiting in sqlx's pool, so no more than `most`
//! are lent or warm at once, and callers wait their turn here, first come first served.

use std::{
    fmt,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures_util::{TryStreamExt, future::BoxFuture, stream::BoxStream};
use sqlx::{
    Any, AnyPool, Database, Describe, Either, Error, Execute, Executor, pool::PoolConnection,
};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A connection idle for longer goes back to sqlx, whose pool checks it (PostgreSQL: see
/// `TRUSTED_IDLE`) before handing it out again.
const STALE_AFTER: Duration = Duration::from_secs(1);
/// How long a connection may go round here before it goes back to sqlx once, so that the
/// pool's lifetime limit and idle reaper still see it.
const TURNOVER: Duration = Duration::from_secs(60);

/// An executor, as a pool is (`sqlx::query(..).fetch_one(&warm)`), and a lender of
/// connections for work of more than one statement (`lend`).
pub struct WarmPool {
    pool: AnyPool,
    /// Warm connections, the most recently used last.
    idle: Mutex<Vec<Warm>>,
    /// One per connection lent or warm: as many as the pool has, or fewer when the pool has
    /// other users, who would otherwise wait for connections held here.
    turns: Semaphore,
    /// How long a caller waits for a turn and then for the pool.
    acquire_timeout: Duration,
}

struct Warm {
    conn: PoolConnection<Any>,
    /// When it left sqlx's pool.
    acquired: Instant,
    /// When its last query ended.
    released: Instant,
}

/// A connection lent for one piece of work; it returns here only through `finished`, and
/// otherwise to sqlx when dropped.
pub struct Loan<'w> {
    conn: PoolConnection<Any>,
    acquired: Instant,
    owner: &'w WarmPool,
    _turn: SemaphorePermit<'w>,
}

impl WarmPool {
    /// Lends at most `most` of `pool`'s connections at once.
    pub fn new(pool: AnyPool, most: usize, acquire_timeout: Duration) -> Self {
        Self {
            pool,
            idle: Mutex::new(Vec::with_capacity(most)),
            turns: Semaphore::new(most),
            acquire_timeout,
        }
    }

    /// The pool behind, for what needs a connection of its own (transactions).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Gives every warm connection back to sqlx, then closes the pool.
    pub async fn close(&self) {
        self.turns.close();
        drop(std::mem::take(&mut *self.lock()));
        self.pool.close().await;
    }

    /// How many connections are warm now.
    pub fn warm(&self) -> usize {
        self.lock().len()
    }

    /// A warm connection, or one of the pool's.
    pub async fn lend(&self) -> Result<Loan<'_>, Error> {
        tokio::time::timeout(self.acquire_timeout, self.lend_in_turn())
            .await
            .map_err(|_| Error::PoolTimedOut)?
    }

    async fn lend_in_turn(&self) -> Result<Loan<'_>, Error> {
        let turn = self.turns.acquire().await.map_err(|_| Error::PoolClosed)?;
        let now = Instant::now();
        let (warm, stale) = {
            let mut idle = self.lock();
            let stale = take_stale(&mut idle, now);
            (idle.pop(), stale)
        };
        // Dropped outside the lock: each drop spawns sqlx's release task.
        drop(stale);
        let (conn, acquired) = match warm {
            Some(Warm { conn, acquired, .. }) => (conn, acquired),
            None => (self.pool.acquire().await?, now),
        };
        Ok(Loan {
            conn,
            acquired,
            owner: self,
            _turn: turn,
        })
    }

    fn keep(&self, conn: PoolConnection<Any>, acquired: Instant) {
        let now = Instant::now();
        if now.duration_since(acquired) > TURNOVER || self.pool.is_closed() {
            return;
        }
        let stale = {
            let mut idle = self.lock();
            let stale = take_stale(&mut idle, now);
            idle.push(Warm {
                conn,
                acquired,
                released: now,
            });
            stale
        };
        drop(stale);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        // The list stays whole whatever panicked while holding it.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes the connections idle for longer than `STALE_AFTER` (the first ones: the list is in
/// the order they were released).
fn take_stale(idle: &mut Vec<Warm>, now: Instant) -> Vec<Warm> {
    let fresh = idle.partition_point(|w| now.duration_since(w.released) > STALE_AFTER);
    idle.drain(..fresh).collect()
}

impl Loan<'_> {
    /// Gives the connection back warm: call it only once the work on it ran to its end without
    /// an error, so that nothing is left half-sent or unread on the connection.
    pub fn finished(self) {
        self.owner.keep(self.conn, self.acquired);
    }
}

impl std::ops::Deref for Loan<'_> {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loan").finish_non_exhaustive()
    }
}

impl fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmPool")
            .field("pool", &self.pool)
            .field("turns", &self.turns.available_permits())
            .finish_non_exhaustive()
    }
}

/// As sqlx's `impl Executor for &Pool`, but lending a warm connection.
impl<'w> Executor<'w> for &'w WarmPool {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<<Any as Database>::QueryResult, <Any as Database>::Row>, Error>>
    where
        'w: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async_stream::try_stream! {
            let mut loan = self.lend().await?;
            let mut results = (&mut *loan).fetch_many(query);
            while let Some(result) = results.try_next().await? {
                yield result;
            }
            drop(results);
            loan.finished();
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<<Any as Database>::Row>, Error>>
    where
        'w: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async move {
            let mut loan = self.lend().await?;
            let row = (&mut *loan).fetch_optional(query).await?;
            loan.finished();
            Ok(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<Any as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Any as Database>::Statement<'q>, Error>>
    where
        'w: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'w: 'e,
    {
        self.pool.describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use sqlx::any::AnyPoolOptions;

    use super::*;

    /// Each connection to `sqlite::memory:` has a database of its own, so a table one query
    /// made is seen only by queries on the same connection.
    async fn warm_pool(connections: u32, most: usize) -> WarmPool {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        WarmPool::new(pool, most, Duration::from_secs(3))
    }

    async fn execute(warm: &WarmPool, sql: &str) {
        sqlx::query(sql).execute(warm).await.unwrap();
    }

    async fn two_numbers(warm: &WarmPool) {
        execute(warm, "CREATE TABLE numbers AS SELECT 1 AS n UNION SELECT 2").await;
    }

    async fn numbers(warm: &WarmPool) -> Vec<i64> {
        sqlx::query_scalar("SELECT n FROM numbers ORDER BY n")
            .fetch_all(warm)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_finished_query_leaves_its_connection_for_the_next() {
        let warm = warm_pool(4, 4).await;
        two_numbers(&warm).await;
        assert_eq!(warm.warm(), 1);
        assert_eq!(numbers(&warm).await, [1, 2]);
        let one: i64 = sqlx::query_scalar("SELECT min(n) FROM numbers")
            .fetch_one(&warm)
            .await
            .unwrap();
        assert_eq!(one, 1);
        assert_eq!(warm.warm(), 1);
        assert_eq!(warm.pool().size(), 1, "no second connection was opened");
    }

    #[tokio::test]
    async fn a_failed_query_gives_its_connection_back_to_the_pool() {
        let warm = warm_pool(4, 4).await;
        execute(&warm, "CREATE TABLE numbers (n INTEGER)").await;
        assert!(
            sqlx::query("SELECT * FROM missing")
                .execute(&warm)
                .await
                .is_err()
        );
        assert!(
            sqlx::query("SELECT * FROM missing")
                .fetch_optional(&warm)
                .await
                .is_err()
        );
        assert_eq!(warm.warm(), 0);
    }

    #[tokio::test]
    async fn a_query_dropped_half_way_gives_its_connection_back_to_the_pool() {
        let warm = warm_pool(4, 4).await;
        two_numbers(&warm).await;
        let mut rows = sqlx::query("SELECT n FROM numbers").fetch(&warm);
        assert!(rows.next().await.unwrap().is_ok());
        drop(rows);
        assert_eq!(warm.warm(), 0);
    }

    #[tokio::test]
    async fn no_more_than_the_bound_are_lent_and_the_next_caller_has_the_first_back() {
        let warm = warm_pool(4, 2).await;
        let first = warm.lend().await.unwrap();
        let second = warm.lend().await.unwrap();
        let short = Duration::from_millis(50);
        assert!(tokio::time::timeout(short, warm.lend()).await.is_err());
        first.finished();
        let third = tokio::time::timeout(short, warm.lend()).await.unwrap();
        assert!(third.is_ok());
        assert_eq!(
            warm.pool().size(),
            2,
            "the third took the first's connection"
        );
        drop(second);
    }

    #[tokio::test]
    async fn a_caller_waits_no_longer_than_the_acquire_timeout() {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let warm = WarmPool::new(pool, 1, Duration::from_millis(100));
        let _held = warm.lend().await.unwrap();
        assert!(matches!(warm.lend().await, Err(Error::PoolTimedOut)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_beyond_the_bound_all_have_their_turn() {
        let warm = std::sync::Arc::new(warm_pool(2, 2).await);
        let callers = (0..16).map(|_| {
            let warm = warm.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    sqlx::query("SELECT 1").execute(&*warm).await?;
                }
                Ok::<_, Error>(())
            })
        });
        for caller in futures_util::future::join_all(callers).await {
            caller.unwrap().unwrap();
        }
        assert!(warm.pool().size() <= 2);
    }

    #[tokio::test]
    async fn a_connection_idle_too_long_is_not_lent_again() {
        let warm = warm_pool(4, 4).await;
        execute(&warm, "SELECT 1").await;
        let now = Instant::now();
        assert!(take_stale(&mut warm.lock(), now).is_empty());
        let later = now + STALE_AFTER + Duration::from_millis(1);
        assert_eq!(take_stale(&mut warm.lock(), later).len(), 1);
        assert_eq!(warm.warm(), 0);
    }

    #[tokio::test]
    async fn a_connection_goes_back_to_the_pool_once_in_a_while() {
        let warm = warm_pool(4, 4).await;
        let mut loan = warm.lend().await.unwrap();
        loan.acquired = Instant::now()
            .checked_sub(TURNOVER + Duration::from_secs(1))
            .unwrap();
        loan.finished();
        assert_eq!(warm.warm(), 0);
        warm.lend().await.unwrap().finished();
        assert_eq!(warm.warm(), 1);
    }

    #[tokio::test]
    async fn closing_gives_warm_connections_back_first() {
        let warm = warm_pool(4, 4).await;
        execute(&warm, "SELECT 1").await;
        assert_eq!(warm.warm(), 1);
        tokio::time::timeout(Duration::from_secs(5), warm.close())
            .await
            .expect("the pool closes without waiting for warm connections");
        assert_eq!(warm.warm(), 0);
        assert!(sqlx::query("SELECT 1").execute(&warm).await.is_err());
    }
}
