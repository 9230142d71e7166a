//! `POST/GET/PATCH /admin/tenants` and tenant admin secret rotation.

use e2e::{TestServer, both_databases, json, reqwest::StatusCode, unique};

async fn create_tenant_returns_issuer_and_a_working_secret(s: TestServer) {
    let id = unique("acme");
    let body = json!({ "id": id, "display_name": "Acme", "allowed_email_domains": ["Acme.COM"] });
    let reply = s.post("/admin/tenants", Some(&s.root_secret), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["id"], id);
    assert_eq!(reply.json["issuer"], format!("{}/a/{id}", s.base_url));
    assert_eq!(reply.json["display_name"], "Acme");
    assert_eq!(reply.json["allowed_email_domains"], json!(["acme.com"]));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let secret = reply.json["admin_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits in base64url");

    let own = s.get(&format!("/a/{id}/admin/clients"), Some(secret)).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(s.audit_events(&id, "tenant.created").await.len(), 1);

    // The secret is shown once: reading the tenant back never returns it.
    let read = s
        .get(&format!("/admin/tenants/{id}"), Some(&s.root_secret))
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.json.get("admin_secret").is_none());
    assert!(!read.text.contains(secret));
}

async fn duplicate_tenant_is_409_and_writes_nothing(s: TestServer) {
    let tenant = s.create_tenant().await;
    let again = s
        .post(
            "/admin/tenants",
            Some(&s.root_secret),
            json!({ "id": tenant.id }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.admin_error(), "tenant_exists");
    // The first secret still works and only one creation was recorded.
    let own = s
        .get(
            &format!("/a/{}/admin/users", tenant.id),
            Some(&tenant.admin_secret),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(s.audit_events(&tenant.id, "tenant.created").await.len(), 1);
}

async fn invalid_tenant_ids_are_400(s: TestServer) {
    let too_long = "a".repeat(64);
    for id in [
        "",
        "-acme",
        "Acme",
        "acme_1",
        "acme.eu",
        "ac me",
        too_long.as_str(),
    ] {
        let reply = s
            .post("/admin/tenants", Some(&s.root_secret), json!({ "id": id }))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{id}: {}",
            reply.text
        );
        assert_eq!(reply.admin_error(), "invalid_tenant_id");
    }
    let listed = s.get("/admin/tenants", Some(&s.root_secret)).await;
    assert_eq!(listed.json["items"], json!([]), "nothing was created");
    let max = "a".repeat(63);
    let ok = s
        .post("/admin/tenants", Some(&s.root_secret), json!({ "id": max }))
        .await;
    assert_eq!(
        ok.status,
        StatusCode::CREATED,
        "63 characters is the maximum"
    );
}

async fn tenant_fields_are_checked(s: TestServer) {
    let cases = [
        json!({ "id": unique("t"), "allowed_email_domains": ["not a domain"] }),
        json!({ "id": unique("t"), "allowed_email_domains": "example.com" }),
        json!({ "id": unique("t"), "display_name": "x".repeat(201) }),
        json!({ "id": unique("t"), "display_name": "bell\u{7}" }),
        json!({ "id": unique("t"), "admin_secret": "chosen" }),
        json!({ "display_name": "no id" }),
    ];
    for body in cases {
        let reply = s
            .post("/admin/tenants", Some(&s.root_secret), body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        reply.admin_error();
    }
    let listed = s.get("/admin/tenants", Some(&s.root_secret)).await;
    assert_eq!(listed.json["items"], json!([]));
}

async fn tenants_are_listed_read_and_updated_by_root_only(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    let listed = s.get("/admin/tenants?limit=1", Some(&s.root_secret)).await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 1);
    let next = listed.json["next"].as_str().unwrap();
    let rest = s
        .get(
            &format!("/admin/tenants?after={next}"),
            Some(&s.root_secret),
        )
        .await;
    let mut ids: Vec<String> = [&listed, &rest]
        .iter()
        .flat_map(|r| r.json["items"].as_array().unwrap().clone())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);

    let path = format!("/admin/tenants/{}", a.id);
    let patch = json!({ "display_name": "Renamed", "allowed_email_domains": ["Example.org"] });
    let by_tenant = s
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&a.admin_secret),
            Some(patch.clone()),
        )
        .await;
    assert_eq!(
        by_tenant.status,
        StatusCode::UNAUTHORIZED,
        "tenant routes under /admin are root only"
    );
    let updated = s
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&s.root_secret),
            Some(patch),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json["display_name"], "Renamed");
    assert_eq!(
        updated.json["allowed_email_domains"],
        json!(["example.org"])
    );
    assert_eq!(s.audit_events(&a.id, "tenant.updated").await.len(), 1);

    let missing = s
        .get("/admin/tenants/no-such-tenant", Some(&s.root_secret))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.admin_error(), "not_found");
}

async fn rotating_the_tenant_secret_retires_the_old_one(s: TestServer) {
    let t = s.create_tenant().await;
    let rotated = s
        .post(
            &format!("/a/{}/admin/secret", t.id),
            Some(&t.admin_secret),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = rotated.json["admin_secret"].as_str().unwrap();
    assert_ne!(new_secret, t.admin_secret);
    let old = s
        .get(&format!("/a/{}/admin/users", t.id), Some(&t.admin_secret))
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = s
        .get(&format!("/a/{}/admin/users", t.id), Some(new_secret))
        .await;
    assert_eq!(new.status, StatusCode::OK);
    let events = s.audit_events(&t.id, "tenant.admin_secret_rotated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["by"], "tenant");
    assert!(
        !events[0].to_string().contains(new_secret),
        "no secret in the audit trail"
    );
}

both_databases!(
    create_tenant_returns_issuer_and_a_working_secret,
    duplicate_tenant_is_409_and_writes_nothing,
    invalid_tenant_ids_are_400,
    tenant_fields_are_checked,
    tenants_are_listed_read_and_updated_by_root_only,
    rotating_the_tenant_secret_retires_the_old_one,
);
