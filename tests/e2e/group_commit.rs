//! Group commit (`provider::store::group_commit`), through the store of a running server:
//! concurrent writes each get their own outcome once committed, and a write that fails halfway
//! leaves nothing behind and does not fail the writes it shared a transaction with. Writes with
//! a SQLite chain, joined with their like into one request (on PostgreSQL, run as one
//! statement each), each get their own outcome, and one that fails rolls its batch back
//! without losing the others (on PostgreSQL, writes nothing of its own). Lone
//! audit rows share transactions on both databases, are sealed as they are written there even
//! while the sealing task moves the heads, and one the database refuses fails alone.

use std::{future::Future, pin::Pin, sync::LazyLock};

use e2e::{Backend, TestServer, both_databases};
use provider::{
    audit::chain,
    store::{
        StoreError, StoreResult,
        audit::{self, AuditRow},
        group_commit::{AnyQuery, Chain, Write, first_applied, run_chain},
    },
};
use sqlx::AnyConnection;

fn audit_row(tenant: &str, event: &str, n: usize) -> AuditRow {
    AuditRow {
        tenant_id: tenant.to_owned(),
        occurred_at_ms: 1,
        event: event.to_owned(),
        client_id: None,
        user_id: None,
        ip: None,
        user_agent: None,
        request_id: None,
        details: format!("{{\"n\":{n}}}"),
    }
}

/// An audit row, then the same revoked token id twice: the second insert conflicts.
struct FailsHalfway {
    row: AuditRow,
    jti: String,
}

impl Write for FailsHalfway {
    type Output = ();

    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
    ) -> Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'c>> {
        Box::pin(async move {
            audit::insert(&mut *conn, &self.row).await?;
            for _ in 0..2 {
                sqlx::query(
                    "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) \
                     VALUES ($1, $2, 0, 0)",
                )
                .bind(&self.row.tenant_id)
                .bind(&self.jti)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        })
    }
}

/// Revokes a token id unless it is revoked already, with an audit row when it did: a write
/// with a SQLite chain and a one-statement PostgreSQL form, as the code exchange and the
/// refresh rotation are. Without a token id the insert breaks a NOT NULL constraint on both
/// databases.
struct RevokeOnce {
    row: AuditRow,
    jti: Option<String>,
}

const REVOKE: &str = "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) \
                      VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING;";
static REVOKE_THEN_AUDIT: LazyLock<String> =
    LazyLock::new(|| [REVOKE, &audit::guarded_insert_sql(3)].concat());
static REVOKE_THEN_AUDIT_SEALED: LazyLock<String> =
    LazyLock::new(|| [REVOKE, &audit::sealed_insert_sql(3, 12)].concat());

impl Chain for RevokeOnce {
    type Output = bool;

    fn sql(&self) -> &'static str {
        &REVOKE_THEN_AUDIT
    }

    fn sealed_sql(&self) -> Option<&'static str> {
        Some(&REVOKE_THEN_AUDIT_SEALED)
    }

    fn audit_row(&self) -> Option<&AuditRow> {
        Some(&self.row)
    }

    fn postgres_sql(&self) -> Option<&'static str> {
        Some(
            "WITH revoked AS (INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) \
             VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING RETURNING 1) \
             INSERT INTO audit_events (tenant_id, occurred_at_ms, event, client_id, user_id, ip, \
             user_agent, request_id, details) \
             SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM revoked",
        )
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        audit::bind(query.bind(&self.row.tenant_id).bind(&self.jti), &self.row)
    }

    fn output(&self, changes: &[u64]) -> bool {
        first_applied(changes)
    }
}

impl Write for RevokeOnce {
    type Output = bool;

    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
    ) -> Pin<Box<dyn Future<Output = StoreResult<bool>> + Send + 'c>> {
        Box::pin(run_chain(conn, self))
    }

    fn chain(&self) -> Option<&dyn Chain<Output = bool>> {
        Some(self)
    }
}

async fn count(s: &TestServer, sql: &str, tenant: &str, value: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(tenant)
        .bind(value)
        .fetch_one(s.state.store.reader())
        .await
        .unwrap()
}

