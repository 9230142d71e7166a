//! Browser sessions kept by tower-sessions: the cookie's flags and renewal at sign-in, records
//! found by the cookie's digest in the database, and in Redis (shared by replicas) when
//! `REDIS_URL` is set.

use std::sync::Arc;

use e2e::{Backend, both_backends, reqwest::StatusCode};
use provider::crypto::SecretKind;
use redis::AsyncCommands;
use reqwest::{
    Client,
    cookie::{CookieStore, Jar},
    redirect::Policy,
};

use crate::sign_in::{World, field, location, pkce, query_of, world, world_with};

const REDIS: &str = "redis://127.0.0.1:6379";

/// A browser whose cookie jar the test can read and plant cookies in.
fn browser_with_jar() -> (Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let client = Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap();
    (client, jar)
}

/// The session cookie's value in the jar, if any.
fn session_cookie(jar: &Jar, w: &World) -> Option<String> {
    let url = url::Url::parse(&w.s.base_url).unwrap();
    let header = jar.cookies(&url)?;
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|pair| pair.strip_prefix("session="))
        .map(str::to_owned)
}

/// Where a session record lives in Redis: under the keyed digest of the cookie's id.
fn redis_key(w: &World, cookie: &str) -> String {
    let digest = w.s.state.digester.digest(SecretKind::WebSession, cookie);
    format!("web_session:{}", provider::crypto::hex(&digest))
}

async fn stored_records(w: &World) -> Vec<(Vec<u8>, String)> {
    sqlx::query_as("SELECT id_digest, data FROM web_sessions")
        .fetch_all(w.s.state.store.reader())
        .await
        .unwrap()
}

/// Signs out in `browser` through the logout page's button.
async fn sign_out(browser: &Client, issuer: &str) {
    let page = browser
        .get(format!("{issuer}/logout"))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    let out = browser
        .post(format!("{issuer}/logout"))
        .form(&[("csrf", field(&html, "csrf"))])
        .send()
        .await
        .unwrap();
    assert!(out.text().await.unwrap().contains("Signed out"));
}

async fn the_session_cookie_is_hardened_renewed_and_stored_by_digest(backend: Backend) {
    let w = world(backend).await;
    let (b, jar) = browser_with_jar();
    // A session id fixed by someone else beforehand is never the one signed in with.
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let url = url::Url::parse(&w.s.base_url).unwrap();
    jar.add_cookie_str(&format!("session={planted}; Path=/"), &url);
    let (_, challenge) = pkce();
    w.ask_for_link(&b, &challenge, "ada@example.com").await;
    assert!(
        stored_records(&w).await.is_empty(),
        "nothing is stored before sign-in"
    );
    let link = w.link(1).await;
    let done = w.open_and_confirm(&b, &link).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let set_cookie: Vec<String> = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|v| v.starts_with("session="))
        .collect();
    assert_eq!(set_cookie.len(), 1, "{set_cookie:?}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie[0].contains(flag), "{flag} in {}", set_cookie[0]);
    }
    assert!(
        !set_cookie[0].contains("Secure"),
        "plain http in tests: no Secure"
    );
    let cookie = session_cookie(&jar, &w).unwrap();
    assert_ne!(cookie, planted, "a new session id at sign-in");

    // The database holds the cookie's digest, never the cookie; the record names the tenant.
    let records = stored_records(&w).await;
    assert_eq!(records.len(), 1);
    let digest = w.s.state.digester.digest(SecretKind::WebSession, &cookie);
    assert_eq!(records[0].0, digest);
    assert!(!records[0].1.contains(&cookie));
    assert!(records[0].1.contains(&w.tenant.id), "{}", records[0].1);

    // Single sign-on with the cookie; a browser with a forged cookie gets the sign-in page.
    let again = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert!(query_of(&location(&again)).contains_key("code"));
    // Someone who read the store holds only digests, which make no cookie.
    let (forger, forged_jar) = browser_with_jar();
    forged_jar.add_cookie_str(&format!("session={}; Path=/", digest_b64(&digest)), &url);
    let forged = forger
        .get(w.authorize_url(&challenge, ""))
        .send()
        .await
        .unwrap();
    assert!(location(&forged).contains("/login/"));

    // A fresh sign-in in the same browser renews the id again and keeps one record.
    w.s.advance(1);
    let fresh = b
        .get(w.authorize_url(&challenge, "&prompt=login"))
        .send()
        .await
        .unwrap();
    let login = location(&fresh);
    assert!(login.contains("/login/"));
    let html = b.get(&login).send().await.unwrap().text().await.unwrap();
    let sent = b
        .post(&login)
        .form(&[
            ("email", "ada@example.com"),
            ("csrf", &field(&html, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let link = w.link(2).await;
    let done = w.open_and_confirm(&b, &link).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let renewed = session_cookie(&jar, &w).unwrap();
    assert_ne!(renewed, cookie);
    assert_eq!(stored_records(&w).await.len(), 1, "the old record is gone");

    // Signing out of the only tenant deletes the record.
    sign_out(&b, &w.issuer).await;
    assert!(stored_records(&w).await.is_empty());
    let after = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert!(location(&after).contains("/login/"));
}

/// A digest's first 128 bits in a session id's shape.
fn digest_b64(digest: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

async fn with_redis_sessions_live_in_redis_and_follow_the_browser_across_replicas(
    backend: Backend,
) {
    let w = world_with(backend, &[("REDIS_URL", REDIS)]).await;
    let (b, jar) = browser_with_jar();
    let (_, challenge) = pkce();
    w.sign_in(&b, &challenge).await;
    let cookie = session_cookie(&jar, &w).unwrap();
    let key = redis_key(&w, &cookie);
    let mut redis = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis.ttl(&key).await.unwrap();
    assert!(
        (7 * 24 * 3600 - 120..=7 * 24 * 3600 + 120).contains(&ttl),
        "expires by itself after the absolute lifetime: {ttl}"
    );
    let value: String = redis.get(&key).await.unwrap();
    assert!(value.contains(&w.tenant.id) && !value.contains(&cookie));
    assert!(
        stored_records(&w).await.is_empty(),
        "nothing in the database"
    );

    // Another replica behind the same load balancer knows the browser.
    let replica = w.s.replica().await;
    let replica_issuer = format!("{}/a/{}", replica.base_url, w.tenant.id);
    let silent = w
        .authorize_url(&challenge, "&prompt=none")
        .replace(&w.issuer, &replica_issuer);
    let answer = b.get(&silent).send().await.unwrap();
    assert!(
        query_of(&location(&answer)).contains_key("code"),
        "{}",
        location(&answer)
    );

    // Signing out there removes the record from Redis, for every replica.
    sign_out(&b, &replica_issuer).await;
    let exists: bool = redis.exists(&key).await.unwrap();
    assert!(!exists);
    let after = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert!(location(&after).contains("/login/"));
    replica.stop().await;
}

both_backends!(
    the_session_cookie_is_hardened_renewed_and_stored_by_digest,
    with_redis_sessions_live_in_redis_and_follow_the_browser_across_replicas,
);
