//! The runbook's backup and restore path (docs/RUNBOOK.md): `provider backup` copies a serving
//! SQLite database; `pg_dump` and `pg_restore` do it for PostgreSQL. A provider started on the
//! restored copy answers for the same tenants, with the same keys, secrets and audit chain.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use e2e::{TestServer, binary, json, pg::FreshDatabase, reqwest::StatusCode};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// What a restored provider must still know: a tenant, its client's secret and its JWKS.
struct Before {
    tenant: String,
    client_id: String,
    client_secret: String,
    jwks: Value,
}

async fn some_state(s: &TestServer) -> Before {
    let tenant = s.create_tenant().await;
    let (client_id, secret) = s
        .create_client(
            &tenant,
            json!({ "grant_types": ["client_credentials"], "scope": "read" }),
        )
        .await;
    let jwks = s
        .get(&format!("/a/{}/jwks.json", tenant.id), None)
        .await
        .json;
    Before {
        tenant: tenant.id,
        client_id,
        client_secret: secret.unwrap(),
        jwks,
    }
}

/// Starts the binary on `database_url` with the original server's secrets and checks that it
/// knows everything in `before`, and that the audit chain of the copy verifies.
async fn check_restored(s: &TestServer, before: &Before, database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = binary::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let key = STANDARD.encode(s.key_encryption_key());
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("BIND", bind.as_str()),
        ("DATABASE_URL", database_url),
        ("ADMIN_SECRET", s.root_secret.as_str()),
        ("KEY_ENCRYPTION_KEY", key.as_str()),
    ];
    let mut restored = binary::Running::spawn(&["serve"], &env, dir.path());
    restored.wait_ready(&format!("{base}/readyz"), LIMIT).await;
    let http = reqwest::Client::new();
    let jwks: Value = http
        .get(format!("{base}/a/{}/jwks.json", before.tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, before.jwks, "the same keys");
    let token = http
        .post(format!("{base}/a/{}/token", before.tenant))
        .basic_auth(&before.client_id, Some(&before.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        token.status(),
        StatusCode::OK,
        "the client's secret still works"
    );
    let tenant = http
        .get(format!("{base}/admin/tenants/{}", before.tenant))
        .header("x-admin-secret", &s.root_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(tenant.status(), StatusCode::OK);
    assert!(restored.terminate(LIMIT).success());

    provider::audit::chain::seal_all(&s.state.store, &s.state.digester)
        .await
        .unwrap();
    let args = ["audit", "verify", "--tenant", before.tenant.as_str()];
    let env = [
        ("DATABASE_URL", database_url),
        ("KEY_ENCRYPTION_KEY", key.as_str()),
    ];
    let verified = binary::run(&args, &env, dir.path(), LIMIT);
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{text}");
    assert!(text.contains("intact"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_while_serving_restores() {
    let s = TestServer::start(e2e::Backend::Sqlite).await;
    let before = some_state(&s).await;
    // Sealed before the copy, so the copy's chain holds the rows.
    provider::audit::chain::seal_all(&s.state.store, &s.state.digester)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let key = STANDARD.encode(s.key_encryption_key());
    let env = [
        ("DATABASE_URL", s.database_url.as_str()),
        ("KEY_ENCRYPTION_KEY", key.as_str()),
    ];
    let copy_arg = copy.display().to_string();
    let output = binary::run(&["backup", &copy_arg], &env, dir.path(), LIMIT);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("backup written"));
    // The server kept serving meanwhile; a second backup never overwrites the first.
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);
    let again = binary::run(&["backup", &copy_arg], &env, dir.path(), LIMIT);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    check_restored(&s, &before, &format!("sqlite://{copy_arg}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_dump_restores_into_a_new_database() {
    let s = TestServer::start(e2e::Backend::Postgres).await;
    let before = some_state(&s).await;
    provider::audit::chain::seal_all(&s.state.store, &s.state.digester)
        .await
        .unwrap();
    // `provider backup` points PostgreSQL users at pg_dump.
    let dir = tempfile::tempdir().unwrap();
    let key = STANDARD.encode(s.key_encryption_key());
    let env = [
        ("DATABASE_URL", s.database_url.as_str()),
        ("KEY_ENCRYPTION_KEY", key.as_str()),
    ];
    let refused = binary::run(&["backup", "x.db"], &env, dir.path(), LIMIT);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));

    let dump = dir.path().join("provider.dump");
    let status = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&dump)
        .arg(&s.database_url)
        .status()
        .unwrap();
    assert!(status.success());
    let target = FreshDatabase::create().await;
    let status = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", &target.url])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success());
    check_restored(&s, &before, &target.url).await;
}
