//! The token endpoint (client_credentials, client authentication by the registered method,
//! RFC 8707 resources), introspection, revocation and userinfo.

use e2e::{Reply, TestServer, TestTenant, both_databases, json, jwt, reqwest::StatusCode};
use provider::clock::Clock;
use serde_json::Value;

struct Setup {
    tenant: TestTenant,
    doc: Value,
    client_id: String,
    secret: String,
}

impl Setup {
    fn endpoint(&self, field: &str) -> String {
        self.doc[field].as_str().unwrap().to_owned()
    }
}

async fn setup(s: &TestServer) -> Setup {
    let tenant = s.create_tenant().await;
    let (client_id, secret) = s
        .create_client(
            &tenant,
            json!({ "grant_types": ["client_credentials"], "scope": "read write openid" }),
        )
        .await;
    let doc = s.discover(&tenant.id).await;
    Setup {
        tenant,
        doc,
        client_id,
        secret: secret.unwrap(),
    }
}

async fn issue(s: &TestServer, x: &Setup, extra: &[(&str, &str)]) -> Reply {
    let mut params = vec![("grant_type", "client_credentials")];
    params.extend_from_slice(extra);
    s.form(
        &x.endpoint("token_endpoint"),
        Some((&x.client_id, &x.secret)),
        &params,
    )
    .await
}