async fn a_failing_write_leaves_nothing_and_fails_alone(s: TestServer) {
    let tenant = s.create_tenant().await.id;
    // Spawned together, they queue for the writer together and share transactions.
    let good: Vec<_> = (0..60)
        .map(|n| {
            let (store, row) = (s.state.store.clone(), audit_row(&tenant, "test.good", n));
            tokio::spawn(async move { store.append_audit(row).await })
        })
        .collect();
    let store = s.state.store.clone();
    let halfway = audit_row(&tenant, "test.halfway", 0);
    let bad = tokio::spawn(async move {
        let write = FailsHalfway {
            row: halfway,
            jti: "twice".into(),
        };
        store.write(write).await
    });
    let mut outcomes = Vec::new();
    for task in good {
        outcomes.push(task.await.unwrap());
    }
    let bad = bad.await.unwrap();

    assert!(
        matches!(bad, Err(StoreError::Conflict)),
        "the failing write gets its own error: {bad:?}"
    );
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let events = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event = $2";
    assert_eq!(count(&s, events, &tenant, "test.good").await, 60);
    assert_eq!(
        count(&s, events, &tenant, "test.halfway").await,
        0,
        "the failed write's first statement was rolled back"
    );
    let revoked = "SELECT COUNT(*) FROM revoked_tokens WHERE tenant_id = $1 AND jti = $2";
    assert_eq!(count(&s, revoked, &tenant, "twice").await, 0);

    // The writer is still serving after the failure.
    s.state
        .store
        .append_audit(audit_row(&tenant, "test.after", 0))
        .await
        .unwrap();
    assert_eq!(count(&s, events, &tenant, "test.after").await, 1);
}

async fn chained_writes_in_one_batch_each_get_their_own_outcome(s: TestServer) {
    let tenant = s.create_tenant().await.id;
    // Ten token ids, each revoked by four writes at once: one of each four applies.
    let writes: Vec<_> = (0..40)
        .map(|n| {
            let store = s.state.store.clone();
            let write = RevokeOnce {
                row: audit_row(&tenant, "test.revoked", n),
                jti: Some(format!("j{}", n % 10)),
            };
            tokio::spawn(async move { (n % 10, store.write(write).await) })
        })
        .collect();
    // A failing write among them: its batch is rolled back and every write runs again alone.
    let store = s.state.store.clone();
    let halfway = audit_row(&tenant, "test.halfway", 0);
    let bad = tokio::spawn(async move {
        let write = FailsHalfway {
            row: halfway,
            jti: "twice".into(),
        };
        store.write(write).await
    });
    let mut applied = [0; 10];
    for task in writes {
        let (jti, outcome) = task.await.unwrap();
        if outcome.expect("a chained write succeeds") {
            applied[jti] += 1;
        }
    }
    assert!(matches!(bad.await.unwrap(), Err(StoreError::Conflict)));

    assert_eq!(applied, [1; 10], "exactly one write per token id applied");
    let events = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event = $2";
    assert_eq!(count(&s, events, &tenant, "test.revoked").await, 10);
    assert_eq!(count(&s, events, &tenant, "test.halfway").await, 0);
    let revoked = "SELECT COUNT(*) FROM revoked_tokens WHERE tenant_id = $1 AND jti LIKE $2";
    assert_eq!(count(&s, revoked, &tenant, "j%").await, 10);
    assert_eq!(count(&s, revoked, &tenant, "twice").await, 0);
}

