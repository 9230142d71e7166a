//! `/healthz` and `/readyz`: readiness follows the database and Redis, and recovers with them.

use std::time::Duration;

use e2e::{Backend, TestServer, both_databases, pg::PrivateCluster, reqwest::StatusCode};

async fn healthz_and_readyz_answer_when_all_is_well(s: TestServer) {
    let health = s.get("/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = s.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json["checks"]["database"], "ok");
    assert!(
        ready.json["checks"].get("redis").is_none(),
        "Redis is not configured"
    );
}

/// Redis on its usual loopback port answers; one on a closed port makes the provider unready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_checks_redis_when_configured() {
    let with_redis =
        TestServer::start_with(Backend::Sqlite, &[("REDIS_URL", "redis://127.0.0.1:6379")]).await;
    let ready = with_redis.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json["checks"]["redis"], "ok");

    let port = e2e::binary::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let without = TestServer::start_with(Backend::Sqlite, &[("REDIS_URL", &url)]).await;
    let unready = without.get("/readyz", None).await;
    assert_eq!(unready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unready.json["failed"], e2e::json!(["redis"]));
    assert_eq!(unready.json["checks"]["database"], "ok");
}

both_databases!(healthz_and_readyz_answer_when_all_is_well);

/// PostgreSQL stopped under a running provider: `/readyz` turns 503 naming the database, admin
/// requests answer 503 (not 500), and both recover when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_postgresql_going_away_and_coming_back() {
    let cluster = PrivateCluster::start();
    let url = cluster.url();
    let s = TestServer::start_on(&url, &[]).await;
    let t = s.create_tenant().await;
    assert_eq!(s.get("/readyz", None).await.status, StatusCode::OK);

    cluster.stop_server();
    let down = s.get("/readyz", None).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.text
    );
    assert_eq!(down.json["failed"], e2e::json!(["database"]));
    let admin = s
        .get(&format!("/a/{}/admin/users", t.id), Some(&s.root_secret))
        .await;
    assert_eq!(
        admin.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        admin.text
    );
    assert_eq!(admin.admin_error(), "temporarily_unavailable");
    assert!(admin.header("retry-after").is_some());

    cluster.start_server();
    cluster.wait_until_up().await;
    let mut recovered = false;
    for _ in 0..50 {
        if s.get("/readyz", None).await.status == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "readyz returns to 200 once PostgreSQL is back");
    let admin = s
        .get(&format!("/a/{}/admin/users", t.id), Some(&t.admin_secret))
        .await;
    assert_eq!(admin.status, StatusCode::OK);
}
