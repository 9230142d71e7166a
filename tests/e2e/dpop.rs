//! DPoP (RFC 9449): proofs at the token endpoint with server nonces and one-use jtis, tokens
//! bound to the proof's key (`cnf.jkt`, `token_type: DPoP`), proofs required where bound tokens
//! are used, public clients' refresh tokens bound to the key, and every bad proof refused.

use e2e::{Backend, TestServer, both_backends, json, jwt, reqwest::StatusCode};
use josekit::{
    jwk::{Jwk, KeyPair},
    jws::{ES256, JwsHeader, JwsSigner},
    jwt::{self as jose, JwtPayload},
};
use provider::clock::Clock;
use serde_json::{Map, Value};

use crate::sign_in::{REDIRECT, browser, pkce, world};

struct Key {
    public: Map<String, Value>,
    signer: Box<dyn JwsSigner>,
}

fn key() -> Key {
    let pair = ES256.generate_key_pair().unwrap();
    let public = pair.to_jwk_public_key().as_ref().clone();
    Key {
        public,
        signer: Box::new(ES256.signer_from_der(pair.to_der_private_key()).unwrap()),
    }
}

/// A proof by `key`, whose header and claims `tweak` may change.
fn proof(
    key: &Key,
    htm: &str,
    htu: &str,
    iat: i64,
    nonce: Option<&str>,
    ath: Option<&str>,
    tweak: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
) -> String {
    let mut header = Map::new();
    header.insert("typ".into(), "dpop+jwt".into());
    header.insert("jwk".into(), Value::Object(key.public.clone()));
    let mut claims =
        json!({ "jti": provider::crypto::random_b64(12), "htm": htm, "htu": htu, "iat": iat });
    if let Some(nonce) = nonce {
        claims["nonce"] = nonce.into();
    }
    if let Some(ath) = ath {
        claims["ath"] = ath.into();
    }
    let mut claims = claims.as_object().unwrap().clone();
    tweak(&mut header, &mut claims);
    let mut jws_header = JwsHeader::new();
    for (name, value) in header {
        if name == "jwk" {
            match value {
                Value::Object(map) => jws_header.set_jwk(Jwk::from_map(map).unwrap()),
                _ => unreachable!(),
            }
        } else {
            jws_header.set_claim(&name, Some(value)).unwrap();
        }
    }
    jose::encode_with_signer(
        &JwtPayload::from_map(claims).unwrap(),
        &jws_header,
        key.signer.as_ref(),
    )
    .unwrap()
}

fn now(s: &TestServer) -> i64 {
    s.clock.now().unix_timestamp()
}

async fn token_request(
    s: &TestServer,
    url: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
    dpop: Option<&str>,
) -> e2e::Reply {
    let mut request = s.http.post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    if let Some(dpop) = dpop {
        request = request.header("DPoP", dpop);
    }
    e2e::read(request.send().await.unwrap()).await
}

