//! The real binary: start-up refusing bad configuration with one line naming the variable,
//! the root secret printed once, dev-mode seeding, migrations, and a clean stop on SIGTERM.

use std::time::Duration;

use e2e::{
    binary::{Running, free_port, run},
    random_key_b64,
};

const LIMIT: Duration = Duration::from_secs(30);

/// Exactly one line on stderr, naming `variable`, and a failing exit code.
fn assert_refused(output: &std::process::Output, variable: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "should fail: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(variable), "names {variable}: {stderr}");
}

#[test]
fn bad_database_urls_stop_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = random_key_b64();
    let unreachable = format!("postgres://postgres@127.0.0.1:{}/provider", free_port());
    for url in [
        "mysql://localhost/provider",
        "sqlite::memory:",
        "postgres://",
        unreachable.as_str(),
    ] {
        let env = [("DATABASE_URL", url), ("KEY_ENCRYPTION_KEY", key.as_str())];
        let output = run(&["serve"], &env, dir.path(), LIMIT);
        assert_refused(&output, "DATABASE_URL");
    }
}

#[test]
fn other_bad_variables_are_named_too() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("BIND", "not-an-address"),
        ("PUBLIC_URL", "ftp://example.com"),
        ("KEY_ENCRYPTION_KEY", "too-short"),
        ("SMTP_TLS", "sometimes"),
        ("LOG_FORMAT", "xml"),
    ] {
        let mut env = vec![(name, value)];
        if name == "SMTP_TLS" {
            env.extend([("SMTP_HOST", "127.0.0.1"), ("SMTP_FROM", "id@example.com")]);
        }
        let output = run(&["serve"], &env, dir.path(), LIMIT);
        assert_refused(&output, name);
    }
    // Outside dev mode the key encryption key is required.
    let output = run(&["serve"], &[], dir.path(), LIMIT);
    assert_refused(&output, "KEY_ENCRYPTION_KEY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_secret_is_generated_printed_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let key = random_key_b64();
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("KEY_ENCRYPTION_KEY", key.as_str()),
        ("BIND", bind.as_str()),
    ];
    let base = format!("http://{bind}");

    let mut first = Running::spawn(&["serve"], &env, dir.path());
    first.wait_ready(&format!("{base}/readyz"), LIMIT).await;
    let printed = first.stdout();
    let secret = printed
        .lines()
        .skip_while(|l| !l.starts_with("Root admin secret"))
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("secret printed: {printed}"))
        .to_owned();
    assert_eq!(secret.len(), 43);
    let http = reqwest::Client::new();
    let tenants = http
        .get(format!("{base}/admin/tenants"))
        .header("x-admin-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(tenants.status(), 200);
    assert!(first.terminate(LIMIT).success(), "SIGTERM stops cleanly");
    assert!(first.stdout().contains("stopped"));

    // The database holds only its digest, and the next start prints nothing new.
    let db = std::fs::read(dir.path().join("data/provider.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("data/provider.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    let mut second = Running::spawn(&["serve"], &env, dir.path());
    second.wait_ready(&format!("{base}/readyz"), LIMIT).await;
    assert!(
        !second.stdout().contains("Root admin secret"),
        "{}",
        second.stdout()
    );
    let again = http
        .get(format!("{base}/admin/tenants"))
        .header("x-admin-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "the same secret still works");
    assert!(second.terminate(LIMIT).success());

    // A different key encryption key cannot open this database's secrets.
    let other_key = random_key_b64();
    let output = run(
        &["serve"],
        &[
            ("KEY_ENCRYPTION_KEY", other_key.as_str()),
            ("BIND", bind.as_str()),
        ],
        dir.path(),
        LIMIT,
    );
    assert_refused(&output, "KEY_ENCRYPTION_KEY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_seeds_the_demo_tenant_and_the_relying_party_client_once() {
    let dir = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let env = [("BIND", bind.as_str())];

    let mut first = Running::spawn(&["serve", "--dev"], &env, dir.path());
    first.wait_ready(&format!("{base}/readyz"), LIMIT).await;
    let printed = first.stdout();
    let tenant_secret = printed
        .lines()
        .skip_while(|l| !l.starts_with("Dev mode: tenant `demo` created"))
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("tenant secret printed: {printed}"))
        .to_owned();
    let http = reqwest::Client::new();
    let client = http
        .get(format!("{base}/a/demo/admin/clients/relying-party"))
        .header("x-admin-secret", &tenant_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(client.status(), 200);
    let client: serde_json::Value = client.json().await.unwrap();
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(client["redirect_uris"][0], "http://127.0.0.1:3000/callback");
    assert!(dir.path().join("data/dev-key-encryption-key").exists());
    assert!(first.terminate(LIMIT).success());

    let mut second = Running::spawn(&["serve", "--dev"], &env, dir.path());
    second.wait_ready(&format!("{base}/readyz"), LIMIT).await;
    assert!(
        !second.stdout().contains("created"),
        "nothing seeded twice: {}",
        second.stdout()
    );
    assert!(second.terminate(LIMIT).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_the_schema_on_both_databases() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/fresh.db?mode=rwc", dir.path().display());
    let pg = e2e::pg::FreshDatabase::create().await;
    for url in [sqlite.as_str(), pg.url.as_str()] {
        let output = run(&["migrate"], &[("DATABASE_URL", url)], dir.path(), LIMIT);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("migrations applied"));
        // Running it again is a no-op, not an error.
        assert!(
            run(&["migrate"], &[("DATABASE_URL", url)], dir.path(), LIMIT)
                .status
                .success()
        );
    }
    let store = provider::store::Store::connect(
        &provider::config::Config::from_map(
            false,
            &[("DATABASE_URL".to_owned(), pg.url.clone())]
                .into_iter()
                .collect(),
        )
        .unwrap()
        .database_url,
    )
    .await
    .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name IN \
         ('tenants', 'clients', 'users', 'audit_events', 'instance_secrets')",
    )
    .fetch_one(store.reader())
    .await
    .unwrap();
    assert_eq!(tables, 5);
    store.close().await;
}

/// Every SQLite connection, writer and readers alike, gets the durability and checkpoint
/// settings: a reader without them would checkpoint on SQLite's default of 1,000 pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connections_are_durable_and_checkpoint_early() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/pragmas.db?mode=rwc", dir.path().display());
    let config = provider::config::Config::from_map(
        false,
        &[("DATABASE_URL".to_owned(), url)].into_iter().collect(),
    )
    .unwrap();
    let store = provider::store::Store::connect(&config.database_url)
        .await
        .unwrap();
    for (name, pool) in [
        ("writer", store.writer()),
        ("reader", store.reader().pool()),
    ] {
        let mut conn = pool.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal", "{name}");
        for (pragma, expected) in [
            ("synchronous", 2), // FULL
            ("foreign_keys", 1),
            ("busy_timeout", 5000),
            ("wal_autocheckpoint", 250),
        ] {
            let value: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(value, expected, "{name}: PRAGMA {pragma}");
        }
    }
    store.close().await;
}

fn keys_env(
    bind: &str,
    root: &str,
    current: &str,
    previous: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("BIND", bind.to_owned()),
        ("ADMIN_SECRET", root.to_owned()),
        ("KEY_ENCRYPTION_KEY", current.to_owned()),
    ];
    if let Some(previous) = previous {
        env.push(("KEY_ENCRYPTION_KEY_PREVIOUS", previous.to_owned()));
    }
    env
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Rotating `KEY_ENCRYPTION_KEY`: serve with the new key and the previous one, rewrap, then the
/// new key alone opens everything and the old one alone opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_encryption_key_rotation_by_rewrap() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (random_key_b64(), random_key_b64());
    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let root = "root-secret-for-the-rewrap-test-0123456789";

    // First life: the old key seals the digest key and the tenant's signing keys.
    let env = keys_env(&bind, root, &old, None);
    let mut server = Running::spawn(&["serve"], &borrowed(&env), dir.path());
    server.wait_ready(&format!("{base}/readyz"), LIMIT).await;
    let http = reqwest::Client::new();
    let tenant: serde_json::Value = http
        .post(format!("{base}/admin/tenants"))
        .header("x-admin-secret", root)
        .json(&serde_json::json!({ "id": "rewrap" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant_secret = tenant["admin_secret"].as_str().unwrap().to_owned();
    assert!(server.terminate(LIMIT).success());

    let wrong = keys_env(&bind, root, &new, Some(&random_key_b64()));
    let refused = run(&["keys", "rewrap"], &borrowed(&wrong), dir.path(), LIMIT);
    assert_refused(&refused, "KEY_ENCRYPTION_KEY_PREVIOUS");

    let env = keys_env(&bind, root, &new, Some(&old));
    let output = run(&["keys", "rewrap"], &borrowed(&env), dir.path(), LIMIT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("rewrapped 1 instance secret(s) and 2 signing key(s)"),
        "{stdout}"
    );
    let again = run(&["keys", "rewrap"], &borrowed(&env), dir.path(), LIMIT);
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.contains("rewrapped 0 instance secret(s) and 0 signing key(s)"),
        "{again}"
    );

    // The new key alone now opens everything: the tenant secret verifies, tokens are signed.
    let env = keys_env(&bind, root, &new, None);
    let mut server = Running::spawn(&["serve"], &borrowed(&env), dir.path());
    server.wait_ready(&format!("{base}/readyz"), LIMIT).await;
    let client: serde_json::Value = http
        .post(format!("{base}/a/rewrap/admin/clients"))
        .header("x-admin-secret", &tenant_secret)
        .json(&serde_json::json!({ "grant_types": ["client_credentials"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = http
        .post(format!("{base}/a/rewrap/token"))
        .basic_auth(
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    assert!(server.terminate(LIMIT).success());

    let env = keys_env(&bind, root, &old, None);
    let output = run(&["serve"], &borrowed(&env), dir.path(), LIMIT);
    assert_refused(&output, "KEY_ENCRYPTION_KEY");
}
