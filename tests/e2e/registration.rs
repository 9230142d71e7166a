//! Dynamic client registration (RFC 7591) and its management (RFC 7592): open and token
//! policies, the response's shape (no `null` anywhere), the redirect URI rules, and reading,
//! replacing and deleting a registration with its access token only.

use e2e::{TestServer, both_databases, json, reqwest::StatusCode};
use serde_json::Value;

async fn register(s: &TestServer, tenant: &str, token: Option<&str>, body: Value) -> e2e::Reply {
    let mut request = s
        .http
        .post(s.url(&format!("/a/{tenant}/register")))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    e2e::read(request.send().await.unwrap()).await
}

async fn manage(
    s: &TestServer,
    method: e2e::reqwest::Method,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> e2e::Reply {
    let mut request = s.http.request(method, uri).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    e2e::read(request.send().await.unwrap()).await
}

fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(map) => map.values().any(has_null),
        _ => false,
    }
}

async fn an_mcp_client_registers_itself_and_manages_its_registration(s: TestServer) {
    let tenant = s.create_tenant().await;
    let doc = s.discover(&tenant.id).await;
    let endpoint = doc["registration_endpoint"].as_str().unwrap().to_owned();
    assert_eq!(endpoint, s.url(&format!("/a/{}/register", tenant.id)));

    let native = json!({
        "client_name": "Claude",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        "scope": "openid email offline_access",
    });
    let created = register(&s, &tenant.id, None, native.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let body = created.json.clone();
    assert!(!has_null(&body), "no nulls: {body}");
    for field in [
        "client_name",
        "redirect_uris",
        "grant_types",
        "token_endpoint_auth_method",
    ] {
        assert_eq!(body[field], native[field], "{field} echoed");
    }
    assert_eq!(body["response_types"], json!(["code"]));
    assert!(
        body.get("client_secret").is_none(),
        "public clients get no secret"
    );
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    let token = body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = body["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, format!("{endpoint}/{client_id}"));

    // Third-party: the admin view says so, and the registration is audited.
    let admin = s
        .get(
            &format!("/a/{}/admin/clients/{client_id}", tenant.id),
            Some(&tenant.admin_secret),
        )
        .await;
    assert_eq!(admin.json["first_party"], false);
    assert_eq!(s.audit_events(&tenant.id, "client.created").await.len(), 1);

    // RFC 7592: read with the token; nothing without it or with another.
    let read = manage(&s, e2e::reqwest::Method::GET, &uri, &token, None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json["client_id"], client_id.as_str());
    assert!(read.json.get("registration_access_token").is_none());
    let wrong = manage(&s, e2e::reqwest::Method::GET, &uri, "not-the-token", None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json["error"], "invalid_token");
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let other = register(&s, &tenant.id, None, native.clone()).await;
    let other_token = other.json["registration_access_token"].as_str().unwrap();
    let crossed = manage(&s, e2e::reqwest::Method::GET, &uri, other_token, None).await;
    assert_eq!(
        crossed.status,
        StatusCode::UNAUTHORIZED,
        "one client's token reads no other"
    );

    // Replace: the body names the client; a confidential switch brings a secret once.
    let mut changed = native.clone();
    changed["client_name"] = "Claude (desktop)".into();
    let unnamed = manage(
        &s,
        e2e::reqwest::Method::PUT,
        &uri,
        &token,
        Some(changed.clone()),
    )
    .await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST);
    changed["client_id"] = client_id.clone().into();
    changed["token_endpoint_auth_method"] = "client_secret_basic".into();
    changed["application_type"] = "web".into();
    changed["redirect_uris"] = json!(["https://app.example/callback"]);
    let put = manage(&s, e2e::reqwest::Method::PUT, &uri, &token, Some(changed)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.json["client_name"], "Claude (desktop)");
    assert_eq!(put.json["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(put.json["client_secret_expires_at"], 0);

    // Delete: revoked for good; its token no longer reads it.
    let deleted = manage(&s, e2e::reqwest::Method::DELETE, &uri, &token, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = manage(&s, e2e::reqwest::Method::GET, &uri, &token, None).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.audit_events(&tenant.id, "client.revoked").await.len(), 1);
}

async fn registrations_are_checked_like_rfc_7591_says(s: TestServer) {
    let tenant = s.create_tenant().await;
    let cases = [
        (
            json!({ "redirect_uris": ["http://evil.example/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb#frag"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["javascript:alert(1)"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["data:text/html,hi"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "grant_types": ["authorization_code"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb"], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb"], "grant_types": ["implicit"] }),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (body, code) in cases {
        let reply = register(&s, &tenant.id, None, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"], code, "{body}");
        assert!(reply.json["error_description"].is_string());
    }
    // A web client with https gets a secret by default (client_secret_basic).
    let web = register(
        &s,
        &tenant.id,
        None,
        json!({ "redirect_uris": ["https://app.example/cb"] }),
    )
    .await;
    assert_eq!(web.status, StatusCode::CREATED, "{}", web.text);
    assert_eq!(
        web.json["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(web.json["client_secret"].as_str().unwrap().len(), 43);
    // Registered without a scope: the default set, so an MCP client can ask for it later.
    assert_eq!(web.json["scope"], "openid profile email offline_access");
}

async fn tenants_choose_open_token_or_closed_registration(s: TestServer) {
    let tenant = s.create_tenant().await;
    let body = json!({ "redirect_uris": ["https://app.example/cb"] });
    let path = format!("/a/{}/admin/registration", tenant.id);
    let policy =
        |p: &'static str| s.post(&path, Some(&tenant.admin_secret), json!({ "policy": p }));
    let set = policy("token").await;
    assert_eq!(set.status, StatusCode::OK);
    let initial = set.json["initial_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let without = register(&s, &tenant.id, None, body.clone()).await;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    let wrong = register(&s, &tenant.id, Some("guess"), body.clone()).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let with = register(&s, &tenant.id, Some(&initial), body.clone()).await;
    assert_eq!(with.status, StatusCode::CREATED);
    // Asking again replaces the token.
    let again = policy("token").await.json["initial_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        register(&s, &tenant.id, Some(&initial), body.clone())
            .await
            .status,
        401
    );
    assert_eq!(
        register(&s, &tenant.id, Some(&again), body.clone())
            .await
            .status,
        201
    );

    assert_eq!(policy("closed").await.status, StatusCode::OK);
    let closed = register(&s, &tenant.id, Some(&again), body.clone()).await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN);
    let doc = s.discover(&tenant.id).await;
    assert!(
        doc.get("registration_endpoint").is_none(),
        "not advertised while closed"
    );
    assert_eq!(policy("sometimes").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(policy("open").await.status, StatusCode::OK);
    assert_eq!(
        register(&s, &tenant.id, None, body).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.audit_events(&tenant.id, "tenant.registration_changed")
            .await
            .len(),
        4
    );
}

both_databases!(
    an_mcp_client_registers_itself_and_manages_its_registration,
    registrations_are_checked_like_rfc_7591_says,
    tenants_choose_open_token_or_closed_registration,
);