async fn client_credentials_tokens_are_bound_to_the_proofs_key(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.create_tenant().await;
    let (id, secret) = s
        .create_client(&t, json!({ "grant_types": ["client_credentials"] }))
        .await;
    let secret = secret.unwrap();
    let url = format!("{}/a/{}/token", s.base_url, t.id);
    let k = key();
    let form = [("grant_type", "client_credentials")];

    // Without the server's nonce: 400 use_dpop_nonce, with a nonce to use.
    let first = token_request(
        &s,
        &url,
        Some((&id, &secret)),
        &form,
        Some(&proof(&k, "POST", &url, now(&s), None, None, |_, _| {})),
    )
    .await;
    assert_eq!(
        (first.status, first.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("use_dpop_nonce"))
    );
    let nonce = first
        .header("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_owned();

    let good = proof(&k, "POST", &url, now(&s), Some(&nonce), None, |_, _| {});
    let bound = token_request(&s, &url, Some((&id, &secret)), &form, Some(&good)).await;
    assert_eq!(bound.status, StatusCode::OK, "{}", bound.text);
    assert_eq!(bound.json["token_type"], "DPoP");
    assert!(bound.header("dpop-nonce").is_some());
    let jkt = provider::oauth::dpop::thumbprint(&k.public).unwrap();
    let access = bound.json["access_token"].as_str().unwrap();
    assert_eq!(jwt::parts(access).1["cnf"]["jkt"], jkt.as_str());
    let introspected = s
        .form(
            &format!("{}/a/{}/introspect", s.base_url, t.id),
            Some((&id, &secret)),
            &[("token", access)],
        )
        .await;
    assert_eq!(introspected.json["cnf"]["jkt"], jkt.as_str());

    let replayed = token_request(&s, &url, Some((&id, &secret)), &form, Some(&good)).await;
    assert_eq!(
        replayed.json["error"], "invalid_dpop_proof",
        "a proof works once"
    );

    let other = key();
    let t0 = now(&s);
    let bad: Vec<(&str, String)> = vec![
        (
            "wrong method",
            proof(&k, "GET", &url, t0, Some(&nonce), None, |_, _| {}),
        ),
        (
            "wrong URL",
            proof(
                &k,
                "POST",
                "https://elsewhere.example/token",
                t0,
                Some(&nonce),
                None,
                |_, _| {},
            ),
        ),
        (
            "too old",
            proof(&k, "POST", &url, t0 - 120, Some(&nonce), None, |_, _| {}),
        ),
        (
            "from the future",
            proof(&k, "POST", &url, t0 + 120, Some(&nonce), None, |_, _| {}),
        ),
        (
            "wrong typ",
            proof(&k, "POST", &url, t0, Some(&nonce), None, |h, _| {
                h.insert("typ".into(), "JWT".into());
            }),
        ),
        (
            "no jti",
            proof(&k, "POST", &url, t0, Some(&nonce), None, |_, c| {
                c.remove("jti");
            }),
        ),
        ("another key signed it", {
            let mut forged = proof(&other, "POST", &url, t0, Some(&nonce), None, |_, _| {});
            let (header, _) = jwt::parts(&forged);
            let mut header = header;
            header["jwk"] = Value::Object(k.public.clone());
            forged = jwt::with_header(&forged, &header);
            forged
        }),
        (
            "private key in the header",
            proof(&k, "POST", &url, t0, Some(&nonce), None, |h, _| {
                if let Some(Value::Object(jwk)) = h.get_mut("jwk") {
                    jwk.insert("d".into(), "AAAA".into());
                }
            }),
        ),
        (
            "HMAC",
            jwt::hs256(
                &json!({ "typ": "dpop+jwt", "alg": "HS256", "jwk": k.public }),
                &json!({ "jti": "x", "htm": "POST", "htu": url, "iat": t0, "nonce": nonce }),
                b"secret",
            ),
        ),
        (
            "stale nonce",
            proof(&k, "POST", &url, t0, Some("not-the-nonce"), None, |_, _| {}),
        ),
    ];
    for (why, bad_proof) in bad {
        let reply = token_request(&s, &url, Some((&id, &secret)), &form, Some(&bad_proof)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{why}: {}",
            reply.text
        );
        assert!(
            ["invalid_dpop_proof", "use_dpop_nonce"]
                .contains(&reply.json["error"].as_str().unwrap_or_default()),
            "{why}: {}",
            reply.text
        );
    }
    let plain = token_request(&s, &url, Some((&id, &secret)), &form, None).await;
    assert_eq!(
        plain.json["token_type"], "Bearer",
        "without a proof, a bearer token as before"
    );
}

async fn bound_user_tokens_need_proofs_and_public_refresh_tokens_follow_the_key(backend: Backend) {
    let mut w = world(backend).await;
    let (client_id, _) =
        w.s.create_client(
            &w.tenant,
            json!({
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "scope": "openid email profile",
            }),
        )
        .await;
    w.client_id = client_id.clone();
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    let url = format!("{}/token", w.issuer);
    let k = key();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let ask = token_request(
        &w.s,
        &url,
        None,
        &form,
        Some(&proof(&k, "POST", &url, now(&w.s), None, None, |_, _| {})),
    )
    .await;
    let nonce = ask.header("dpop-nonce").unwrap().to_owned();
    let tokens = token_request(
        &w.s,
        &url,
        None,
        &form,
        Some(&proof(
            &k,
            "POST",
            &url,
            now(&w.s),
            Some(&nonce),
            None,
            |_, _| {},
        )),
    )
    .await;
    assert_eq!(
        tokens.status,
        StatusCode::OK,
        "the nonce round trip did not spend the code: {}",
        tokens.text
    );
    let access = tokens.json["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens.json["refresh_token"].as_str().unwrap().to_owned();

    // At userinfo the bound token needs the DPoP scheme and a proof with its hash.
    let userinfo = format!("{}/userinfo", w.issuer);
    let ath = provider::oauth::dpop::ath(&access);
    let as_bearer =
        w.s.http
            .get(&userinfo)
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
    assert_eq!(as_bearer.status(), StatusCode::UNAUTHORIZED);
    let with_proof = |key: &Key, ath: &str| {
        w.s.http
            .get(&userinfo)
            .header("Authorization", format!("DPoP {access}"))
            .header(
                "DPoP",
                proof(
                    key,
                    "GET",
                    &userinfo,
                    now(&w.s),
                    Some(&nonce),
                    Some(ath),
                    |_, _| {},
                ),
            )
            .send()
    };
    assert_eq!(with_proof(&k, &ath).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        with_proof(&key(), &ath).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "another key"
    );
    assert_eq!(
        with_proof(&k, "wrong-hash").await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "another token's hash"
    );

    // The public client's refresh token follows the key.
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let no_proof = token_request(&w.s, &url, None, &refresh_form, None).await;
    assert_eq!(no_proof.json["error"], "invalid_grant");
    let other_key = token_request(
        &w.s,
        &url,
        None,
        &refresh_form,
        Some(&proof(
            &key(),
            "POST",
            &url,
            now(&w.s),
            Some(&nonce),
            None,
            |_, _| {},
        )),
    )
    .await;
    assert_eq!(other_key.json["error"], "invalid_grant");
    let same_key = token_request(
        &w.s,
        &url,
        None,
        &refresh_form,
        Some(&proof(
            &k,
            "POST",
            &url,
            now(&w.s),
            Some(&nonce),
            None,
            |_, _| {},
        )),
    )
    .await;
    assert_eq!(same_key.status, StatusCode::OK, "{}", same_key.text);
    assert_eq!(same_key.json["token_type"], "DPoP");
}

/// With Redis, proofs are remembered there, for every replica, and not in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_proof_replayed_at_another_replica_is_refused() {
    let s = TestServer::start_with(
        Backend::Postgres,
        &[("REDIS_URL", "redis://127.0.0.1:6379")],
    )
    .await;
    // Behind one load balancer: the replica serves the same public URL.
    let replica = s.replica_with(&[("PUBLIC_URL", &s.base_url)]).await;
    let t = s.create_tenant().await;
    let (id, secret) = s
        .create_client(&t, json!({ "grant_types": ["client_credentials"] }))
        .await;
    let secret = secret.unwrap();
    let k = key();
    let form = [("grant_type", "client_credentials")];
    let url = format!("{}/a/{}/token", s.base_url, t.id);
    let first = token_request(
        &s,
        &url,
        Some((&id, &secret)),
        &form,
        Some(&proof(&k, "POST", &url, now(&s), None, None, |_, _| {})),
    )
    .await;
    let nonce = first.header("dpop-nonce").unwrap().to_owned();
    let good = proof(&k, "POST", &url, now(&s), Some(&nonce), None, |_, _| {});
    let bound = token_request(&s, &url, Some((&id, &secret)), &form, Some(&good)).await;
    assert_eq!(bound.status, StatusCode::OK, "{}", bound.text);
    // The same proof at the other replica.
    let replica_url = format!("{}/a/{}/token", replica.base_url, t.id);
    let replayed = replica
        .http
        .post(&replica_url)
        .basic_auth(&id, Some(&secret))
        .header("dpop", &good)
        .form(&form)
        .send()
        .await
        .unwrap();
    let replayed = e2e::read(replayed).await;
    assert_eq!(
        replayed.json["error"], "invalid_dpop_proof",
        "{}",
        replayed.text
    );
    assert_eq!(
        replayed.json["error_description"],
        "the proof was already used"
    );
    let again = token_request(&s, &url, Some((&id, &secret)), &form, Some(&good)).await;
    assert_eq!(again.json["error"], "invalid_dpop_proof");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dpop_jtis")
        .fetch_one(s.state.store.reader())
        .await
        .unwrap();
    assert_eq!(rows, 0, "remembered in Redis, not the database");
    replica.stop().await;
}

both_backends!(
    client_credentials_tokens_are_bound_to_the_proofs_key,
    bound_user_tokens_need_proofs_and_public_refresh_tokens_follow_the_key,
);
