//! Rate limits and abuse controls: ceilings from `RL_*` enforced at their thresholds with
//! `Retry-After` and the IETF `RateLimit-Policy`/`RateLimit` headers in each surface's format,
//! overrides from `RL_OVERRIDES_JSON`, failed admin logins blocking an address, one limit shared
//! by two servers through Redis, limits that guard secrets failing closed when Redis is gone,
//! `X-Forwarded-For` believed only from `TRUSTED_PROXIES`, and the tenant's issuance switch.

use e2e::{Backend, TestServer, TestTenant, json, reqwest::StatusCode, unique};
use serde_json::Value;

const REDIS: &str = "redis://127.0.0.1:6379";

/// A tenant with one client_credentials client of the given id; returns its secret.
async fn client(s: &TestServer, tenant: &TestTenant, client_id: &str) -> String {
    let (_, secret) = s
        .create_client(
            tenant,
            json!({ "client_id": client_id, "grant_types": ["client_credentials"] }),
        )
        .await;
    secret.unwrap()
}

async fn token(s: &TestServer, tenant: &str, client_id: &str, secret: &str) -> e2e::Reply {
    s.form(
        &s.url(&format!("/a/{tenant}/token")),
        Some((client_id, secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
}

fn assert_limited(reply: &e2e::Reply, policy: &str, limit: u32) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        reply.header("ratelimit-policy"),
        Some(format!("\"{policy}\";q={limit};w=60").as_str())
    );
    assert_eq!(
        reply.header("ratelimit"),
        Some(format!("\"{policy}\";r=0;t={retry}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_limits_hold_at_their_ceiling_and_refill() {
    let s = TestServer::start_with(Backend::Sqlite, &[("RL_TOKEN_PER_CLIENT", "3")]).await;
    let tenant = s.create_tenant().await;
    let secret = client(&s, &tenant, "app").await;
    let other = client(&s, &tenant, "other").await;
    for n in 0..3 {
        assert_eq!(
            token(&s, &tenant.id, "app", &secret).await.status,
            StatusCode::OK,
            "{n}"
        );
    }
    let refused = token(&s, &tenant.id, "app", &secret).await;
    assert_limited(&refused, "token-client", 3);
    assert_eq!(refused.json["error"], "too_many_requests");
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    // Refusals reach the audit trail sampled: one row a minute per policy, not one per request.
    let again = token(&s, &tenant.id, "app", &secret).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    let rows = s.audit_events(&tenant.id, "rate_limit.refused").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["details"]["policy"], "\"token-client\";q=3;w=60");
    assert_eq!(rows[0]["ip"], "127.0.0.1");
    assert_eq!(
        rows[0]["request_id"],
        refused.header("x-request-id").unwrap()
    );
    // Another client is counted on its own.
    assert_eq!(
        token(&s, &tenant.id, "other", &other).await.status,
        StatusCode::OK
    );
    // A wrong secret for the limited client is refused as before: only authenticated clients
    // are counted per client, so nobody can spend another client's quota.
    let wrong = token(&s, &tenant.id, "app", "wrong").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // A minute later the bucket has refilled.
    s.advance(61);
    assert_eq!(
        token(&s, &tenant.id, "app", &secret).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_name_clients_and_addresses() {
    let overrides = r#"{"client:slow": {"per_minute": 1}, "ip:127.0.0.1": {"per_minute": 4}}"#;
    let s = TestServer::start_with(Backend::Sqlite, &[("RL_OVERRIDES_JSON", overrides)]).await;
    let tenant = s.create_tenant().await;
    let secret = client(&s, &tenant, "slow").await;
    assert_eq!(
        token(&s, &tenant.id, "slow", &secret).await.status,
        StatusCode::OK
    );
    assert_limited(
        &token(&s, &tenant.id, "slow", &secret).await,
        "token-client",
        1,
    );

    // The address override applies to the authorization endpoint's pages: a page with the
    // headers, not JSON.
    let authorize = s.url(&format!("/a/{}/authorize?client_id=slow", tenant.id));
    let mut last = None;
    for _ in 0..5 {
        last = Some(s.http.get(&authorize).send().await.unwrap());
    }
    let page = last.unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        page.headers()["ratelimit-policy"],
        "\"authorize-ip\";q=4;w=60"
    );
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("Too many attempts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_admin_logins_block_the_address_for_a_while() {
    let s = TestServer::start_with(Backend::Sqlite, &[("RL_ADMIN_FAILURES_PER_IP", "3")]).await;
    let tenant = s.create_tenant().await;
    let path = format!("/a/{}/admin/clients", tenant.id);
    for _ in 0..3 {
        assert_eq!(
            s.get(&path, Some("guess")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = s.get(&path, Some("guess")).await;
    assert_limited(&blocked, "admin_failure-ip", 3);
    assert_eq!(blocked.json["error"], "rate_limited");
    // Blocked outright: even the right secret waits, so guessing gains nothing.
    let right = s.get(&path, Some(&tenant.admin_secret)).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    s.advance(61);
    assert_eq!(
        s.get(&path, Some(&tenant.admin_secret)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_limit_through_redis() {
    let env = [("REDIS_URL", REDIS), ("RL_TOKEN_PER_CLIENT", "4")];
    let a = TestServer::start_with(Backend::Postgres, &env).await;
    let b = a.replica().await;
    let tenant = a.create_tenant().await;
    let id = unique("shared");
    let secret = client(&a, &tenant, &id).await;
    for server in [&a, &b, &a, &b] {
        assert_eq!(
            token(server, &tenant.id, &id, &secret).await.status,
            StatusCode::OK
        );
    }
    let refused = token(&b, &tenant.id, &id, &secret).await;
    assert_limited(&refused, "token-client", 4);
    assert_eq!(
        token(&a, &tenant.id, &id, &secret).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_fails_closed_where_secrets_are_guarded_and_recovers() {
    let mut redis = e2e::redis::PrivateRedis::start().await;
    let url = redis.url();
    let s = TestServer::start_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())]).await;
    let strict = s.replica_with(&[("RL_FAIL_OPEN", "false")]).await;
    let tenant = s.create_tenant().await;
    let secret = client(&s, &tenant, "app").await;
    let path = format!("/a/{}/admin/clients", tenant.id);
    assert_eq!(s.get("/readyz", None).await.status, StatusCode::OK);

    redis.stop();
    assert_eq!(
        s.get("/readyz", None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Limits that guard no secret follow RL_FAIL_OPEN (default true): requests go through...
    assert_eq!(
        token(&s, &tenant.id, "app", &secret).await.status,
        StatusCode::OK
    );
    // ...or, with RL_FAIL_OPEN=false, are refused.
    let refused = token(&strict, &tenant.id, "app", &secret).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.json["error"], "temporarily_unavailable");
    // Admin authentication guards a secret: refused while its limit cannot be counted.
    let closed = s.get(&path, Some(&tenant.admin_secret)).await;
    assert_eq!(
        closed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        closed.text
    );
    assert!(closed.header("retry-after").is_some());

    redis.restart().await;
    let mut recovered = false;
    for _ in 0..50 {
        if s.get(&path, Some(&tenant.admin_secret)).await.status == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "admin works again once Redis is back");
    assert_eq!(s.get("/readyz", None).await.status, StatusCode::OK);
    assert_eq!(
        token(&strict, &tenant.id, "app", &secret).await.status,
        StatusCode::OK
    );
    strict.stop().await;
}

async fn audit_ips(s: &TestServer, tenant: &str) -> Vec<Value> {
    s.audit_events(tenant, "token.issued")
        .await
        .into_iter()
        .map(|row| row["ip"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let spoof = |s: &TestServer, tenant: &str, secret: &str| {
        s.http
            .post(s.url(&format!("/a/{tenant}/token")))
            .basic_auth("app", Some(secret.to_owned()))
            .header("x-forwarded-for", "198.51.100.7")
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let untrusted = TestServer::start(Backend::Sqlite).await;
    let tenant = untrusted.create_tenant().await;
    let secret = client(&untrusted, &tenant, "app").await;
    assert_eq!(
        spoof(&untrusted, &tenant.id, &secret)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        audit_ips(&untrusted, &tenant.id).await,
        [json!("127.0.0.1")]
    );

    let behind_proxy =
        TestServer::start_with(Backend::Sqlite, &[("TRUSTED_PROXIES", "127.0.0.1/32, ::1")]).await;
    let tenant = behind_proxy.create_tenant().await;
    let secret = client(&behind_proxy, &tenant, "app").await;
    assert_eq!(
        spoof(&behind_proxy, &tenant.id, &secret)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        audit_ips(&behind_proxy, &tenant.id).await,
        [json!("198.51.100.7")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_can_stop_token_issuance_and_resume_it() {
    let s = TestServer::start(Backend::Postgres).await;
    let tenant = s.create_tenant().await;
    let secret = client(&s, &tenant, "app").await;
    let path = format!("/admin/tenants/{}", tenant.id);
    let patch = |paused: bool| {
        s.send(
            e2e::reqwest::Method::PATCH,
            &path,
            Some(&s.root_secret),
            Some(json!({ "issuance_paused": paused })),
        )
    };
    assert_eq!(patch(true).await.json["issuance_paused"], true);
    s.advance(3); // past the tenant cache's bound
    let refused = token(&s, &tenant.id, "app", &secret).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.json["error"], "temporarily_unavailable");
    assert_eq!(
        s.audit_events(&tenant.id, "tenant.issuance_paused")
            .await
            .len(),
        1
    );
    assert_eq!(patch(false).await.json["issuance_paused"], false);
    s.advance(3);
    assert_eq!(
        token(&s, &tenant.id, "app", &secret).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.audit_events(&tenant.id, "tenant.issuance_resumed")
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_client_is_refused_everywhere_until_reactivated() {
    let (w, first, endpoint) = crate::refresh::signed_in(Backend::Sqlite).await;
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh_token = first["refresh_token"].as_str().unwrap().to_owned();
    let path = format!("/a/{}/admin/clients/{}", w.tenant.id, w.client_id);
    let set = |status: &'static str| {
        w.s.send(
            e2e::reqwest::Method::PATCH,
            &path,
            Some(&w.tenant.admin_secret),
            Some(json!({ "status": status })),
        )
    };
    assert_eq!(set("suspended").await.status, StatusCode::OK);
    w.s.advance(3); // past the client cache's bound

    // The authorization endpoint: an error page, never a redirect to the client.
    let (_, challenge) = crate::sign_in::pkce();
    let page =
        w.s.http
            .get(w.authorize_url(&challenge, ""))
            .send()
            .await
            .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
    // Pushed requests, the token endpoint (refresh), revocation: invalid_client.
    let client_id = w.client_id.as_str();
    let par =
        w.s.form(
            &format!("{}/par", w.issuer),
            None,
            &[("client_id", client_id), ("response_type", "code")],
        )
        .await;
    assert_eq!(par.status, StatusCode::UNAUTHORIZED, "{}", par.text);
    let refreshed = crate::refresh::refresh(&w, &endpoint, &refresh_token, &[]).await;
    assert_eq!(refreshed.json["error"], "invalid_client");
    let revoke =
        w.s.form(
            &format!("{}/revoke", w.issuer),
            None,
            &[("token", refresh_token.as_str()), ("client_id", client_id)],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::UNAUTHORIZED);
    // Its tokens stop working at userinfo.
    let userinfo =
        w.s.http
            .get(format!("{}/userinfo", w.issuer))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "client.suspended")
            .await
            .len(),
        1
    );

    // Reactivated, its grant carries on: suspension pauses, it does not revoke.
    assert_eq!(set("active").await.status, StatusCode::OK);
    w.s.advance(3);
    let refreshed = crate::refresh::refresh(&w, &endpoint, &refresh_token, &[]).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "client.reactivated")
            .await
            .len(),
        1
    );
}

/// Two real provider processes on one PostgreSQL database and one Redis share one limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_provider_processes_share_one_limit() {
    let database = e2e::pg::FreshDatabase::create().await;
    let root = provider::crypto::random_secret();
    let key = e2e::random_key_b64();
    let client_id = unique("proc");
    let dir = tempfile::tempdir().unwrap();
    let mut processes = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let port = e2e::binary::free_port();
        let bind = format!("127.0.0.1:{port}");
        let env = [
            ("BIND", bind.as_str()),
            ("DATABASE_URL", database.url.as_str()),
            ("ADMIN_SECRET", root.as_str()),
            ("KEY_ENCRYPTION_KEY", key.as_str()),
            ("REDIS_URL", REDIS),
            ("RL_TOKEN_PER_CLIENT", "4"),
        ];
        let mut process = e2e::binary::Running::spawn(&["serve"], &env, dir.path());
        let base = format!("http://{bind}");
        process
            .wait_ready(
                &format!("{base}/readyz"),
                std::time::Duration::from_secs(60),
            )
            .await;
        processes.push(process);
        bases.push(base);
    }
    let http = reqwest::Client::new();
    let tenant = unique("t");
    let created = http
        .post(format!("{}/admin/tenants", bases[0]))
        .header("x-admin-secret", &root)
        .json(&json!({ "id": tenant }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let registered: Value = http
        .post(format!("{}/a/{tenant}/admin/clients", bases[0]))
        .header("x-admin-secret", &root)
        .json(&json!({ "client_id": client_id, "grant_types": ["client_credentials"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let issue = |base: &str| {
        http.post(format!("{base}/a/{tenant}/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for base in [&bases[0], &bases[1], &bases[0], &bases[1]] {
        assert_eq!(issue(base).await.unwrap().status(), StatusCode::OK);
    }
    let refused = issue(&bases[1]).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers()["ratelimit-policy"],
        "\"token-client\";q=4;w=60"
    );
    assert_eq!(
        issue(&bases[0]).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    drop(processes);
}

/// Sending links is limited per address (by digest) as well as by the database's quiet limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magic_links_are_limited_per_address() {
    use crate::sign_in::{browser, field, location, pkce, world_with};
    let w = world_with(Backend::Sqlite, &[("RL_LINK_PER_EMAIL", "1")]).await;
    let (_, challenge) = pkce();
    let send = |address: &'static str| {
        let w = &w;
        let challenge = challenge.clone();
        async move {
            let b = browser();
            let start = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
            let login = location(&start);
            let html = b.get(&login).send().await.unwrap().text().await.unwrap();
            b.post(&login)
                .form(&[("email", address), ("csrf", &field(&html, "csrf"))])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(send("ada@example.com").await.status(), StatusCode::OK);
    let refused = send("ada@example.com").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers()["ratelimit-policy"],
        "\"link-email\";q=1;w=60"
    );
    // Any other address, known or not, is counted on its own.
    assert_eq!(send("nobody@example.com").await.status(), StatusCode::OK);
}
