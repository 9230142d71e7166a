//! `/a/{t}/admin/users`: creating, finding, updating and disabling the people of a tenant.

use e2e::{TestServer, TestTenant, both_databases, json, reqwest::StatusCode};
use reqwest::Method;

async fn create(s: &TestServer, t: &TestTenant, body: serde_json::Value) -> e2e::Reply {
    s.post(
        &format!("/a/{}/admin/users", t.id),
        Some(&t.admin_secret),
        body,
    )
    .await
}

async fn users_are_created_with_a_stable_id_and_normalized_email(s: TestServer) {
    let t = s.create_tenant().await;
    let reply = create(
        &s,
        &t,
        json!({ "email": " Ada@Example.COM ", "name": "Ada" }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let user_id = reply.json["user_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(user_id).is_ok());
    assert_eq!(reply.json["email"], "ada@example.com");
    assert_eq!(reply.json["name"], "Ada");
    assert_eq!(reply.json["status"], "active");

    let dup = create(&s, &t, json!({ "email": "ADA@example.com" })).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.admin_error(), "user_exists");
    let created = s.audit_events(&t.id, "user.created").await;
    assert_eq!(created.len(), 1, "the refused duplicate left no audit row");
    assert_eq!(created[0]["user_id"], user_id);

    let found = s
        .get(
            &format!("/a/{}/admin/users?email=ada@EXAMPLE.com", t.id),
            Some(&t.admin_secret),
        )
        .await;
    assert_eq!(found.json["items"][0]["user_id"], user_id);
    let read = s
        .get(
            &format!("/a/{}/admin/users/{user_id}", t.id),
            Some(&t.admin_secret),
        )
        .await;
    assert_eq!(read.json["email"], "ada@example.com");
}

async fn bad_user_input_is_400(s: TestServer) {
    let t = s.create_tenant().await;
    for (body, code) in [
        (json!({ "email": "not-an-address" }), "invalid_email"),
        (json!({ "email": "a@b" }), "invalid_email"),
        (
            json!({ "email": format!("{}@example.com", "a".repeat(300)) }),
            "invalid_email",
        ),
        (
            json!({ "email": "ada@example.com", "name": "n".repeat(201) }),
            "invalid_request",
        ),
        (
            json!({ "email": "ada@example.com", "role": "admin" }),
            "invalid_request",
        ),
        (json!({ "name": "no email" }), "invalid_request"),
    ] {
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
        .get(&format!("/a/{}/admin/users", t.id), Some(&t.admin_secret))
        .await;
    assert_eq!(listed.json["items"], json!([]));
}

async fn the_domain_allowlist_is_enforced(s: TestServer) {
    let id = e2e::unique("corp");
    let created = s
        .post(
            "/admin/tenants",
            Some(&s.root_secret),
            json!({ "id": id, "allowed_email_domains": ["corp.example"] }),
        )
        .await;
    let t = TestTenant {
        id,
        admin_secret: created.json["admin_secret"].as_str().unwrap().to_owned(),
    };
    let outside = create(&s, &t, json!({ "email": "eve@elsewhere.example" })).await;
    assert_eq!(outside.status, StatusCode::BAD_REQUEST);
    assert_eq!(outside.admin_error(), "email_domain_not_allowed");
    let inside = create(&s, &t, json!({ "email": "bob@corp.example" })).await;
    assert_eq!(inside.status, StatusCode::CREATED);
}

async fn users_are_disabled_enabled_and_renamed(s: TestServer) {
    let t = s.create_tenant().await;
    let ada = create(&s, &t, json!({ "email": "ada@example.com" })).await;
    create(&s, &t, json!({ "email": "bob@example.com" })).await;
    let path = format!(
        "/a/{}/admin/users/{}",
        t.id,
        ada.json["user_id"].as_str().unwrap()
    );
    let patch = |body| s.send(Method::PATCH, &path, Some(&t.admin_secret), Some(body));

    let disabled = patch(json!({ "status": "disabled" })).await;
    assert_eq!(disabled.json["status"], "disabled");
    let enabled = patch(json!({ "status": "active", "name": "Ada L." })).await;
    assert_eq!(
        (
            enabled.json["status"].as_str(),
            enabled.json["name"].as_str()
        ),
        (Some("active"), Some("Ada L."))
    );
    let taken = patch(json!({ "email": "Bob@example.com" })).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let bogus = patch(json!({ "status": "deleted" })).await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
    let renamed = patch(json!({ "email": "ada.l@example.com" })).await;
    assert_eq!(renamed.json["email"], "ada.l@example.com");

    assert_eq!(s.audit_events(&t.id, "user.disabled").await.len(), 1);
    assert_eq!(s.audit_events(&t.id, "user.enabled").await.len(), 1);
    let updated = s.audit_events(&t.id, "user.updated").await;
    assert_eq!(updated.len(), 1, "the refused email change left no row");
    let missing = s
        .send(
            Method::PATCH,
            &format!("/a/{}/admin/users/nobody", t.id),
            Some(&t.admin_secret),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Many writers at once: SQLite serializes them in-process, PostgreSQL runs them side by side;
/// neither answers anything but 201.
async fn concurrent_writes_all_succeed(s: TestServer) {
    let t = s.create_tenant().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let http = s.http.clone();
        let url = s.url(&format!("/a/{}/admin/users", t.id));
        let secret = t.admin_secret.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("x-admin-secret", secret)
                .json(&json!({ "email": format!("user{i}@example.com") }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    let listed = s
        .get(
            &format!("/a/{}/admin/users?limit=1000", t.id),
            Some(&t.admin_secret),
        )
        .await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 50);
    assert_eq!(s.audit_events(&t.id, "user.created").await.len(), 50);
}

both_databases!(
    users_are_created_with_a_stable_id_and_normalized_email,
    bad_user_input_is_400,
    the_domain_allowlist_is_enforced,
    users_are_disabled_enabled_and_renamed,
    concurrent_writes_all_succeed,
);
