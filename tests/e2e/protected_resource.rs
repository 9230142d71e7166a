//! The relying party's protected API in the MCP style (`relying_party::resource`) against a
//! real provider: RFC 9728 metadata, 401 with `resource_metadata` when the token is missing or
//! meant for someone else, 403 `insufficient_scope` for step-up, and a key rotation that the
//! API follows by fetching the JWKS again on an unknown `kid`.

use e2e::{Backend, TestServer, json, reqwest::StatusCode};
use relying_party::resource::{self, Settings};
use serde_json::Value;

/// A client_credentials access token, with a resource indicator when given.
async fn token(
    s: &TestServer,
    tenant: &str,
    (client_id, secret): (&str, &str),
    resource: Option<&str>,
    scope: &str,
) -> String {
    let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
    form.extend(resource.map(|r| ("resource", r)));
    let url = s.url(&format!("/a/{tenant}/token"));
    let reply = s.form(&url, Some((client_id, secret)), &form).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_only_tokens_meant_for_it_with_its_scope() {
    let s = TestServer::start(Backend::Sqlite).await;
    let tenant = s.create_tenant().await;
    let (client_id, secret) = s
        .create_client(
            &tenant,
            json!({ "grant_types": ["client_credentials"], "scope": "notes:read other" }),
        )
        .await;
    let secret = secret.unwrap();
    let doc = s.discover(&tenant.id).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp = format!("http://{}", listener.local_addr().unwrap());
    let settings = Settings {
        resource: format!("{rp}/api"),
        issuer: doc["issuer"].as_str().unwrap().to_owned(),
        jwks_uri: doc["jwks_uri"].as_str().unwrap().to_owned(),
    };
    let app = resource::router(settings.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();

    let metadata: Value = http
        .get(format!("{rp}/.well-known/oauth-protected-resource/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], settings.resource.as_str());
    assert_eq!(metadata["authorization_servers"], json!([settings.issuer]));

    let call = |token: Option<String>| {
        let mut request = http.get(format!("{rp}/api/notes"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let missing = call(None).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let expected =
        format!("Bearer resource_metadata=\"{rp}/.well-known/oauth-protected-resource/api\"");
    assert_eq!(missing.headers()["www-authenticate"], expected.as_str());

    // Resource indicator and scope: the call goes through.
    let resource = format!("{rp}/api");
    let creds = (client_id.as_str(), secret.as_str());
    let good = token(&s, &tenant.id, creds, Some(&resource), "notes:read").await;
    let ok = call(Some(good)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.json::<Value>().await.unwrap()["subject"],
        client_id.as_str()
    );

    // A token for the provider itself (no resource) is not for this API.
    let elsewhere = call(Some(token(&s, &tenant.id, creds, None, "notes:read").await))
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::UNAUTHORIZED);
    assert!(
        elsewhere.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // The right audience without the scope: step up.
    let narrow = token(&s, &tenant.id, creds, Some(&resource), "other").await;
    let step_up = call(Some(narrow)).await.unwrap();
    assert_eq!(step_up.status(), StatusCode::FORBIDDEN);
    let header = step_up.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        header.contains("error=\"insufficient_scope\"") && header.contains("scope=\"notes:read\""),
        "{header}"
    );

    // A new key, activated at once: the API fetches the JWKS again and carries on.
    let keys = format!("/a/{}/admin/keys", tenant.id);
    let staged = s.post(&keys, Some(&tenant.admin_secret), json!({})).await;
    let kid = staged.json["kid"].as_str().unwrap().to_owned();
    let activated = s
        .post(
            &format!("{keys}/{kid}/activate"),
            Some(&tenant.admin_secret),
            json!({ "force": true }),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.text);
    let rotated = token(&s, &tenant.id, creds, Some(&resource), "notes:read").await;
    assert_eq!(e2e::jwt::parts(&rotated).0["kid"], kid.as_str());
    assert_eq!(call(Some(rotated)).await.unwrap().status(), StatusCode::OK);
}
