//! Tenant isolation, table by table: whatever tenant A writes, tenant B (with its own secret)
//! can neither read nor change, and the store finds nothing when asked as B.

use e2e::{TestServer, both_databases, json, reqwest::StatusCode};
use provider::store;
use reqwest::Method;
use shared::TenantId;

async fn clients_of_one_tenant_are_invisible_to_another(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    let body = json!({ "client_id": "shared-name", "grant_types": ["client_credentials"] });
    s.post(
        &format!("/a/{}/admin/clients", a.id),
        Some(&a.admin_secret),
        body,
    )
    .await;

    let as_b = |method: Method, suffix: &str, body: Option<serde_json::Value>| {
        let path = format!("/a/{}/admin/clients/shared-name{suffix}", b.id);
        let secret = b.admin_secret.clone();
        let s = &s;
        async move { s.send(method, &path, Some(&secret), body).await }
    };
    assert_eq!(
        as_b(Method::GET, "", None).await.status,
        StatusCode::NOT_FOUND
    );
    let put = as_b(
        Method::PUT,
        "",
        Some(json!({ "grant_types": ["client_credentials"] })),
    )
    .await;
    assert_eq!(put.status, StatusCode::NOT_FOUND);
    let patch = as_b(Method::PATCH, "", Some(json!({ "status": "revoked" }))).await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    assert_eq!(
        as_b(Method::POST, "/secret", Some(json!({}))).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = s
        .get(&format!("/a/{}/admin/clients", b.id), Some(&b.admin_secret))
        .await;
    assert_eq!(listed.json["items"], json!([]));

    let b_id = TenantId::parse(&b.id).unwrap();
    let a_id = TenantId::parse(&a.id).unwrap();
    assert!(
        store::clients::get(s.state.store.reader(), &b_id, "shared-name")
            .await
            .unwrap()
            .is_none()
    );
    let a_client = store::clients::get(s.state.store.reader(), &a_id, "shared-name")
        .await
        .unwrap();
    assert_eq!(
        a_client.unwrap().status,
        store::clients::ClientStatus::Active,
        "B changed nothing"
    );
}

async fn users_of_one_tenant_are_invisible_to_another(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    let user = s
        .post(
            &format!("/a/{}/admin/users", a.id),
            Some(&a.admin_secret),
            json!({ "email": "ada@example.com" }),
        )
        .await;
    let user_id = user.json["user_id"].as_str().unwrap();

    let path = format!("/a/{}/admin/users/{user_id}", b.id);
    assert_eq!(
        s.get(&path, Some(&b.admin_secret)).await.status,
        StatusCode::NOT_FOUND
    );
    let patch = s
        .send(
            Method::PATCH,
            &path,
            Some(&b.admin_secret),
            Some(json!({ "status": "disabled" })),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    let by_email = s
        .get(
            &format!("/a/{}/admin/users?email=ada@example.com", b.id),
            Some(&b.admin_secret),
        )
        .await;
    assert_eq!(by_email.json["items"], json!([]));
    // The same address is free in B: emails are unique per tenant, not globally.
    let same = s
        .post(
            &format!("/a/{}/admin/users", b.id),
            Some(&b.admin_secret),
            json!({ "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(same.status, StatusCode::CREATED);
    assert_ne!(same.json["user_id"], user_id);

    let b_id = TenantId::parse(&b.id).unwrap();
    assert!(
        store::users::get(s.state.store.reader(), &b_id, user_id)
            .await
            .unwrap()
            .is_none()
    );
    let a_user = s
        .get(
            &format!("/a/{}/admin/users/{user_id}", a.id),
            Some(&a.admin_secret),
        )
        .await;
    assert_eq!(a_user.json["status"], "active", "B changed nothing");
}

async fn audit_rows_of_one_tenant_are_invisible_to_another(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    s.post(
        &format!("/a/{}/admin/users", a.id),
        Some(&a.admin_secret),
        json!({ "email": "ada@example.com" }),
    )
    .await;
    let b_rows = s
        .get(&format!("/a/{}/admin/audit", b.id), Some(&b.admin_secret))
        .await;
    let events: Vec<&str> = b_rows.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["tenant.created", "key.activated", "key.staged"],
        "only B's own creation"
    );
    assert!(!b_rows.text.contains("ada@example.com"));
    let a_rows = store::audit::list(s.state.store.reader(), &a.id, 0, Some("user.created"), 10)
        .await
        .unwrap();
    assert_eq!(a_rows.len(), 1);
}

async fn tenant_secrets_are_per_tenant_rows(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    let rotated = s
        .post(
            &format!("/a/{}/admin/secret", a.id),
            Some(&a.admin_secret),
            json!({}),
        )
        .await;
    let a_secret = rotated.json["admin_secret"].as_str().unwrap();
    // Rotating A's secret leaves B's working.
    let b_ok = s
        .get(&format!("/a/{}/admin/users", b.id), Some(&b.admin_secret))
        .await;
    assert_eq!(b_ok.status, StatusCode::OK);
    let a_ok = s
        .post(
            &format!("/a/{}/admin/secret", b.id),
            Some(a_secret),
            json!({}),
        )
        .await;
    assert_eq!(
        a_ok.status,
        StatusCode::UNAUTHORIZED,
        "A cannot rotate B's secret"
    );
}

both_databases!(
    clients_of_one_tenant_are_invisible_to_another,
    users_of_one_tenant_are_invisible_to_another,
    audit_rows_of_one_tenant_are_invisible_to_another,
    tenant_secrets_are_per_tenant_rows,
);