/// On SQLite a batch's BEGIN rides in its first joined request and its COMMIT in the last when
/// nothing but chains follows. A chain that fails inside a joined request (it names no token
/// id) rolls the whole batch back; every other write then applies alone, lone audit rows
/// batched with the chains included, and the writer's connection is left with no transaction
/// open.
async fn a_failing_chain_rolls_its_batch_back_and_the_rest_apply_alone(s: TestServer) {
    let tenant = s.create_tenant().await.id;
    let chains: Vec<_> = (0..30)
        .map(|n| {
            let store = s.state.store.clone();
            let write = RevokeOnce {
                row: audit_row(&tenant, "test.revoked", n),
                jti: Some(format!("k{n}")),
            };
            tokio::spawn(async move { store.write(write).await })
        })
        .collect();
    let lone: Vec<_> = (0..10)
        .map(|n| {
            let (store, row) = (s.state.store.clone(), audit_row(&tenant, "test.lone", n));
            tokio::spawn(async move { store.append_audit(row).await })
        })
        .collect();
    let store = s.state.store.clone();
    let ghost = RevokeOnce {
        row: audit_row(&tenant, "test.ghost", 0),
        jti: None,
    };
    let bad = tokio::spawn(async move { store.write(ghost).await });
    for task in chains {
        assert!(task.await.unwrap().expect("a chained write succeeds"));
    }
    for task in lone {
        task.await.unwrap().expect("a lone audit row is written");
    }
    assert!(
        bad.await.unwrap().is_err(),
        "the chain without a token id fails"
    );

    let events = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event = $2";
    assert_eq!(count(&s, events, &tenant, "test.revoked").await, 30);
    assert_eq!(count(&s, events, &tenant, "test.lone").await, 10);
    assert_eq!(count(&s, events, &tenant, "test.ghost").await, 0);
    let revoked = "SELECT COUNT(*) FROM revoked_tokens WHERE tenant_id = $1 AND jti LIKE $2";
    assert_eq!(count(&s, revoked, &tenant, "k%").await, 30);

    // The next batch opens its own transaction: none was left open by the failed one.
    let store = s.state.store.clone();
    let after = RevokeOnce {
        row: audit_row(&tenant, "test.after", 0),
        jti: Some("after".into()),
    };
    assert!(store.write(after).await.unwrap());
    assert_eq!(count(&s, revoked, &tenant, "after").await, 1);
}

/// Lone audit rows share transactions on both databases. A row the database refuses
/// (PostgreSQL takes no NUL in text; SQLite stores it) fails alone: the rows batched with it
/// are written.
async fn a_refused_audit_row_fails_alone(s: TestServer) {
    let tenant = s.create_tenant().await.id;
    let good: Vec<_> = (0..60)
        .map(|n| {
            let (store, row) = (s.state.store.clone(), audit_row(&tenant, "test.good", n));
            tokio::spawn(async move { store.append_audit(row).await })
        })
        .collect();
    let store = s.state.store.clone();
    let nul = audit_row(&tenant, "test.nul\0", 0);
    let bad = tokio::spawn(async move { store.append_audit(nul).await });
    let mut outcomes = Vec::new();
    for task in good {
        outcomes.push(task.await.unwrap());
    }
    let bad = bad.await.unwrap();

    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let events = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event = $2";
    assert_eq!(count(&s, events, &tenant, "test.good").await, 60);
    match s.backend {
        Backend::Postgres => assert!(bad.is_err(), "PostgreSQL refuses the row: {bad:?}"),
        Backend::Sqlite => assert!(bad.is_ok(), "SQLite stores the row: {bad:?}"),
    }
    // PostgreSQL takes no NUL in a parameter either: the row is looked for by its prefix.
    let like = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event LIKE $2";
    let stored = count(&s, like, &tenant, "test.nul%").await;
    assert_eq!(stored, i64::from(s.backend == Backend::Sqlite));
}

/// Sends `RevokeOnce` writes for these token ids at once; returns how many applied.
async fn revoke_all(s: &TestServer, tenant: &str, jtis: &[String]) -> usize {
    let writes: Vec<_> = jtis
        .iter()
        .enumerate()
        .map(|(n, jti)| {
            let store = s.state.store.clone();
            let write = RevokeOnce {
                row: audit_row(tenant, "test.revoked", n),
                jti: Some(jti.clone()),
            };
            tokio::spawn(async move { store.write(write).await })
        })
        .collect();
    let mut applied = 0;
    for task in writes {
        applied += usize::from(task.await.unwrap().expect("a chained write succeeds"));
    }
    applied
}

async fn unsealed(s: &TestServer, tenant: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM audit_rows WHERE tenant_id = $1 AND chain_seq IS NULL";
    sqlx::query_scalar(sql)
        .bind(tenant)
        .fetch_one(s.state.store.reader())
        .await
        .unwrap()
}

