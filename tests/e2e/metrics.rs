//! `GET /metrics`: the counters move when what they count happens, and the scrape-time gauges
//! follow the database. Counters are process-wide (every test server in this process shares the
//! recorder), so they are compared before and after: they may only grow, and by at least what
//! the test did.

use e2e::{Backend, TestServer, both_backends, json, reqwest::StatusCode};

use crate::refresh::{refresh, signed_in};

async fn scrape(s: &TestServer) -> String {
    let response = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The value of the sample `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

async fn counters_move_with_requests_and_grants(s: TestServer) {
    let tenant = s.create_tenant().await;
    let (client_id, secret) = s
        .create_client(
            &tenant,
            json!({ "grant_types": ["client_credentials"], "scope": "read" }),
        )
        .await;
    let before = scrape(&s).await;
    let token_url = s.url(&format!("/a/{}/token", tenant.id));
    for _ in 0..3 {
        let issued = s
            .form(
                &token_url,
                Some((&client_id, secret.as_deref().unwrap())),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(issued.status, StatusCode::OK);
    }
    let refused = s
        .form(
            &token_url,
            Some((&client_id, "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // A method a client makes up is counted, but under `other`: it cannot grow the label set.
    let brewed = s
        .http
        .request(
            e2e::reqwest::Method::from_bytes(b"BREW").unwrap(),
            &token_url,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(brewed.status(), StatusCode::METHOD_NOT_ALLOWED);
    let after = scrape(&s).await;

    let grants = |text: &str| {
        sample(
            text,
            "tokens_issued_total",
            &[("grant", "client_credentials")],
        )
    };
    assert!(grants(&after) >= grants(&before) + 3.0, "{after}");
    let route = [("route", "/a/{tenant}/token"), ("method", "POST")];
    let ok = |text: &str| {
        sample(
            text,
            "http_requests_total",
            &[route[0], route[1], ("status", "200")],
        )
    };
    let denied = |text: &str| {
        sample(
            text,
            "http_requests_total",
            &[route[0], route[1], ("status", "401")],
        )
    };
    assert!(ok(&after) >= ok(&before) + 3.0);
    assert!(denied(&after) >= denied(&before) + 1.0);
    let count = |text: &str| sample(text, "http_request_duration_seconds_count", &route);
    assert!(count(&after) >= count(&before) + 4.0);
    let other = |text: &str| {
        sample(
            text,
            "http_requests_total",
            &[route[0], ("method", "other"), ("status", "405")],
        )
    };
    assert!(other(&after) >= other(&before) + 1.0, "{after}");
    assert!(!after.contains("BREW"), "made-up methods are not labels");
    assert!(
        after.contains("http_request_duration_seconds_bucket{") && after.contains("le=\"0.005\""),
        "latency buckets"
    );
    // Route templates only: no tenant id or raw path in request labels.
    assert!(
        !after
            .lines()
            .any(|l| l.starts_with("http_requests_total") && l.contains(&tenant.id)),
        "no raw paths as labels"
    );
}

async fn gauges_follow_keys_mail_and_pools(s: TestServer) {
    let tenant = s.create_tenant().await;
    let text = scrape(&s).await;
    let keys = |text: &str, state: &str| {
        sample(
            text,
            "signing_keys",
            &[("tenant", &tenant.id), ("state", state)],
        )
    };
    assert_eq!(keys(&text, "active"), 1.0);
    assert_eq!(keys(&text, "revoked"), 0.0);
    let staged_before = keys(&text, "staged");
    let staged = s
        .post(
            &format!("/a/{}/admin/keys", tenant.id),
            Some(&tenant.admin_secret),
            json!({}),
        )
        .await;
    assert_eq!(staged.status, StatusCode::CREATED);
    let text = scrape(&s).await;
    assert_eq!(keys(&text, "staged"), staged_before + 1.0);
    assert_eq!(keys(&text, "active"), 1.0);
    assert!(text.contains("mail_outbox_pending 0"), "{text}");
    assert!(text.contains("db_pool_connections{pool=\"writer\",state=\"idle\"}"));
}

async fn reuse_detection_is_counted(backend: Backend) {
    let (w, first, endpoint) = signed_in(backend).await;
    let before = sample(
        &scrape(&w.s).await,
        "refresh_token_reuse_detected_total",
        &[],
    );
    let old = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&w, &endpoint, old, &[]).await.status,
        StatusCode::OK
    );
    w.s.advance(60);
    assert_eq!(
        refresh(&w, &endpoint, old, &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    let text = scrape(&w.s).await;
    let after = sample(&text, "refresh_token_reuse_detected_total", &[]);
    assert!(after >= before + 1.0, "{before} -> {after}");
    assert!(sample(&text, "tokens_issued_total", &[("grant", "refresh_token")]) >= 1.0);
    assert!(
        sample(
            &text,
            "tokens_issued_total",
            &[("grant", "authorization_code")]
        ) >= 1.0
    );
}

mod server {
    e2e::both_databases!(
        counters_move_with_requests_and_grants,
        gauges_follow_keys_mail_and_pools
    );
    use super::{counters_move_with_requests_and_grants, gauges_follow_keys_mail_and_pools};
}

both_backends!(reuse_detection_is_counted);
