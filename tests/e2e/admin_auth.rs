//! `x-admin-secret`: root opens every tenant, a tenant's secret only its own; failures are 401
//! in the admin format and audited; secrets are stored only as keyed digests.

use e2e::{TestServer, both_databases, json, reqwest::StatusCode};
use provider::{audit::SYSTEM_TENANT, store};
use sha2::Digest;

async fn system_events(s: &TestServer, event: &str) -> Vec<store::audit::StoredAudit> {
    store::audit::list(s.state.store.reader(), SYSTEM_TENANT, 0, Some(event), 1000)
        .await
        .unwrap()
}

async fn missing_or_wrong_secrets_are_401_and_audited(s: TestServer) {
    let t = s.create_tenant().await;
    let path = format!("/a/{}/admin/clients", t.id);
    let missing = s.get(&path, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.admin_error(), "unauthorized");
    let wrong = s
        .send(reqwest::Method::GET, &path, Some("not-the-secret"), None)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let request_id = wrong.header("x-request-id").unwrap().to_owned();

    let failures = s.audit_events(&t.id, "admin.auth_failed").await;
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["details"]["reason"], "missing_secret");
    assert_eq!(failures[1]["details"]["reason"], "wrong_secret");
    assert_eq!(failures[1]["ip"], "127.0.0.1");
    assert_eq!(failures[1]["request_id"], request_id);
    assert!(
        !failures[1].to_string().contains("not-the-secret"),
        "the guess is not stored"
    );
}

async fn a_tenant_secret_never_opens_another_tenant(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    for path in [
        format!("/a/{}/admin/clients", b.id),
        format!("/a/{}/admin/users", b.id),
        format!("/a/{}/admin/audit", b.id),
    ] {
        let reply = s.get(&path, Some(&a.admin_secret)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let create = s
        .post(
            &format!("/a/{}/admin/users", b.id),
            Some(&a.admin_secret),
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(create.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.audit_events(&b.id, "admin.auth_failed").await.len(), 4);
    assert!(s.audit_events(&a.id, "admin.auth_failed").await.is_empty());
    // Nor does it open the root routes.
    let root = s.get("/admin/tenants", Some(&a.admin_secret)).await;
    assert_eq!(root.status, StatusCode::UNAUTHORIZED);
    assert_eq!(system_events(&s, "admin.auth_failed").await.len(), 1);
}

async fn the_root_secret_opens_every_tenant(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    for t in [&a, &b] {
        let reply = s
            .get(&format!("/a/{}/admin/clients", t.id), Some(&s.root_secret))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let unknown = s
        .get("/a/nobody-here/admin/clients", Some(&s.root_secret))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.admin_error(), "not_found");
}

async fn unknown_tenants_look_like_wrong_secrets(s: TestServer) {
    let a = s.create_tenant().await;
    for path in [
        "/a/nobody-here/admin/clients",
        "/a/Not_A_Tenant/admin/clients",
    ] {
        let reply = s.get(path, Some(&a.admin_secret)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let recorded = system_events(&s, "admin.auth_failed").await;
    assert_eq!(recorded.len(), 2);
    assert!(recorded[0].details.contains("nobody-here"));
}

async fn secrets_are_stored_only_as_keyed_digests(s: TestServer) {
    let t = s.create_tenant().await;
    let client = s
        .post(
            &format!("/a/{}/admin/clients", t.id),
            Some(&t.admin_secret),
            json!({ "grant_types": ["client_credentials"] }),
        )
        .await;
    let client_secret = client.json["client_secret"].as_str().unwrap().to_owned();
    let tenant_digest: Vec<u8> =
        sqlx::query_scalar("SELECT admin_secret_digest FROM tenants WHERE id = $1")
            .bind(&t.id)
            .fetch_one(s.state.store.reader())
            .await
            .unwrap();
    let client_digest: Vec<u8> =
        sqlx::query_scalar("SELECT secret_digest FROM clients WHERE tenant_id = $1")
            .bind(&t.id)
            .fetch_one(s.state.store.reader())
            .await
            .unwrap();
    for (digest, secret) in [
        (&tenant_digest, &t.admin_secret),
        (&client_digest, &client_secret),
    ] {
        assert_eq!(digest.len(), 32, "an HMAC-SHA-256 digest");
        assert!(!digest.windows(secret.len()).any(|w| w == secret.as_bytes()));
        let unkeyed: Vec<u8> = sha2::Sha256::digest(secret.as_bytes()).to_vec();
        assert_ne!(digest, &unkeyed, "keyed, not a plain hash");
    }
    // Nothing in the audit trail carries either secret.
    let rows = store::audit::list(s.state.store.reader(), &t.id, 0, None, 1000)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert!(!row.details.contains(&t.admin_secret) && !row.details.contains(&client_secret));
    }
}

both_databases!(
    missing_or_wrong_secrets_are_401_and_audited,
    a_tenant_secret_never_opens_another_tenant,
    the_root_secret_opens_every_tenant,
    unknown_tenants_look_like_wrong_secrets,
    secrets_are_stored_only_as_keyed_digests,
);