async fn introspect(s: &TestServer, x: &Setup, token: &str) -> Value {
    let reply = s
        .form(
            &x.endpoint("introspection_endpoint"),
            Some((&x.client_id, &x.secret)),
            &[("token", token)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json
}

fn assert_oauth_error(reply: &Reply, status: StatusCode, error: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json["error"], error, "{}", reply.text);
    assert!(reply.json["error_description"].is_string());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

async fn client_credentials_issues_an_rfc9068_access_token(s: TestServer) {
    let x = setup(&s).await;
    let reply = issue(&s, &x, &[("scope", "read")]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    assert_eq!(
        (
            reply.json["token_type"].as_str(),
            reply.json["expires_in"].as_i64()
        ),
        (Some("Bearer"), Some(600))
    );
    assert_eq!(reply.json["scope"], "read");
    let token = reply.json["access_token"].as_str().unwrap();
    let (header, claims) = jwt::parts(token);
    assert_eq!(
        (header["typ"].as_str(), header["alg"].as_str()),
        (Some("at+jwt"), Some("ES256"))
    );
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], x.doc["issuer"]);
    assert_eq!(claims["sub"], x.client_id.as_str());
    assert_eq!(claims["client_id"], x.client_id.as_str());
    assert_eq!(
        claims["aud"], x.doc["issuer"],
        "without a resource the issuer is the audience"
    );
    assert_eq!(claims["scope"], "read");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(
        claims["iat"].as_i64().unwrap(),
        s.clock.now().unix_timestamp()
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 22);

    let issued = s.audit_events(&x.tenant.id, "token.issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["client_id"], x.client_id.as_str());
    assert_eq!(issued[0]["details"]["jti"], claims["jti"]);
    assert!(
        !issued[0].to_string().contains(token),
        "no raw token in the audit trail"
    );

    let all = issue(&s, &x, &[]).await;
    assert_eq!(
        jwt::parts(all.json["access_token"].as_str().unwrap()).1["scope"],
        "read write openid"
    );
}

async fn resources_become_the_audience(s: TestServer) {
    let x = setup(&s).await;
    let one = issue(&s, &x, &[("resource", "https://api.example.com/mcp")]).await;
    assert_eq!(
        jwt::parts(one.json["access_token"].as_str().unwrap()).1["aud"],
        "https://api.example.com/mcp"
    );
    let two = issue(
        &s,
        &x,
        &[
            ("resource", "https://a.example/"),
            ("resource", "https://b.example/"),
        ],
    )
    .await;
    assert_eq!(
        jwt::parts(two.json["access_token"].as_str().unwrap()).1["aud"],
        json!(["https://a.example/", "https://b.example/"])
    );
    for bad in ["/relative", "https://api.example.com/#frag"] {
        assert_oauth_error(
            &issue(&s, &x, &[("resource", bad)]).await,
            StatusCode::BAD_REQUEST,
            "invalid_target",
        );
    }
}

async fn token_requests_are_checked(s: TestServer) {
    let x = setup(&s).await;
    let url = x.endpoint("token_endpoint");
    let creds = Some((x.client_id.as_str(), x.secret.as_str()));
    assert_oauth_error(
        &issue(&s, &x, &[("scope", "admin")]).await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    );
    assert_oauth_error(
        &s.form(&url, creds, &[]).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_oauth_error(
        &s.form(&url, creds, &[("grant_type", "password")]).await,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    );
    let repeated = s
        .form(
            &url,
            creds,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("scope", "write"),
            ],
        )
        .await;
    assert_oauth_error(&repeated, StatusCode::BAD_REQUEST, "invalid_request");
    let json_body = s
        .http
        .post(&url)
        .basic_auth(&x.client_id, Some(&x.secret))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_oauth_error(
        &e2e::read(json_body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    // A client registered for the code grant only may not use client_credentials.
    let (web, web_secret) = s
        .create_client(
            &x.tenant,
            json!({ "redirect_uris": ["https://app.example/cb"] }),
        )
        .await;
    let refused = s
        .form(
            &url,
            Some((&web, &web_secret.unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_error(&refused, StatusCode::BAD_REQUEST, "unauthorized_client");
    assert!(
        s.audit_events(&x.tenant.id, "token.issued")
            .await
            .is_empty()
    );
}

async fn clients_authenticate_only_by_their_registered_method(s: TestServer) {
    let x = setup(&s).await;
    let url = x.endpoint("token_endpoint");
    let grant = ("grant_type", "client_credentials");
    let wrong = s
        .form(&url, Some((&x.client_id, "not-the-secret")), &[grant])
        .await;
    assert_oauth_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    let unknown = s.form(&url, Some(("nobody", &x.secret)), &[grant]).await;
    assert_oauth_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_client");
    // The basic client may not switch to client_secret_post, nor to none.
    let post = s
        .form(
            &url,
            None,
            &[
                grant,
                ("client_id", &x.client_id),
                ("client_secret", &x.secret),
            ],
        )
        .await;
    assert_oauth_error(&post, StatusCode::UNAUTHORIZED, "invalid_client");
    let none = s
        .form(&url, None, &[grant, ("client_id", &x.client_id)])
        .await;
    assert_oauth_error(&none, StatusCode::UNAUTHORIZED, "invalid_client");
    let both = s
        .form(
            &url,
            Some((&x.client_id, &x.secret)),
            &[grant, ("client_secret", &x.secret)],
        )
        .await;
    assert_oauth_error(&both, StatusCode::BAD_REQUEST, "invalid_request");

    let (post_id, post_secret) = s
        .create_client(&x.tenant, json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post" }))
        .await;
    let post_secret = post_secret.unwrap();
    let ok = s
        .form(
            &url,
            None,
            &[
                grant,
                ("client_id", &post_id),
                ("client_secret", &post_secret),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let as_basic = s.form(&url, Some((&post_id, &post_secret)), &[grant]).await;
    assert_oauth_error(&as_basic, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn suspended_clients_are_refused_and_their_tokens_go_inactive(s: TestServer) {
    let x = setup(&s).await;
    let token = issue(&s, &x, &[]).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (rs, rs_secret) = s
        .create_client(&x.tenant, json!({ "grant_types": ["client_credentials"] }))
        .await;
    let rs = Setup {
        tenant: x.tenant.clone(),
        doc: x.doc.clone(),
        client_id: rs,
        secret: rs_secret.unwrap(),
    };
    assert_eq!(introspect(&s, &rs, &token).await["active"], true);

    let path = format!("/a/{}/admin/clients/{}", x.tenant.id, x.client_id);
    s.send(
        reqwest::Method::PATCH,
        &path,
        Some(&x.tenant.admin_secret),
        Some(json!({ "status": "suspended" })),
    )
    .await;
    assert_oauth_error(
        &issue(&s, &x, &[]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    assert_eq!(
        introspect(&s, &rs, &token).await,
        json!({ "active": false })
    );

    s.send(
        reqwest::Method::PATCH,
        &path,
        Some(&x.tenant.admin_secret),
        Some(json!({ "status": "active" })),
    )
    .await;
    assert_eq!(
        introspect(&s, &rs, &token).await["active"],
        true,
        "reactivation restores it"
    );
}

async fn introspection_reports_live_tokens_and_nothing_else(s: TestServer) {
    let x = setup(&s).await;
    let token = issue(
        &s,
        &x,
        &[("scope", "read"), ("resource", "https://api.example/")],
    )
    .await
    .json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let active = introspect(&s, &x, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], x.client_id.as_str());
    assert_eq!(active["scope"], "read");
    assert_eq!(active["aud"], json!(["https://api.example/"]));
    assert_eq!(active["iss"], x.doc["issuer"]);

    for junk in ["garbage", "a.b.c", &token[..token.len() - 4]] {
        assert_eq!(
            introspect(&s, &x, junk).await,
            json!({ "active": false }),
            "{junk}"
        );
    }
    s.advance(600);
    assert_eq!(
        introspect(&s, &x, &token).await["active"],
        false,
        "expired at exp"
    );

    let url = x.endpoint("introspection_endpoint");
    assert_oauth_error(
        &s.form(&url, None, &[("token", &token)]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    assert_oauth_error(
        &s.form(&url, Some((&x.client_id, &x.secret)), &[]).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let (public, _) = s
        .create_client(&x.tenant, json!({ "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" }))
        .await;
    let by_public = s
        .form(&url, None, &[("client_id", &public), ("token", &token)])
        .await;
    assert_oauth_error(&by_public, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn revocation_makes_a_token_inactive_for_its_own_client_only(s: TestServer) {
    let x = setup(&s).await;
    let token = issue(&s, &x, &[]).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = x.endpoint("revocation_endpoint");
    let (other, other_secret) = s
        .create_client(&x.tenant, json!({ "grant_types": ["client_credentials"] }))
        .await;
    let by_other = s
        .form(
            &url,
            Some((&other, &other_secret.unwrap())),
            &[("token", &token)],
        )
        .await;
    assert_eq!(
        by_other.status,
        StatusCode::OK,
        "RFC 7009: answered 200 either way"
    );
    assert_eq!(
        introspect(&s, &x, &token).await["active"],
        true,
        "another client cannot revoke it"
    );

    let revoked = s
        .form(&url, Some((&x.client_id, &x.secret)), &[("token", &token)])
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(introspect(&s, &x, &token).await["active"], false);
    let again = s
        .form(&url, Some((&x.client_id, &x.secret)), &[("token", &token)])
        .await;
    assert_eq!(again.status, StatusCode::OK, "revoking twice is fine");
    let junk = s
        .form(&url, Some((&x.client_id, &x.secret)), &[("token", "junk")])
        .await;
    assert_eq!(junk.status, StatusCode::OK);
    assert_eq!(s.audit_events(&x.tenant.id, "token.revoked").await.len(), 1);
    assert_oauth_error(
        &s.form(&url, None, &[("token", &token)]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
}

async fn userinfo_answers_bearer_tokens_of_active_users(s: TestServer) {
    let x = setup(&s).await;
    let user = s
        .post(
            &format!("/a/{}/admin/users", x.tenant.id),
            Some(&x.tenant.admin_secret),
            json!({ "email": "ada@example.com", "name": "Ada" }),
        )
        .await;
    let user_id = user.json["user_id"].as_str().unwrap().to_owned();
    let tenant = shared::TenantId::parse(&x.tenant.id).unwrap();
    let issuer = x.doc["issuer"].as_str().unwrap().to_owned();
    let mint = |scope: Vec<String>, sub: String| {
        let (state, tenant, issuer) = (s.state.clone(), tenant.clone(), issuer.clone());
        let (now, client_id) = (s.clock.now().unix_timestamp(), x.client_id.clone());
        async move {
            let jti = provider::tokens::new_jti();
            let audience = vec![issuer.clone()];
            let new = provider::oauth::access_token::NewAccessToken {
                issuer: &issuer,
                subject: &sub,
                client_id: &client_id,
                audience: &audience,
                scope: &scope,
                issued_at: now,
                ttl: 600,
                jti: &jti,
                cnf_jkt: None,
            };
            provider::tokens::issue(&state, &tenant, new).await.unwrap()
        }
    };
    let scopes = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let url = x.endpoint("userinfo_endpoint");
    let token = mint(scopes("openid email profile"), user_id.clone()).await;

    let get = e2e::read(s.http.get(&url).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text);
    assert_eq!(
        get.json,
        json!({ "sub": user_id, "email": "ada@example.com", "name": "Ada" })
    );
    assert_eq!(get.header("cache-control"), Some("no-store"));
    let post = e2e::read(s.http.post(&url).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(post.json, get.json);

    let narrow = mint(scopes("openid"), user_id.clone()).await;
    let reply = e2e::read(s.http.get(&url).bearer_auth(&narrow).send().await.unwrap()).await;
    assert_eq!(
        reply.json,
        json!({ "sub": user_id }),
        "claims follow the scopes"
    );

    let no_openid = mint(scopes("email"), user_id.clone()).await;
    let reply = e2e::read(
        s.http
            .get(&url)
            .bearer_auth(&no_openid)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&reply, StatusCode::FORBIDDEN, "insufficient_scope");

    let missing = e2e::read(s.http.get(&url).send().await.unwrap()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let in_query = e2e::read(
        s.http
            .get(format!("{url}?access_token={token}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&in_query, StatusCode::BAD_REQUEST, "invalid_request");
    let in_body = e2e::read(
        s.http
            .post(&url)
            .form(&[("access_token", token.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&in_body, StatusCode::BAD_REQUEST, "invalid_request");

    // A client's own token has no user behind it.
    let client_token = issue(&s, &x, &[("scope", "openid")]).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = e2e::read(
        s.http
            .get(&url)
            .bearer_auth(&client_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&reply, StatusCode::UNAUTHORIZED, "invalid_token");

    // A disabled user's tokens stop working.
    let path = format!("/a/{}/admin/users/{user_id}", x.tenant.id);
    s.send(
        reqwest::Method::PATCH,
        &path,
        Some(&x.tenant.admin_secret),
        Some(json!({ "status": "disabled" })),
    )
    .await;
    let reply = e2e::read(s.http.get(&url).bearer_auth(&token).send().await.unwrap()).await;
    assert_oauth_error(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
}

async fn lifetimes_come_from_the_tenant_unless_the_client_overrides_them(s: TestServer) {
    let x = setup(&s).await;
    let path = format!("/admin/tenants/{}", x.tenant.id);
    let patched = s
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&s.root_secret),
            Some(json!({ "access_token_ttl": 300 })),
        )
        .await;
    assert_eq!(patched.json["access_token_ttl"], 300, "{}", patched.text);
    let tenant_default = issue(&s, &x, &[]).await;
    assert_eq!(tenant_default.json["expires_in"], 300);
    let (_, claims) = jwt::parts(tenant_default.json["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );

    let (id, secret) = s
        .create_client(
            &x.tenant,
            json!({ "grant_types": ["client_credentials"], "access_token_ttl": 120 }),
        )
        .await;
    let reply = s
        .form(
            &x.endpoint("token_endpoint"),
            Some((&id, &secret.unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(reply.json["expires_in"], 120);
    let (_, claims) = jwt::parts(reply.json["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );

    for bad in [
        json!({ "access_token_ttl": 10 }),
        json!({ "access_token_ttl": 100_000 }),
    ] {
        let reply = s
            .send(
                reqwest::Method::PATCH,
                &path,
                Some(&s.root_secret),
                Some(bad),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
}

both_databases!(
    lifetimes_come_from_the_tenant_unless_the_client_overrides_them,
    client_credentials_issues_an_rfc9068_access_token,
    resources_become_the_audience,
    token_requests_are_checked,
    clients_authenticate_only_by_their_registered_method,
    suspended_clients_are_refused_and_their_tokens_go_inactive,
    introspection_reports_live_tokens_and_nothing_else,
    revocation_makes_a_token_inactive_for_its_own_client_only,
    userinfo_answers_bearer_tokens_of_active_users,
    private_key_jwt_clients_authenticate_with_signed_assertions_once,
);

mod private_key_jwt {
    use super::*;
    use josekit::{
        jwk::KeyPair,
        jws::{ES256, JwsHeader},
        jwt::{self as jose_jwt, JwtPayload},
    };

    /// A client key pair: the public JWK to register and a signer for assertions.
    fn client_key(kid: &str) -> (Value, josekit::jws::alg::ecdsa::EcdsaJwsSigner) {
        let pair = ES256.generate_key_pair().unwrap();
        let mut public = pair.to_jwk_public_key();
        public.set_key_id(kid);
        let mut signer = ES256.signer_from_der(pair.to_der_private_key()).unwrap();
        signer.set_key_id(kid);
        (serde_json::to_value(public.as_ref()).unwrap(), signer)
    }

    fn assertion(signer: &dyn josekit::jws::JwsSigner, claims: Value) -> String {
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        jose_jwt::encode_with_signer(&payload, &JwsHeader::new(), signer).unwrap()
    }

    pub(super) async fn clients_authenticate_with_signed_assertions_once(s: TestServer) {
        on(&s).await;
    }

    pub(super) async fn on(s: &TestServer) {
        let t = s.create_tenant().await;
        let (public, signer) = client_key("k1");
        let (client_id, secret) = s
            .create_client(
                &t,
                json!({
                    "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": { "keys": [public] },
                }),
            )
            .await;
        assert!(secret.is_none(), "private_key_jwt clients get no secret");
        let doc = s.discover(&t.id).await;
        assert!(
            doc["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt"))
        );
        let url = doc["token_endpoint"].as_str().unwrap().to_owned();
        let now = s.clock.now().unix_timestamp();
        let claims = |aud: &str, exp: i64, jti: &str| json!({ "iss": client_id, "sub": client_id, "aud": aud, "exp": exp, "iat": now, "jti": jti });
        let send = |assertion: String| {
            let url = url.clone();
            let s = &s;
            async move {
                s.form(
                    &url,
                    None,
                    &[
                        ("grant_type", "client_credentials"),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                        ),
                        ("client_assertion", &assertion),
                    ],
                )
                .await
            }
        };

        let good = assertion(&signer, claims(&url, now + 60, "a1"));
        let ok = send(good.clone()).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
        assert_eq!(
            jwt::parts(ok.json["access_token"].as_str().unwrap()).1["client_id"],
            client_id.as_str()
        );
        assert_oauth_error(
            &send(good).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        );

        let issuer = doc["issuer"].as_str().unwrap();
        assert_eq!(
            send(assertion(&signer, claims(issuer, now + 60, "a2")))
                .await
                .status,
            StatusCode::OK,
            "the issuer is an audience too"
        );
        let (_, stranger) = client_key("k1");
        for (why, forged) in [
            (
                "another key",
                assertion(&stranger, claims(&url, now + 60, "b1")),
            ),
            ("expired", assertion(&signer, claims(&url, now - 1, "b2"))),
            (
                "too long-lived",
                assertion(&signer, claims(&url, now + 3600, "b3")),
            ),
            (
                "another audience",
                assertion(
                    &signer,
                    claims("https://elsewhere.example/token", now + 60, "b4"),
                ),
            ),
            (
                "HMAC",
                jwt::hs256(
                    &json!({ "alg": "HS256", "kid": "k1" }),
                    &claims(&url, now + 60, "b5"),
                    b"secret",
                ),
            ),
        ] {
            let reply = send(forged).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{why}: {}",
                reply.text
            );
            assert_eq!(reply.json["error"], "invalid_client", "{why}");
        }
        // The client registered private_key_jwt, so a secret-style login is refused outright.
        let basic = s
            .form(
                &url,
                Some((&client_id, "anything")),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_oauth_error(&basic, StatusCode::UNAUTHORIZED, "invalid_client");
    }
}

async fn private_key_jwt_clients_authenticate_with_signed_assertions_once(s: TestServer) {
    private_key_jwt::clients_authenticate_with_signed_assertions_once(s).await;
}

/// With Redis, assertion ids are remembered there (for every replica), not in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_assertions_are_still_single_use() {
    let env = [("REDIS_URL", "redis://127.0.0.1:6379")];
    let s = TestServer::start_with(e2e::Backend::Sqlite, &env).await;
    private_key_jwt::on(&s).await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM client_assertion_jtis")
        .fetch_one(s.state.store.reader())
        .await
        .unwrap();
    assert_eq!(rows, 0);
}
