//! Group commit (`provider::store::group_commit`), through the store of a running server:
//! concurrent writes each get their own outcome once committed, and a write that fails halfway
//! leaves nothing behind and does not fail the writes it shared a transaction with.

use std::{future::Future, pin::Pin};

use e2e::{TestServer, both_databases};
use provider::store::{
    StoreError, StoreResult,
    audit::{self, AuditRow},
    group_commit::Write,
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

both_databases!(a_failing_write_leaves_nothing_and_fails_alone);
