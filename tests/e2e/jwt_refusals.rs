//! Every JWT the verifier must refuse, presented both to introspection (inactive) and to userinfo
//! (401 invalid_token). Each forged token differs from a valid one in exactly one way.

use e2e::{TestServer, TestTenant, both_databases, json, jwt, reqwest::StatusCode};
use josekit::jws::JwsHeader;
use provider::clock::Clock;
use serde_json::{Map, Value};
use shared::TenantId;

struct Case {
    tenant: TestTenant,
    id: TenantId,
    issuer: String,
    user_id: String,
    rs: (String, String),
}

async fn case(s: &TestServer) -> Case {
    let tenant = s.create_tenant().await;
    let user = s
        .post(
            &format!("/a/{}/admin/users", tenant.id),
            Some(&tenant.admin_secret),
            json!({ "email": "ada@example.com" }),
        )
        .await;
    let (rs_id, rs_secret) = s
        .create_client(&tenant, json!({ "grant_types": ["client_credentials"] }))
        .await;
    Case {
        id: TenantId::parse(&tenant.id).unwrap(),
        issuer: format!("{}/a/{}", s.base_url, tenant.id),
        user_id: user.json["user_id"].as_str().unwrap().to_owned(),
        rs: (rs_id, rs_secret.unwrap()),
        tenant,
    }
}

/// Valid access-token claims for the case's user, issued now.
fn claims(s: &TestServer, c: &Case) -> Map<String, Value> {
    let now = s.clock.now().unix_timestamp();
    let value = json!({
        "iss": c.issuer, "sub": c.user_id, "aud": c.issuer, "client_id": c.rs.0,
        "iat": now, "exp": now + 600, "jti": provider::tokens::new_jti(), "scope": "openid email",
    });
    value.as_object().unwrap().clone()
}

async fn sign(s: &TestServer, c: &Case, claims: Map<String, Value>, typ: &str) -> String {
    s.state.keys.sign(&c.id, claims, typ).await.unwrap()
}

async fn assert_refused(s: &TestServer, c: &Case, token: &str, why: &str) {
    let introspection = s
        .form(
            &format!("{}/introspect", c.issuer),
            Some((&c.rs.0, &c.rs.1)),
            &[("token", token)],
        )
        .await;
    assert_eq!(
        introspection.json,
        json!({ "active": false }),
        "introspection must refuse: {why}"
    );
    let userinfo = e2e::read(
        s.http
            .get(format!("{}/userinfo", c.issuer))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        userinfo.status,
        StatusCode::UNAUTHORIZED,
        "userinfo must refuse: {why}: {}",
        userinfo.text
    );
    assert_eq!(userinfo.json["error"], "invalid_token", "{why}");
}

async fn a_valid_token_is_accepted_so_the_refusals_below_mean_something(s: TestServer) {
    let c = case(&s).await;
    let token = sign(&s, &c, claims(&s, &c), "at+jwt").await;
    let userinfo = e2e::read(
        s.http
            .get(format!("{}/userinfo", c.issuer))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(userinfo.status, StatusCode::OK, "{}", userinfo.text);
}

async fn unsigned_and_hmac_tokens_are_refused(s: TestServer) {
    let c = case(&s).await;
    let valid = sign(&s, &c, claims(&s, &c), "at+jwt").await;
    let (header, payload) = jwt::parts(&valid);
    let kid = header["kid"].clone();
    let none = jwt::unsigned(
        &json!({ "alg": "none", "typ": "at+jwt", "kid": kid }),
        &payload,
    );
    assert_refused(&s, &c, &none, "alg none").await;

    // The classic confusion: HMAC keyed with the published public key.
    let uri = s.discover(&c.tenant.id).await["jwks_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks: Value = s.http.get(uri).send().await.unwrap().json().await.unwrap();
    let public = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap()
        .to_string();
    let hs = jwt::hs256(
        &json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid }),
        &payload,
        public.as_bytes(),
    );
    assert_refused(&s, &c, &hs, "HS256 with the public key").await;
}