/// On SQLite a batch seals its chains' audit rows as it writes them, against the chain heads
/// it believes in; on PostgreSQL the sealing task seals them (lone rows are sealed as written
/// on both). Whatever the writer believes,
/// the chain holds: a write that does not apply, the sealing task moving a head, and a head
/// moved behind the writer's back each leave rows unsealed for the sealing task, never a
/// broken chain, and the writer seals again once it has read the head anew.
async fn chained_audit_rows_are_sealed_as_written_and_the_chain_holds(s: TestServer) {
    let tenant = s.create_tenant().await.id;
    let (store, digester) = (&s.state.store, s.state.digester.as_ref());
    chain::seal(store, digester, &tenant).await.unwrap();
    let sqlite = s.backend == Backend::Sqlite;
    let jtis = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{}", i % 8)).collect()
    };

    assert_eq!(revoke_all(&s, &tenant, &jtis("a", 8)).await, 8);
    assert_eq!(unsealed(&s, &tenant).await, if sqlite { 0 } else { 8 });
    // Lone audit rows too, of two tenants at once.
    let other = s.create_tenant().await.id;
    chain::seal(store, digester, &other).await.unwrap();
    let lone: Vec<_> = (0..24)
        .map(|n| {
            let tenant = if n % 3 == 0 { &other } else { &tenant };
            let (store, row) = (s.state.store.clone(), audit_row(tenant, "test.lone", n));
            tokio::spawn(async move { store.append_audit(row).await })
        })
        .collect();
    for task in lone {
        task.await.unwrap().expect("a lone audit row is written");
    }
    assert_eq!(unsealed(&s, &tenant).await, if sqlite { 0 } else { 8 });
    assert_eq!(unsealed(&s, &other).await, 0);
    let whole = chain::verify_stored(store, digester, &other).await.unwrap();
    let all = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event LIKE $2";
    let sealed = count(&s, all, &other, "%").await - unsealed(&s, &other).await;
    assert_eq!(whole.expect("the other chain is whole").rows as i64, sealed);

    // Four writes per token id: one of each applies, and a row written after one that did
    // not may wait for the sealing task.
    assert_eq!(revoke_all(&s, &tenant, &jtis("b", 32)).await, 8);
    chain::seal(store, digester, &tenant).await.unwrap();
    assert_eq!(unsealed(&s, &tenant).await, 0);

    // The sealing task moved the head (it tells the writer): the next rows are sealed again.
    audit::insert(store.writer(), &audit_row(&tenant, "test.outside", 0))
        .await
        .unwrap();
    chain::seal(store, digester, &tenant).await.unwrap();
    assert_eq!(revoke_all(&s, &tenant, &jtis("c", 8)).await, 8);
    assert_eq!(unsealed(&s, &tenant).await, if sqlite { 0 } else { 8 });

    // A head moved without telling the writer, as another process would.
    seal_one_by_hand(&s, &tenant).await;
    assert_eq!(revoke_all(&s, &tenant, &["d".to_owned()]).await, 1);
    assert_eq!(
        unsealed(&s, &tenant).await,
        if sqlite { 1 } else { 9 },
        "a row written against a stale head waits for the sealing task"
    );
    assert_eq!(revoke_all(&s, &tenant, &jtis("e", 8)).await, 8);
    assert_eq!(
        unsealed(&s, &tenant).await,
        if sqlite { 1 } else { 17 },
        "the writer read the head again"
    );

    chain::seal(store, digester, &tenant).await.unwrap();
    let verified = chain::verify_stored(store, digester, &tenant)
        .await
        .unwrap()
        .expect("the chain is whole");
    assert_eq!(verified.rows as i64, count(&s, all, &tenant, "%").await);
    assert_eq!(count(&s, all, &tenant, "test.revoked").await, 33);
}

