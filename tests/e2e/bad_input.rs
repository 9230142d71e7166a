//! Malformed requests: each gets a clear 4xx in the admin error format, never a 500, and
//! nothing is written.

use e2e::{TestServer, both_databases, json, reqwest::StatusCode};

async fn malformed_json_and_wrong_content_types_are_refused(s: TestServer) {
    let url = s.url("/admin/tenants");
    let send = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = s
            .http
            .post(&url)
            .header("x-admin-secret", &s.root_secret)
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        async move { e2e::read(request.send().await.unwrap()).await }
    };
    let syntax = send("{\"id\": ", Some("application/json")).await;
    assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
    assert_eq!(syntax.admin_error(), "invalid_json");
    let form = send("id=acme", Some("application/x-www-form-urlencoded")).await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(form.admin_error(), "unsupported_media_type");
    let none = send("{\"id\": \"acme\"}", None).await;
    assert_eq!(none.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let array = send("[1, 2]", Some("application/json")).await;
    assert_eq!(array.status, StatusCode::BAD_REQUEST);
    assert_eq!(array.admin_error(), "invalid_request");

    let listed = s.get("/admin/tenants", Some(&s.root_secret)).await;
    assert_eq!(listed.json["items"], json!([]));
}

async fn oversized_bodies_are_413(s: TestServer) {
    let t = s.create_tenant().await;
    let huge = json!({ "email": "ada@example.com", "name": "x".repeat(200 * 1024) });
    let reply = s
        .post(
            &format!("/a/{}/admin/users", t.id),
            Some(&t.admin_secret),
            huge,
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.admin_error(), "payload_too_large");
}

async fn unknown_routes_and_root_discovery_are_404(s: TestServer) {
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/nothing-here",
    ] {
        let reply = s.get(path, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json["error"], "not_found");
    }
}

async fn every_response_carries_a_request_id_and_nosniff(s: TestServer) {
    let chosen = s
        .http
        .get(s.url("/healthz"))
        .header("x-request-id", "lb-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.headers()["x-request-id"], "lb-1234.abc");
    assert_eq!(chosen.headers()["x-content-type-options"], "nosniff");
    let hostile = s
        .http
        .get(s.url("/healthz"))
        .header("x-request-id", "a\"b<script>")
        .send()
        .await
        .unwrap();
    let generated = hostile.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(generated).is_ok(),
        "a bad id is replaced: {generated}"
    );
}

both_databases!(
    malformed_json_and_wrong_content_types_are_refused,
    oversized_bodies_are_413,
    unknown_routes_and_root_discovery_are_404,
    every_response_carries_a_request_id_and_nosniff,
);
