//! `/a/{t}/admin/clients`: RFC 7591 registration by an administrator, reading, replacement,
//! status changes and secret rotation.

use e2e::{TestServer, TestTenant, both_databases, json, reqwest::StatusCode};
use reqwest::Method;
use serde_json::Value;

fn web_client() -> Value {
    json!({
        "client_name": "Web app",
        "redirect_uris": ["https://app.example.com/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid email offline_access",
    })
}

async fn create(s: &TestServer, t: &TestTenant, body: Value) -> e2e::Reply {
    s.post(
        &format!("/a/{}/admin/clients", t.id),
        Some(&t.admin_secret),
        body,
    )
    .await
}

fn assert_no_nulls(value: &Value) {
    match value {
        Value::Null => panic!("null in a registration response"),
        Value::Array(items) => items.iter().for_each(assert_no_nulls),
        Value::Object(fields) => fields.values().for_each(assert_no_nulls),
        _ => {}
    }
}

async fn confidential_client_gets_rfc7591_response_and_secret_once(s: TestServer) {
    let t = s.create_tenant().await;
    let reply = create(&s, &t, web_client()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_no_nulls(&reply.json);
    let client_id = reply.json["client_id"].as_str().unwrap();
    let secret = reply.json["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43);
    assert_eq!(reply.json["client_secret_expires_at"], 0);
    assert!(reply.json["client_id_issued_at"].as_i64().unwrap() > 0);
    assert_eq!(
        reply.json["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(reply.json["response_types"], json!(["code"]));
    assert_eq!(reply.json["application_type"], "web");
    assert_eq!(
        reply.json["redirect_uris"],
        json!(["https://app.example.com/callback"])
    );
    assert_eq!(reply.json["status"], "active");

    let read = s
        .get(
            &format!("/a/{}/admin/clients/{client_id}", t.id),
            Some(&t.admin_secret),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.json.get("client_secret").is_none() && !read.text.contains(secret));
    let created = s.audit_events(&t.id, "client.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["client_id"], client_id);
    assert!(!created[0].to_string().contains(secret));
}

async fn public_client_has_no_secret(s: TestServer) {
    let t = s.create_tenant().await;
    let body = json!({
        "redirect_uris": ["http://127.0.0.1/callback", "com.example.app:/cb"],
        "application_type": "native",
        "token_endpoint_auth_method": "none",
    });
    let reply = create(&s, &t, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(reply.json.get("client_secret").is_none());
    assert!(reply.json.get("client_secret_expires_at").is_none());
    assert_no_nulls(&reply.json);
}

async fn invalid_metadata_is_400_and_writes_nothing(s: TestServer) {
    let t = s.create_tenant().await;
    let cases = [
        (json!({}), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": ["http://app.example.com/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://app.example.com/cb#x"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["javascript:alert(1)"], "application_type": "native" }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["client_credentials"], "client_id": "has space" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["client_credentials"], "client_name": "x".repeat(500) }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": "https://a.example/cb" }),
            "invalid_request",
        ),
    ];
    for (body, code) in cases {
        let reply = create(&s, &t, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.admin_error(), code, "{body}");
    }
    let listed = s
        .get(&format!("/a/{}/admin/clients", t.id), Some(&t.admin_secret))
        .await;
    assert_eq!(listed.json["items"], json!([]));
    assert!(s.audit_events(&t.id, "client.created").await.is_empty());
}

async fn chosen_client_ids_are_unique_per_tenant(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    let body = json!({ "client_id": "billing-api", "grant_types": ["client_credentials"] });
    assert_eq!(
        create(&s, &a, body.clone()).await.status,
        StatusCode::CREATED
    );
    let again = create(&s, &a, body.clone()).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.admin_error(), "client_exists");
    // Another tenant may use the same id: clients are keyed by tenant.
    assert_eq!(create(&s, &b, body).await.status, StatusCode::CREATED);
    assert_eq!(s.audit_events(&a.id, "client.created").await.len(), 1);
}

async fn status_moves_between_active_and_suspended_and_revocation_is_final(s: TestServer) {
    let t = s.create_tenant().await;
    let client = create(&s, &t, web_client()).await;
    let id = client.json["client_id"].as_str().unwrap();
    let path = format!("/a/{}/admin/clients/{id}", t.id);
    let set = |status: &'static str| {
        let path = path.clone();
        let secret = t.admin_secret.clone();
        let s = &s;
        async move {
            s.send(
                Method::PATCH,
                &path,
                Some(&secret),
                Some(json!({ "status": status })),
            )
            .await
        }
    };
    let suspended = set("suspended").await;
    assert_eq!(
        (suspended.status, suspended.json["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );
    let active = set("active").await;
    assert_eq!(active.json["status"], "active");
    let revoked = set("revoked").await;
    assert_eq!(revoked.json["status"], "revoked");
    let back = set("active").await;
    assert_eq!(back.status, StatusCode::CONFLICT);
    assert_eq!(back.admin_error(), "client_revoked");
    let bogus = set("deleted").await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);

    assert_eq!(s.audit_events(&t.id, "client.suspended").await.len(), 1);
    assert_eq!(s.audit_events(&t.id, "client.reactivated").await.len(), 1);
    assert_eq!(s.audit_events(&t.id, "client.revoked").await.len(), 1);
    let read = s.get(&path, Some(&t.admin_secret)).await;
    assert_eq!(read.json["status"], "revoked");
}

async fn replacing_metadata_follows_the_auth_method(s: TestServer) {
    let t = s.create_tenant().await;
    let public =
        json!({ "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" });
    let client = create(&s, &t, public).await;
    let id = client.json["client_id"].as_str().unwrap();
    let path = format!("/a/{}/admin/clients/{id}", t.id);

    let replaced = s
        .send(
            Method::PUT,
            &path,
            Some(&t.admin_secret),
            Some(web_client()),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(
        replaced.json["redirect_uris"],
        json!(["https://app.example.com/callback"])
    );
    assert!(
        replaced.json["client_secret"].is_string(),
        "a client that starts using a secret gets one"
    );

    let invalid = s
        .send(
            Method::PUT,
            &path,
            Some(&t.admin_secret),
            Some(json!({ "redirect_uris": ["ftp://x"] })),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    let read = s.get(&path, Some(&t.admin_secret)).await;
    assert_eq!(
        read.json["redirect_uris"],
        json!(["https://app.example.com/callback"]),
        "unchanged"
    );
    assert_eq!(s.audit_events(&t.id, "client.updated").await.len(), 1);

    let missing = s
        .send(
            Method::PUT,
            &format!("/a/{}/admin/clients/nope", t.id),
            Some(&t.admin_secret),
            Some(web_client()),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn rotating_a_client_secret_replaces_its_digest(s: TestServer) {
    let t = s.create_tenant().await;
    let client = create(&s, &t, json!({ "grant_types": ["client_credentials"] })).await;
    let id = client.json["client_id"].as_str().unwrap();
    let first = client.json["client_secret"].as_str().unwrap();
    let digest_before = stored_digest(&s, &t.id, id).await;

    let rotated = s
        .post(
            &format!("/a/{}/admin/clients/{id}/secret", t.id),
            Some(&t.admin_secret),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let second = rotated.json["client_secret"].as_str().unwrap();
    assert_ne!(first, second);
    let digest_after = stored_digest(&s, &t.id, id).await;
    assert_ne!(digest_before, digest_after);
    let digester = &s.state.digester;
    assert!(digester.verify(
        provider::crypto::SecretKind::ClientSecret,
        second,
        &digest_after
    ));
    assert!(!digester.verify(
        provider::crypto::SecretKind::ClientSecret,
        first,
        &digest_after
    ));
    assert_eq!(
        s.audit_events(&t.id, "client.secret_rotated").await.len(),
        1
    );

    let public = create(
        &s,
        &t,
        json!({ "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" }),
    )
    .await;
    let public_id = public.json["client_id"].as_str().unwrap();
    let refused = s
        .post(
            &format!("/a/{}/admin/clients/{public_id}/secret", t.id),
            Some(&t.admin_secret),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

async fn stored_digest(s: &TestServer, tenant: &str, client_id: &str) -> Vec<u8> {
    sqlx::query_scalar("SELECT secret_digest FROM clients WHERE tenant_id = $1 AND client_id = $2")
        .bind(tenant)
        .bind(client_id)
        .fetch_one(s.state.store.reader())
        .await
        .unwrap()
}

async fn clients_are_listed_in_pages(s: TestServer) {
    let t = s.create_tenant().await;
    for name in ["c-1", "c-2", "c-3"] {
        let body = json!({ "client_id": name, "grant_types": ["client_credentials"] });
        assert_eq!(create(&s, &t, body).await.status, StatusCode::CREATED);
    }
    let first = s
        .get(
            &format!("/a/{}/admin/clients?limit=2", t.id),
            Some(&t.admin_secret),
        )
        .await;
    let ids: Vec<&str> = first.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c-1", "c-2"]);
    assert_eq!(first.json["next"], "c-2");
    let second = s
        .get(
            &format!("/a/{}/admin/clients?limit=2&after=c-2", t.id),
            Some(&t.admin_secret),
        )
        .await;
    assert_eq!(second.json["items"].as_array().unwrap().len(), 1);
    assert!(second.json.get("next").is_none());
    for bad in ["limit=0", "limit=1001", "limit=x", "page=2"] {
        let reply = s
            .get(
                &format!("/a/{}/admin/clients?{bad}", t.id),
                Some(&t.admin_secret),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

both_databases!(
    confidential_client_gets_rfc7591_response_and_secret_once,
    public_client_has_no_secret,
    invalid_metadata_is_400_and_writes_nothing,
    chosen_client_ids_are_unique_per_tenant,
    status_moves_between_active_and_suspended_and_revocation_is_final,
    replacing_metadata_follows_the_auth_method,
    rotating_a_client_secret_replaces_its_digest,
    clients_are_listed_in_pages,
);