/// Writes a row unsealed and seals it by hand, as another process would: the chain's head
/// moves without the writer knowing.
async fn seal_one_by_hand(s: &TestServer, tenant: &str) {
    let (store, digester) = (&s.state.store, s.state.digester.as_ref());
    audit::insert(store.writer(), &audit_row(tenant, "test.behind", 0))
        .await
        .unwrap();
    let head = audit::chain(store.reader(), tenant).await.unwrap().unwrap();
    let since = store.audit_sealed_below().map(audit::SealedBelow::get);
    let row = audit::unsealed(store.reader(), tenant, since.map(audit::After::start_of), 1)
        .await
        .unwrap();
    let mut moved = (head.head_seq, head.head_hash);
    let link = chain::next_link(digester, tenant, &mut moved, row[0].row.content());
    let mut tx = store.begin().await.unwrap();
    let seal = audit::Seal {
        id: row[0].row.id,
        link,
    };
    audit::seal_rows(&mut tx, tenant, &[seal]).await.unwrap();
    audit::set_head(&mut *tx, tenant, moved.0, &moved.1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Appends lone audit rows of these tenants at once, `n` of each.
async fn append_all(s: &TestServer, tenants: &[&str], n: usize) {
    let appends: Vec<_> = (0..n)
        .flat_map(|i| tenants.iter().map(move |tenant| (i, tenant.to_string())))
        .map(|(i, tenant)| {
            let (store, row) = (s.state.store.clone(), audit_row(&tenant, "test.lone", i));
            tokio::spawn(async move { store.append_audit(row).await })
        })
        .collect();
    for task in appends {
        task.await.unwrap().expect("a lone audit row is written");
    }
}

/// The tenant's chain, once sealed, is whole and holds every row of the tenant.
async fn assert_whole_once_sealed(s: &TestServer, tenant: &str) {
    let (store, digester) = (&s.state.store, s.state.digester.as_ref());
    chain::seal(store, digester, tenant).await.unwrap();
    let verified = chain::verify_stored(store, digester, tenant)
        .await
        .unwrap()
        .expect("the chain is whole");
    let all = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event LIKE $2";
    assert_eq!(verified.rows as i64, count(s, all, tenant, "%").await);
}

/// Lone audit rows (a batch's own transaction on both databases) are sealed as they are
/// written; a head moved behind the writer's back leaves a batch unsealed for the sealing
/// task, and the writer seals again once it has read the head anew.
async fn lone_audit_rows_are_sealed_as_written_and_the_chain_holds(s: TestServer) {
    let tenant = s.create_tenant().await.id;
    chain::seal(&s.state.store, &s.state.digester, &tenant)
        .await
        .unwrap();

    append_all(&s, &[&tenant], 16).await;
    assert_eq!(unsealed(&s, &tenant).await, 0);

    seal_one_by_hand(&s, &tenant).await;
    append_all(&s, &[&tenant], 1).await;
    assert_eq!(
        unsealed(&s, &tenant).await,
        1,
        "a row written against a stale head waits for the sealing task"
    );
    append_all(&s, &[&tenant], 8).await;
    assert_eq!(
        unsealed(&s, &tenant).await,
        1,
        "the writer read the head again"
    );
    assert_whole_once_sealed(&s, &tenant).await;
}

/// The sealing task moves the heads while batches seal their lone rows against them (on
/// PostgreSQL in transactions of their own, at the same time): the chains stay whole, and
/// every row is in them once sealed.
async fn lone_audit_rows_and_the_sealing_task_race_and_the_chains_hold(s: TestServer) {
    let (one, two) = (s.create_tenant().await.id, s.create_tenant().await.id);
    let (store, digester) = (s.state.store.clone(), s.state.digester.clone());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sealer = {
        let (tenants, done) = ([one.clone(), two.clone()], done.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for tenant in &tenants {
                    // A row of a change's own transaction, left to the sealing task.
                    audit::insert(store.writer(), &audit_row(tenant, "test.direct", rounds))
                        .await
                        .unwrap();
                    chain::seal(&store, &digester, tenant).await.unwrap();
                }
                rounds += 1;
            }
            rounds
        })
    };
    for _ in 0..10 {
        append_all(&s, &[&one, &two], 20).await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = sealer.await.unwrap();
    assert!(rounds > 0, "the sealing task ran beside the writes");

    let lone = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event = $2";
    for tenant in [&one, &two] {
        assert_eq!(count(&s, lone, tenant, "test.lone").await, 200);
        assert_whole_once_sealed(&s, tenant).await;
    }
}

/// A backlog of several batches, part of it written by one transaction and the rest by a
/// transaction a row, between another tenant's rows: one call seals all of it, each batch
/// going on from the row the one before ended with (within a transaction too), and the chain
/// holds every row once.
async fn a_backlog_of_many_batches_is_sealed_in_one_call(s: TestServer) {
    let (tenant, other) = (s.create_tenant().await.id, s.create_tenant().await.id);
    let (store, digester) = (&s.state.store, s.state.digester.as_ref());
    let mut tx = store.begin().await.unwrap();
    for n in 0..300 {
        let row = audit_row(&tenant, "test.backlog", n);
        audit::insert(&mut *tx, &row).await.unwrap();
    }
    tx.commit().await.unwrap();
    for n in 300..450 {
        for t in [&other, &tenant] {
            let row = audit_row(t, "test.backlog", n);
            audit::insert(store.writer(), &row).await.unwrap();
        }
    }

    chain::seal(store, digester, &tenant).await.unwrap();
    assert_eq!(
        unsealed(&s, &tenant).await,
        0,
        "one call sealed the backlog"
    );
    let backlog = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND event = $2";
    assert_eq!(count(&s, backlog, &tenant, "test.backlog").await, 450);
    assert_whole_once_sealed(&s, &tenant).await;
    assert_whole_once_sealed(&s, &other).await;
}

both_databases!(
    a_backlog_of_many_batches_is_sealed_in_one_call,
    a_failing_chain_rolls_its_batch_back_and_the_rest_apply_alone,
    chained_audit_rows_are_sealed_as_written_and_the_chain_holds,
    lone_audit_rows_are_sealed_as_written_and_the_chain_holds,
    lone_audit_rows_and_the_sealing_task_race_and_the_chains_hold,
    a_failing_write_leaves_nothing_and_fails_alone,
    a_refused_audit_row_fails_alone,
    chained_writes_in_one_batch_each_get_their_own_outcome
);

/// PostgreSQL plans the sealing transactions for the tables as they are
/// (`audit::plan_for_current_sizes`), and only them: the setting ends with the transaction, so
/// the token endpoint's statements on the same connection keep their cached plans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_plans_sealing_for_current_sizes_only_while_it_seals() {
    use sqlx::Acquire;

    let s = TestServer::start(Backend::Postgres).await;
    let mode = "SELECT current_setting('plan_cache_mode')";
    let mut conn = s.state.store.writer().acquire().await.unwrap();
    let before: String = sqlx::query_scalar(mode)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(before, "auto");

    let mut tx = conn.begin().await.unwrap();
    audit::plan_for_current_sizes(&mut tx).await.unwrap();
    let inside: String = sqlx::query_scalar(mode).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(inside, "force_custom_plan");
    tx.commit().await.unwrap();

    let after: String = sqlx::query_scalar(mode)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(after, "auto", "the setting ended with the transaction");
}