async fn key_pointing_headers_and_unknown_kids_are_refused(s: TestServer) {
    let c = case(&s).await;
    for (name, value) in [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        (
            "jwk",
            json!({ "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA" }),
        ),
    ] {
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        header.set_claim(name, Some(value)).unwrap();
        let token = s
            .state
            .keys
            .sign_with_header(&c.id, claims(&s, &c), header)
            .await
            .unwrap();
        assert_refused(&s, &c, &token, name).await;
    }
    let valid = sign(&s, &c, claims(&s, &c), "at+jwt").await;
    let (mut header, _) = jwt::parts(&valid);
    header["kid"] = json!("no-such-kid");
    assert_refused(&s, &c, &jwt::with_header(&valid, &header), "unknown kid").await;
    header.as_object_mut().unwrap().remove("kid");
    assert_refused(&s, &c, &jwt::with_header(&valid, &header), "no kid").await;
}

async fn an_algorithm_other_than_the_keys_is_refused(s: TestServer) {
    let c = case(&s).await;
    let valid = sign(&s, &c, claims(&s, &c), "at+jwt").await;
    let (mut header, _) = jwt::parts(&valid);
    for alg in ["ES384", "RS256", "EdDSA"] {
        header["alg"] = json!(alg);
        assert_refused(&s, &c, &jwt::with_header(&valid, &header), alg).await;
    }
}

async fn missing_or_wrong_claims_are_refused(s: TestServer) {
    let c = case(&s).await;
    for claim in ["exp", "aud", "iss", "sub", "client_id", "jti"] {
        let mut without = claims(&s, &c);
        without.remove(claim);
        assert_refused(&s, &c, &sign(&s, &c, without, "at+jwt").await, claim).await;
    }
    let mut other_issuer = claims(&s, &c);
    other_issuer.insert(
        "iss".into(),
        json!(format!("{}/a/someone-else", s.base_url)),
    );
    assert_refused(
        &s,
        &c,
        &sign(&s, &c, other_issuer, "at+jwt").await,
        "issuer",
    )
    .await;
    let mut empty_aud = claims(&s, &c);
    empty_aud.insert("aud".into(), json!([]));
    assert_refused(
        &s,
        &c,
        &sign(&s, &c, empty_aud, "at+jwt").await,
        "empty aud",
    )
    .await;
    let mut future = claims(&s, &c);
    future.insert("iat".into(), json!(s.clock.now().unix_timestamp() + 120));
    assert_refused(
        &s,
        &c,
        &sign(&s, &c, future, "at+jwt").await,
        "iat beyond the leeway",
    )
    .await;
}

async fn expired_tokens_are_refused_without_grace(s: TestServer) {
    let c = case(&s).await;
    let token = sign(&s, &c, claims(&s, &c), "at+jwt").await;
    s.advance(599);
    let ok = e2e::read(
        s.http
            .get(format!("{}/userinfo", c.issuer))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "valid until exp");
    s.advance(1);
    assert_refused(&s, &c, &token, "expired").await;
}

async fn an_id_token_is_never_an_access_token(s: TestServer) {
    let c = case(&s).await;
    for typ in ["JWT", "id_token+jwt"] {
        let token = sign(&s, &c, claims(&s, &c), typ).await;
        assert_refused(&s, &c, &token, typ).await;
    }
}

async fn a_token_of_one_tenant_is_refused_at_another(s: TestServer) {
    let a = case(&s).await;
    let b = case(&s).await;
    let token = sign(&s, &a, claims(&s, &a), "at+jwt").await;
    assert_refused(&s, &b, &token, "tenant A's token at tenant B").await;
}

both_databases!(
    a_valid_token_is_accepted_so_the_refusals_below_mean_something,
    unsigned_and_hmac_tokens_are_refused,
    key_pointing_headers_and_unknown_kids_are_refused,
    an_algorithm_other_than_the_keys_is_refused,
    missing_or_wrong_claims_are_refused,
    expired_tokens_are_refused_without_grace,
    an_id_token_is_never_an_access_token,
    a_token_of_one_tenant_is_refused_at_another,
);
