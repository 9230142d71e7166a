//! Signing keys: every lifecycle transition and the JWKS at each state, the publish window,
//! revocation under incident pressure, and concurrent changes leaving exactly one active key.

use e2e::{TestServer, TestTenant, both_databases, json, jwt, reqwest::StatusCode};
use serde_json::Value;

async fn keys(s: &TestServer, t: &TestTenant) -> Vec<Value> {
    let reply = s
        .get(&format!("/a/{}/admin/keys", t.id), Some(&t.admin_secret))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json.as_array().unwrap().clone()
}

fn kids_in(keys: &[Value], state: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| k["state"] == state)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn jwks_kids(s: &TestServer, t: &TestTenant) -> Vec<String> {
    let uri = s.discover(&t.id).await["jwks_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = e2e::read(s.http.get(uri).send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut kids: Vec<String> = reply.json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn sorted(mut kids: Vec<String>) -> Vec<String> {
    kids.sort();
    kids
}

/// A client_credentials token from the tenant's token endpoint.
async fn token(s: &TestServer, t: &TestTenant) -> String {
    let (id, secret) = s
        .create_client(
            t,
            json!({ "grant_types": ["client_credentials"], "scope": "read" }),
        )
        .await;
    let endpoint = s.discover(&t.id).await["token_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = s
        .form(
            &endpoint,
            Some((&id, &secret.unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["access_token"].as_str().unwrap().to_owned()
}

/// Introspects `token` as a fresh confidential client of the tenant.
async fn introspect(s: &TestServer, t: &TestTenant, token: &str) -> Value {
    let (id, secret) = s
        .create_client(t, json!({ "grant_types": ["client_credentials"] }))
        .await;
    let endpoint = s.discover(&t.id).await["introspection_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = s
        .form(
            &endpoint,
            Some((&id, &secret.unwrap())),
            &[("token", token)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json
}

/// A user's access token with the openid scope, signed by the tenant's active key, and the
/// userinfo URL to present it to.
async fn user_token(s: &TestServer, t: &TestTenant) -> (String, String) {
    let user = s
        .post(
            &format!("/a/{}/admin/users", t.id),
            Some(&t.admin_secret),
            json!({ "email": "ada@example.com" }),
        )
        .await;
    let (client_id, _) = s
        .create_client(t, json!({ "grant_types": ["client_credentials"] }))
        .await;
    let issuer = s.discover(&t.id).await["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    let audience = vec![issuer.clone()];
    let scope = vec!["openid".to_owned()];
    let jti = provider::tokens::new_jti();
    let new = provider::oauth::access_token::NewAccessToken {
        issuer: &issuer,
        subject: user.json["user_id"].as_str().unwrap(),
        client_id: &client_id,
        audience: &audience,
        scope: &scope,
        issued_at: provider::clock::Clock::unix(s.clock.as_ref()),
        ttl: 600,
        jti: &jti,
        cnf_jkt: None,
    };
    let tenant = shared::TenantId::parse(&t.id).unwrap();
    let token = provider::tokens::issue(&s.state, &tenant, new)
        .await
        .unwrap();
    (token, format!("{issuer}/userinfo"))
}

async fn a_new_tenant_has_one_active_and_one_staged_key_in_its_jwks(s: TestServer) {
    let t = s.create_tenant().await;
    let keys = keys(&s, &t).await;
    assert_eq!(keys.len(), 2);
    let active = kids_in(&keys, "active");
    let staged = kids_in(&keys, "staged");
    assert_eq!((active.len(), staged.len()), (1, 1));
    assert!(keys.iter().all(|k| k["alg"] == "ES256"));
    assert_eq!(
        jwks_kids(&s, &t).await,
        sorted([active.clone(), staged].concat())
    );

    let uri = s.discover(&t.id).await["jwks_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = e2e::read(s.http.get(uri).send().await.unwrap()).await;
    assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
    for key in reply.json["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "no private part published");
        assert_eq!(
            (key["use"].as_str(), key["alg"].as_str()),
            (Some("sig"), Some("ES256"))
        );
    }
    let (header, _) = jwt::parts(&token(&s, &t).await);
    assert_eq!(header["kid"], active[0].as_str(), "the active key signs");
}

async fn activation_waits_for_the_publish_window_then_retires_the_old_key(s: TestServer) {
    let t = s.create_tenant().await;
    let old_token = token(&s, &t).await;
    let before = keys(&s, &t).await;
    let old_active = kids_in(&before, "active")[0].clone();

    let staged = s
        .post(
            &format!("/a/{}/admin/keys", t.id),
            Some(&t.admin_secret),
            json!({ "alg": "RS256" }),
        )
        .await;
    assert_eq!(staged.status, StatusCode::CREATED, "{}", staged.text);
    assert_eq!(
        (staged.json["state"].as_str(), staged.json["alg"].as_str()),
        (Some("staged"), Some("RS256"))
    );
    let kid = staged.json["kid"].as_str().unwrap().to_owned();
    assert!(
        jwks_kids(&s, &t).await.contains(&kid),
        "published as soon as staged"
    );

    let activate = format!("/a/{}/admin/keys/{kid}/activate", t.id);
    let early = s.post(&activate, Some(&t.admin_secret), json!({})).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.admin_error(), "key_not_published_long_enough");

    s.advance(300);
    let done = s
        .send(
            reqwest::Method::POST,
            &activate,
            Some(&t.admin_secret),
            None,
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let after = keys(&s, &t).await;
    assert_eq!(kids_in(&after, "active"), [kid.as_str()]);
    assert_eq!(kids_in(&after, "retired"), [old_active.as_str()]);
    let (header, _) = jwt::parts(&token(&s, &t).await);
    assert_eq!(
        (header["kid"].as_str(), header["alg"].as_str()),
        (Some(kid.as_str()), Some("RS256"))
    );

    // The retired key stays published, and its tokens stay valid until they expire.
    assert!(jwks_kids(&s, &t).await.contains(&old_active));
    assert_eq!(introspect(&s, &t, &old_token).await["active"], true);
    assert_eq!(s.audit_events(&t.id, "key.retired").await.len(), 1);

    // Revoking the retired key kills its tokens at once, before they expire.
    let mid_token = token(&s, &t).await;
    let revoke = s
        .post(
            &format!("/a/{}/admin/keys/revoke", t.id),
            Some(&t.admin_secret),
            json!({ "kid": old_active }),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::OK, "{}", revoke.text);
    assert_eq!(introspect(&s, &t, &old_token).await["active"], false);
    assert!(!jwks_kids(&s, &t).await.contains(&old_active));
    assert_eq!(
        introspect(&s, &t, &mid_token).await["active"],
        true,
        "the active key is untouched"
    );

    // A retired key leaves the JWKS once every token it signed has expired.
    let staged = s
        .post(
            &format!("/a/{}/admin/keys", t.id),
            Some(&t.admin_secret),
            json!({}),
        )
        .await;
    let next = staged.json["kid"].as_str().unwrap().to_owned();
    s.advance(300);
    let path = format!("/a/{}/admin/keys/{next}/activate", t.id);
    assert_eq!(
        s.post(&path, Some(&t.admin_secret), json!({})).await.status,
        StatusCode::OK
    );
    assert!(
        jwks_kids(&s, &t).await.contains(&kid),
        "{kid} is retired and still published"
    );
    s.advance(24 * 3600 - 1);
    assert!(jwks_kids(&s, &t).await.contains(&kid));
    s.advance(1);
    assert!(!jwks_kids(&s, &t).await.contains(&kid));
    assert!(jwks_kids(&s, &t).await.contains(&next));
}

async fn forcing_an_early_activation_is_audited(s: TestServer) {
    let t = s.create_tenant().await;
    let staged = kids_in(&keys(&s, &t).await, "staged")[0].clone();
    let path = format!("/a/{}/admin/keys/{staged}/activate", t.id);
    let forced = s
        .post(&path, Some(&t.admin_secret), json!({ "force": true }))
        .await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.text);
    let activations = s.audit_events(&t.id, "key.activated").await;
    let last = activations.last().unwrap();
    assert_eq!(
        (
            last["details"]["kid"].as_str(),
            last["details"]["forced"].as_bool()
        ),
        (Some(staged.as_str()), Some(true))
    );
}

async fn revoking_the_active_key_kills_its_tokens_and_promotes_the_staged_key(s: TestServer) {
    let t = s.create_tenant().await;
    let old_token = token(&s, &t).await;
    let before = keys(&s, &t).await;
    let (active, staged) = (
        kids_in(&before, "active")[0].clone(),
        kids_in(&before, "staged")[0].clone(),
    );
    assert_eq!(introspect(&s, &t, &old_token).await["active"], true);
    let (user_token, userinfo) = user_token(&s, &t).await;
    let before_revocation = e2e::read(
        s.http
            .get(&userinfo)
            .bearer_auth(&user_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        before_revocation.status,
        StatusCode::OK,
        "{}",
        before_revocation.text
    );

    let reply = s
        .post(
            &format!("/a/{}/admin/keys/revoke", t.id),
            Some(&t.admin_secret),
            json!({ "kid": active }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["revoked"], json!([active]));
    let after_revocation = e2e::read(
        s.http
            .get(&userinfo)
            .bearer_auth(&user_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after_revocation.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after_revocation.json["error"], "invalid_token");

    let after = keys(&s, &t).await;
    assert_eq!(kids_in(&after, "revoked"), [active.as_str()]);
    assert_eq!(
        kids_in(&after, "active"),
        [staged.as_str()],
        "the staged key was promoted"
    );
    assert_eq!(kids_in(&after, "staged").len(), 1, "a fresh key was staged");
    assert!(
        !jwks_kids(&s, &t).await.contains(&active),
        "out of JWKS at once"
    );
    assert_eq!(introspect(&s, &t, &old_token).await["active"], false);

    let (header, _) = jwt::parts(&token(&s, &t).await);
    assert_eq!(header["kid"], staged.as_str(), "the tenant keeps signing");
    let again = s
        .post(
            &format!("/a/{}/admin/keys/revoke", t.id),
            Some(&t.admin_secret),
            json!({ "kid": active }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.admin_error(), "key_already_revoked");
    assert_eq!(s.audit_events(&t.id, "key.revoked").await.len(), 1);
}

async fn revoking_every_active_key_leaves_the_tenant_signing(s: TestServer) {
    let t = s.create_tenant().await;
    let before = keys(&s, &t).await;
    let staged = kids_in(&before, "staged")[0].clone();
    // No body at all: the runbook's "revoke every active key".
    let reply = s
        .send(
            reqwest::Method::POST,
            &format!("/a/{}/admin/keys/revoke", t.id),
            Some(&t.admin_secret),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["revoked"], json!(kids_in(&before, "active")));
    let after = keys(&s, &t).await;
    assert_eq!(kids_in(&after, "active"), [staged.as_str()]);
    let (header, _) = jwt::parts(&token(&s, &t).await);
    assert_eq!(header["kid"], staged.as_str());

    // With no staged key left, revoking the active one creates a fresh active key.
    let fresh_staged = kids_in(&after, "staged")[0].clone();
    s.post(
        &format!("/a/{}/admin/keys/revoke", t.id),
        Some(&t.admin_secret),
        json!({ "kid": fresh_staged }),
    )
    .await;
    s.send(
        reqwest::Method::POST,
        &format!("/a/{}/admin/keys/revoke", t.id),
        Some(&t.admin_secret),
        None,
    )
    .await;
    let last = keys(&s, &t).await;
    assert_eq!(kids_in(&last, "active").len(), 1);
    let (header, _) = jwt::parts(&token(&s, &t).await);
    assert_eq!(header["kid"], kids_in(&last, "active")[0].as_str());
}

async fn bad_key_requests_are_refused(s: TestServer) {
    let t = s.create_tenant().await;
    let base = format!("/a/{}/admin/keys", t.id);
    let cases = [
        (
            s.post(&base, Some(&t.admin_secret), json!({ "alg": "HS256" }))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            s.post(
                &base,
                Some(&t.admin_secret),
                json!({ "alg": "ES256", "d": "x" }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            s.post(
                &format!("{base}/nope/activate"),
                Some(&t.admin_secret),
                json!({}),
            )
            .await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            s.post(
                &format!("{base}/revoke"),
                Some(&t.admin_secret),
                json!({ "kid": "nope" }),
            )
            .await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (reply, status, code) in cases {
        assert_eq!(
            (reply.status, reply.admin_error()),
            (status, code),
            "{}",
            reply.text
        );
    }
    let active = kids_in(&keys(&s, &t).await, "active")[0].clone();
    let twice = s
        .post(
            &format!("{base}/{active}/activate"),
            Some(&t.admin_secret),
            json!({ "force": true }),
        )
        .await;
    assert_eq!(
        (twice.status, twice.admin_error()),
        (StatusCode::CONFLICT, "key_not_staged")
    );
    assert_eq!(keys(&s, &t).await.len(), 2, "nothing was written");
}

async fn concurrent_activations_and_revocations_leave_exactly_one_active_key(s: TestServer) {
    let t = s.create_tenant().await;
    for _ in 0..4 {
        s.post(
            &format!("/a/{}/admin/keys", t.id),
            Some(&t.admin_secret),
            json!({}),
        )
        .await;
    }
    s.advance(300);
    let staged = kids_in(&keys(&s, &t).await, "staged");
    let mut tasks = Vec::new();
    for (i, kid) in staged.iter().enumerate() {
        for path in [
            format!("/a/{}/admin/keys/{kid}/activate", t.id),
            format!("/a/{}/admin/keys/revoke", t.id),
        ] {
            let body = if path.ends_with("revoke") && i % 2 == 0 {
                Some(json!({ "kid": kid }))
            } else {
                None
            };
            let request = s
                .http
                .post(s.url(&path))
                .header("x-admin-secret", &t.admin_secret);
            let request = match body {
                Some(body) => request.json(&body),
                None => request,
            };
            tasks.push(tokio::spawn(async move {
                request.send().await.unwrap().status()
            }));
        }
    }
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            [StatusCode::OK, StatusCode::CONFLICT, StatusCode::NOT_FOUND].contains(&status),
            "no 5xx under contention: {status}"
        );
    }
    let after = keys(&s, &t).await;
    assert_eq!(kids_in(&after, "active").len(), 1, "{after:?}");
    let (header, _) = jwt::parts(&token(&s, &t).await);
    assert_eq!(header["kid"], kids_in(&after, "active")[0].as_str());
}

async fn private_keys_are_sealed_at_rest(s: TestServer) {
    let t = s.create_tenant().await;
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT kid, public_jwk, private_key FROM signing_keys WHERE tenant_id = $1",
    )
    .bind(&t.id)
    .fetch_all(s.state.store.reader())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let tenant = shared::TenantId::parse(&t.id).unwrap();
    let sealer = provider::crypto::Sealer::new(&s.key_encryption_key());
    for (kid, public_jwk, sealed) in rows {
        let jwk: Value = serde_json::from_str(&public_jwk).unwrap();
        assert!(jwk.get("d").is_none(), "no private part in the public JWK");
        // Stored sealed: it opens only with the key encryption key and its own tenant and kid,
        // and the private key it holds appears nowhere in the stored bytes.
        let aad = provider::keys::private_key_aad(&tenant, &kid);
        let der = sealer
            .open(&sealed, &aad)
            .expect("opens with the server's key");
        assert!(
            josekit::jws::ES256.signer_from_der(&der).is_ok(),
            "a PKCS#8 private key inside"
        );
        assert!(!sealed.windows(16).any(|w| der.windows(16).any(|d| d == w)));
        let other_tenant = shared::TenantId::parse("someone-else").unwrap();
        assert!(
            sealer
                .open(
                    &sealed,
                    &provider::keys::private_key_aad(&other_tenant, &kid)
                )
                .is_err()
        );
        assert!(
            provider::crypto::Sealer::new(&[7; 32])
                .open(&sealed, &aad)
                .is_err()
        );
    }
}

async fn one_tenants_keys_and_tokens_are_useless_at_another(s: TestServer) {
    let a = s.create_tenant().await;
    let b = s.create_tenant().await;
    let a_token = token(&s, &a).await;
    assert_eq!(introspect(&s, &b, &a_token).await["active"], false);
    let a_active = kids_in(&keys(&s, &a).await, "active")[0].clone();
    // B's administrator cannot see, activate or revoke A's keys.
    assert!(!jwks_kids(&s, &b).await.contains(&a_active));
    let revoke = s
        .post(
            &format!("/a/{}/admin/keys/revoke", b.id),
            Some(&b.admin_secret),
            json!({ "kid": a_active }),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);
    assert_eq!(introspect(&s, &a, &a_token).await["active"], true);
}

both_databases!(
    a_new_tenant_has_one_active_and_one_staged_key_in_its_jwks,
    activation_waits_for_the_publish_window_then_retires_the_old_key,
    forcing_an_early_activation_is_audited,
    revoking_the_active_key_kills_its_tokens_and_promotes_the_staged_key,
    revoking_every_active_key_leaves_the_tenant_signing,
    bad_key_requests_are_refused,
    concurrent_activations_and_revocations_leave_exactly_one_active_key,
    private_keys_are_sealed_at_rest,
    one_tenants_keys_and_tokens_are_useless_at_another,
);