/// On PostgreSQL the sealing task searches only rows of transactions that may have ended since
/// its last complete pass (`audit::SealedBelow`), not every row ever written: a row whose
/// transaction was open during a pass is sealed by a later one, and the search then starts
/// past it, in this process and in the start kept for the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seals_a_row_whose_transaction_outlived_a_pass() {
    let s = TestServer::start(Backend::Postgres).await;
    let tenant = s.create_tenant().await.id;
    let (store, digester) = (&s.state.store, s.state.digester.as_ref());
    let sealed_below = store
        .audit_sealed_below()
        .expect("PostgreSQL has a search start");

    let mut open = store.begin().await.unwrap();
    audit::insert(&mut *open, &audit_row(&tenant, "test.late", 0))
        .await
        .unwrap();
    let open_xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *open)
        .await
        .unwrap();
    audit::insert(store.writer(), &audit_row(&tenant, "test.early", 0))
        .await
        .unwrap();
    assert!(chain::seal_all(store, digester).await.unwrap() >= 1);
    assert_eq!(
        unsealed(&s, &tenant).await,
        0,
        "the open row is not seen yet"
    );
    assert!(
        sealed_below.get() <= open_xid,
        "the search may not start past a transaction still open"
    );

    open.commit().await.unwrap();
    assert_eq!(unsealed(&s, &tenant).await, 1);
    assert_eq!(chain::seal_all(store, digester).await.unwrap(), 1);
    assert_eq!(unsealed(&s, &tenant).await, 0, "the late row is sealed");
    assert_whole_once_sealed(&s, &tenant).await;

    // Other tests' transactions on the same server may hold the horizon back a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let kept = || async {
        let sql = "SELECT xid FROM audit_sealed_below";
        let xid: i64 = sqlx::query_scalar(sql)
            .fetch_one(store.reader())
            .await
            .unwrap();
        xid
    };
    while sealed_below.get() <= open_xid || kept().await <= open_xid {
        assert!(
            std::time::Instant::now() < deadline,
            "the search start, here and kept, moves past the late row's transaction"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(chain::seal_all(store, digester).await.unwrap(), 0);
    }
    // The sealing task of the server may have moved it in memory a moment before the table.
    assert!(
        kept().await <= sealed_below.get(),
        "the kept start is one this process has learnt"
    );
}
