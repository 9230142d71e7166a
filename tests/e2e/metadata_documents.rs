//! Client ID Metadata Documents: a `client_id` that is a URL is fetched (through the SSRF
//! guard) and becomes a third-party public client, and every way a document can be wrong or
//! dangerous is refused. The documents are served by a server on loopback, which only the
//! test-only allowlist lets the provider reach.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Json, Router, http::header, response::IntoResponse, routing::get};
use e2e::{Backend, TestServer, reqwest::StatusCode};
use serde_json::json;

/// Serves good and bad documents; returns the base URL and how often `/counted.json` (a 404)
/// was asked for.
async fn documents() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let id = |path: &str| format!("{base}{path}");
    let good = json!({
        "client_id": id("/oauth/client.json"),
        "client_name": "Doc Client",
        "scope": "openid email",
        "redirect_uris": ["http://127.0.0.1:9/cb"],
        "application_type": "native",
    });
    let wrong = json!({ "client_id": id("/elsewhere.json"), "redirect_uris": ["http://127.0.0.1:9/cb"], "application_type": "native" });
    let secret = json!({ "client_id": id("/secret.json"), "client_secret": "x", "redirect_uris": ["http://127.0.0.1:9/cb"], "application_type": "native" });
    let big = json!({ "client_id": id("/big.json"), "client_name": "x".repeat(6000) });
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/counted.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::NOT_FOUND }
            }),
        )
        .route(
            "/oauth/client.json",
            get(move || async move { ([(header::CACHE_CONTROL, "max-age=600")], Json(good)) }),
        )
        .route("/wrong.json", get(move || async move { Json(wrong) }))
        .route("/secret.json", get(move || async move { Json(secret) }))
        .route("/big.json", get(move || async move { Json(big) }))
        .route(
            "/redirect.json",
            get(|| async {
                axum::response::Redirect::temporary("/oauth/client.json").into_response()
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

async fn authorize(s: &TestServer, tenant: &str, client_id: &str) -> e2e::reqwest::Response {
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let url = s.url(&format!(
        "/a/{tenant}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        encode(client_id),
        encode("http://127.0.0.1:9/cb"),
    ));
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_client_id_is_fetched_checked_and_guarded() {
    let (base, hits) = documents().await;
    let s = TestServer::start_with(
        Backend::Sqlite,
        &[("CLIENT_METADATA_ALLOW_HOSTS", "127.0.0.1")],
    )
    .await;
    let tenant = s.create_tenant().await;
    let doc = s.discover(&tenant.id).await;
    assert_eq!(doc["client_id_metadata_document_supported"], true);

    let client_id = format!("{base}/oauth/client.json");
    let accepted = authorize(&s, &tenant.id, &client_id).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let location = accepted.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/login/"), "{location}");

    for bad in [
        "/wrong.json",
        "/secret.json",
        "/big.json",
        "/redirect.json",
        "/missing.json",
    ] {
        let refused = authorize(&s, &tenant.id, &format!("{base}{bad}")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            refused.headers().get("location").is_none(),
            "{bad}: never redirected"
        );
    }

    // A URL that failed is not fetched again for a minute.
    let counted = format!("{base}/counted.json");
    for _ in 0..3 {
        assert_eq!(
            authorize(&s, &tenant.id, &counted).await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    s.advance(61);
    authorize(&s, &tenant.id, &counted).await;
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // Without the allowlist, a loopback address is never fetched.
    let guarded = TestServer::start(Backend::Sqlite).await;
    let other = guarded.create_tenant().await;
    let refused = authorize(&guarded, &other.id, &client_id).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // A tenant that takes no registrations takes no metadata documents either.
    let closed = s
        .post(
            &format!("/a/{}/admin/registration", tenant.id),
            Some(&tenant.admin_secret),
            json!({ "policy": "closed" }),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK);
    s.advance(3);
    assert_eq!(
        authorize(&s, &tenant.id, &client_id).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert!(
        s.discover(&tenant.id)
            .await
            .get("client_id_metadata_document_supported")
            .is_none()
    );
}

/// A document served over https is fetched only when its certificate chains to a trusted
/// authority: the built-in web roots, or those in `FETCH_CA_FILE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_documents_need_a_trusted_certificate() {
    let document = std::sync::Arc::new(std::sync::OnceLock::new());
    let served = document.clone();
    let app = Router::new().route(
        "/client.json",
        get(move || {
            let body: serde_json::Value = served.get().cloned().unwrap();
            async move { Json(body) }
        }),
    );
    let server = e2e::tls::HttpsServer::start(app).await;
    let client_id = format!("{}/client.json", server.base_url);
    document
        .set(json!({
            "client_id": client_id,
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "application_type": "native",
        }))
        .unwrap();
    let allow = ("CLIENT_METADATA_ALLOW_HOSTS", "localhost");

    let untrusting = TestServer::start_with(Backend::Sqlite, &[allow]).await;
    let tenant = untrusting.create_tenant().await;
    let refused = authorize(&untrusting, &tenant.id, &client_id).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let ca = server.ca_file.to_str().unwrap();
    let trusting = TestServer::start_with(Backend::Sqlite, &[allow, ("FETCH_CA_FILE", ca)]).await;
    let tenant = trusting.create_tenant().await;
    let accepted = authorize(&trusting, &tenant.id, &client_id).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
}
