//! What leaves the real binary through a whole flow (admin set-up, magic-link sign-in, code
//! exchange, refresh, reuse, userinfo, revocation, key revocation, a burst of failed admin
//! logins): its logs at `debug` hold one JSON line per request with route, status, latency,
//! request id and tenant; Sentry (an ingestion endpoint on loopback) gets the security events
//! with query breadcrumbs (SQL without parameters); and neither holds an email address, secret or token.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use e2e::{binary, json, random_key_b64, sentry::SentrySink, smtp::SmtpSink};
use reqwest::{Client, redirect::Policy};
use serde_json::Value;
use sha2::Digest;

use crate::sign_in::{field, location, query_of};

const LIMIT: Duration = Duration::from_secs(60);
const REDIRECT: &str = "http://127.0.0.1:9/cb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_leaks_nothing_to_logs_or_sentry() {
    let dir = tempfile::tempdir().unwrap();
    let mail = SmtpSink::start().await;
    let sentry = SentrySink::start().await;
    let port = binary::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let root = provider::crypto::random_secret();
    let (bind, key) = (format!("127.0.0.1:{port}"), random_key_b64());
    // PostgreSQL: its queries run on the request's task, so their breadcrumbs join the
    // request's events (SQLite runs statements on its own worker thread).
    let postgres = e2e::pg::FreshDatabase::create().await;
    let database = postgres.url.clone();
    let mut env: Vec<(&str, String)> = vec![
        ("BIND", bind),
        ("DATABASE_URL", database),
        ("ADMIN_SECRET", root.clone()),
        ("KEY_ENCRYPTION_KEY", key),
        ("LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
        ("SENTRY_DSN", sentry.dsn()),
        ("SENTRY_ENVIRONMENT", "test".to_owned()),
    ];
    env.extend(mail.env());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = binary::Running::spawn(&["serve"], &env, dir.path());
    server.wait_ready(&format!("{base}/readyz"), LIMIT).await;

    let http = Client::new();
    let admin = |path: &str, secret: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .header("x-admin-secret", secret)
            .json(&body)
            .send()
    };
    let created: Value = admin("/admin/tenants", &root, json!({ "id": "logs" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant_secret = created["admin_secret"].as_str().unwrap().to_owned();
    let client: Value = admin(
        "/a/logs/admin/clients",
        &tenant_secret,
        json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid email offline_access",
        }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    // No grace window, so presenting a rotated refresh token again is reuse at once.
    let patched = http
        .patch(format!("{base}/admin/tenants/logs"))
        .header("x-admin-secret", &root)
        .json(&json!({ "refresh_grace_secs": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let user = admin(
        "/a/logs/admin/users",
        &tenant_secret,
        json!({ "email": "ada.lovelace@example.com" }),
    )
    .await
    .unwrap();
    assert_eq!(user.status(), 201);

    // Sign in by magic link in a browser-like client.
    let browser = Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = format!(
        "{base}/a/logs/authorize?client_id={client_id}&redirect_uri={}&response_type=code\
         &scope=openid+email+offline_access&state=s1&nonce=n1&code_challenge={challenge}\
         &code_challenge_method=S256",
        urlencode(REDIRECT)
    );
    let start = browser.get(&authorize).send().await.unwrap();
    let login = location(&start);
    let html = browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form_token = field(&html, "csrf");
    let sent = browser
        .post(&login)
        .form(&[("email", "ada.lovelace@example.com"), ("csrf", &form_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let link = mail
        .wait_for("ada.lovelace@example.com", 1)
        .await
        .link(&format!("{base}/a/logs/login/confirm?token="))
        .unwrap();
    let page = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link_token = field(&page, "token");
    let confirmed = browser
        .post(format!("{base}/a/logs/login/confirm"))
        .form(&[
            ("token", link_token.as_str()),
            ("csrf", &field(&page, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    let code = query_of(&location(&confirmed))["code"].clone();
    let token_url = format!("{base}/a/logs/token");
    let tokens: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = refreshed["access_token"].as_str().unwrap().to_owned();
    let userinfo = http
        .get(format!("{base}/a/logs/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    // The first refresh token again: reuse, which Sentry hears of.
    let reused = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400);
    let revoked = http
        .post(format!("{base}/a/logs/revoke"))
        .form(&[
            ("token", refreshed["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let revoked_key = admin("/a/logs/admin/keys/revoke", &tenant_secret, json!({}))
        .await
        .unwrap();
    assert_eq!(revoked_key.status(), 200);
    // Wrong admin secrets: each logged without the secret, the burst reported once.
    let wrong = "not-the-secret-not-the-secret-not-the-secret";
    for _ in 0..provider::reporting::BURST_FAILURES {
        let denied = admin("/a/logs/admin/clients", wrong, json!({}))
            .await
            .unwrap();
        assert_eq!(denied.status(), 401);
    }

    let reuse = sentry.wait_for("refresh token reuse detected").await;
    assert!(reuse.contains("\"tenant\":\"logs\""), "{reuse}");
    assert!(reuse.contains("\"environment\":\"test\""), "{reuse}");
    assert!(
        reuse.contains("\"category\":\"sqlx::query\""),
        "query breadcrumbs: {reuse}"
    );
    assert!(reuse.contains("UPDATE refresh_families"), "{reuse}");
    sentry.wait_for("signing key revoked").await;
    sentry
        .wait_for("burst of failed admin authentications")
        .await;
    assert!(server.terminate(LIMIT).success());
    let logs = server.stdout();
    let sent = sentry.envelopes().join("\n");
    let bursts = sentry
        .envelopes()
        .iter()
        .filter(|e| e.contains("burst of failed admin authentications"))
        .count();
    assert_eq!(bursts, 1, "one report per burst");

    // One JSON line per request, with what an operator needs.
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "finished processing request")
        .collect();
    let token_lines: Vec<&&Value> = finished
        .iter()
        .filter(|l| l["span"]["route"] == "/a/{tenant}/token")
        .collect();
    let statuses: Vec<&Value> = token_lines.iter().map(|l| &l["status"]).collect();
    assert_eq!(statuses, [200, 200, 400], "code, refresh, reuse");
    for line in token_lines {
        assert!(line["latency"].is_string(), "{line}");
        assert_eq!(line["span"]["tenant"], "logs");
        assert_eq!(line["span"]["request_id"].as_str().unwrap().len(), 36);
    }

    let secrets = [
        "ada.lovelace",
        root.as_str(),
        tenant_secret.as_str(),
        wrong,
        link_token.as_str(),
        form_token.as_str(),
        code.as_str(),
        verifier.as_str(),
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
        refresh_token.as_str(),
        access.as_str(),
        refreshed["refresh_token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "the logs hold {secret}: {}",
            logs.lines()
                .find(|l| l.contains(secret))
                .unwrap_or_default()
        );
        assert!(!sent.contains(secret), "Sentry got {secret}: {sent}");
    }
    assert!(logs.contains("***@example.com") || !logs.contains("@example.com"));
}

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
