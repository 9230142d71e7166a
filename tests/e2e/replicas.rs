//! Several provider replicas on one database: key changes reach every replica's cache within the
//! documented bound, and scheduled rotation happens once however many replicas run it.

use e2e::{TestServer, both_databases, json, reqwest::StatusCode};
use provider::keys::{REFRESH_MS, rotation};
use serde_json::Value;

async fn jwks_kids(s: &TestServer, tenant: &str) -> Vec<String> {
    let reply = s.get(&format!("/a/{tenant}/jwks.json"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut kids: Vec<String> = reply.json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn keys(s: &TestServer, tenant: &str) -> Vec<Value> {
    let reply = s
        .get(&format!("/a/{tenant}/admin/keys"), Some(&s.root_secret))
        .await;
    reply.json.as_array().unwrap().clone()
}

fn count(keys: &[Value], state: &str) -> usize {
    keys.iter().filter(|k| k["state"] == state).count()
}

async fn a_key_change_reaches_other_replicas_within_the_refresh_bound(a: TestServer) {
    let b = a.replica().await;
    let t = a.create_tenant().await;
    let before = jwks_kids(&b, &t.id).await;
    assert_eq!(before, jwks_kids(&a, &t.id).await);

    let revoked = a
        .send(
            reqwest::Method::POST,
            &format!("/a/{}/admin/keys/revoke", t.id),
            Some(&t.admin_secret),
            None,
        )
        .await;
    let kid = revoked.json["revoked"][0].as_str().unwrap().to_owned();
    assert!(
        !jwks_kids(&a, &t.id).await.contains(&kid),
        "the replica that made the change sees it at once"
    );
    assert!(
        jwks_kids(&b, &t.id).await.contains(&kid),
        "the other still serves its cache within the bound"
    );
    b.clock.advance(time::Duration::milliseconds(REFRESH_MS));
    assert!(
        !jwks_kids(&b, &t.id).await.contains(&kid),
        "and sees the change once the bound passes"
    );
    assert_eq!(jwks_kids(&a, &t.id).await, jwks_kids(&b, &t.id).await);
}

async fn a_client_suspended_through_one_replica_is_refused_by_all_within_the_bound(a: TestServer) {
    let b = a.replica().await;
    let t = a.create_tenant().await;
    let (id, secret) = a
        .create_client(&t, json!({ "grant_types": ["client_credentials"] }))
        .await;
    let secret = secret.unwrap();
    let token_at = |s: &TestServer| format!("{}/a/{}/token", s.base_url, t.id);
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(
        b.form(&token_at(&b), Some((&id, &secret)), &grant)
            .await
            .status,
        StatusCode::OK
    );

    let path = format!("/a/{}/admin/clients/{id}", t.id);
    a.send(
        reqwest::Method::PATCH,
        &path,
        Some(&t.admin_secret),
        Some(json!({ "status": "suspended" })),
    )
    .await;
    assert_eq!(
        a.form(&token_at(&a), Some((&id, &secret)), &grant)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    b.clock
        .advance(time::Duration::milliseconds(provider::cache::FRESH_MS));
    assert_eq!(
        b.form(&token_at(&b), Some((&id, &secret)), &grant)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// Three days: long enough that the purge a day after a hand-over finds nothing else due.
const PERIOD: i64 = 3 * 24 * 3600;

async fn scheduled_rotation_rotates_once_across_replicas_and_purges(a: TestServer) {
    let b = a.replica().await;
    let t = a.create_tenant().await;
    let path = format!("/admin/tenants/{}", t.id);
    let set = a
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&a.root_secret),
            Some(json!({ "key_rotation_secs": PERIOD })),
        )
        .await;
    assert_eq!(set.json["key_rotation_secs"], PERIOD, "{}", set.text);
    let too_short = a
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&a.root_secret),
            Some(json!({ "key_rotation_secs": 60 })),
        )
        .await;
    assert_eq!(too_short.status, StatusCode::BAD_REQUEST);

    assert_eq!(
        rotation::run_once(&a.state).await.unwrap(),
        0,
        "a fresh key is not due"
    );
    let first = keys(&a, &t.id).await;

    a.advance(PERIOD);
    b.advance(PERIOD);
    let (ra, rb) = tokio::join!(rotation::run_once(&a.state), rotation::run_once(&b.state));
    assert_eq!(
        ra.unwrap() + rb.unwrap(),
        3,
        "retire, activate, stage: applied once in all"
    );
    let rotated = keys(&a, &t.id).await;
    assert_eq!(
        (
            count(&rotated, "active"),
            count(&rotated, "retired"),
            count(&rotated, "staged")
        ),
        (1, 1, 1)
    );
    let old_staged = first.iter().find(|k| k["state"] == "staged").unwrap()["kid"].clone();
    assert_eq!(
        rotated.iter().find(|k| k["state"] == "active").unwrap()["kid"],
        old_staged
    );
    let scheduled: Vec<Value> = a.audit_events(&t.id, "key.activated").await;
    assert_eq!(scheduled.last().unwrap()["details"]["reason"], "scheduled");
    assert_eq!(
        scheduled.len(),
        2,
        "the tenant's first key and one scheduled hand-over"
    );

    // Once every token the retired key signed has expired, the key is purged. Either replica
    // may have retired it, by its own clock, which runs a little ahead of `a`'s (it started
    // later): a minute of margin covers that skew.
    a.advance(24 * 3600 + 60);
    assert_eq!(rotation::run_once(&a.state).await.unwrap(), 1);
    let purged = keys(&a, &t.id).await;
    assert_eq!(count(&purged, "retired"), 0);
    assert_eq!(a.audit_events(&t.id, "key.purged").await.len(), 1);

    // Turned off, nothing happens however long it waits.
    a.send(
        reqwest::Method::PATCH,
        &path,
        Some(&a.root_secret),
        Some(json!({ "key_rotation_secs": 0 })),
    )
    .await;
    a.advance(400 * 24 * 3600);
    assert_eq!(rotation::run_once(&a.state).await.unwrap(), 0);
}

both_databases!(
    a_client_suspended_through_one_replica_is_refused_by_all_within_the_bound,
    a_key_change_reaches_other_replicas_within_the_refresh_bound,
    scheduled_rotation_rotates_once_across_replicas_and_purges,
);

/// With Redis, a key change reaches the other replica at once: no clock has to move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_key_changes_reach_other_replicas_at_once() {
    let a = TestServer::start_with(
        e2e::Backend::Sqlite,
        &[("REDIS_URL", "redis://127.0.0.1:6379")],
    )
    .await;
    let b = a.replica().await;
    for _ in 0..100 {
        if a.state.keys.listening() && b.state.keys.listening() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        a.state.keys.listening() && b.state.keys.listening(),
        "both replicas subscribed"
    );
    let t = a.create_tenant().await;
    let before = jwks_kids(&b, &t.id).await;
    let revoked = a
        .send(
            reqwest::Method::POST,
            &format!("/a/{}/admin/keys/revoke", t.id),
            Some(&t.admin_secret),
            None,
        )
        .await;
    let kid = revoked.json["revoked"][0].as_str().unwrap().to_owned();
    assert!(before.contains(&kid));
    let mut seen = false;
    for _ in 0..100 {
        if !jwks_kids(&b, &t.id).await.contains(&kid) {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        seen,
        "the other replica dropped the revoked key without waiting for its poll"
    );
}
