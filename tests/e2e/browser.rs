//! The real pages in headless Chromium with JavaScript on: sign-in by magic link (the confirm
//! page's own nonce'd script submits it), cross-device sign-in by code, and the CSP letting the
//! page's nonce'd script run while refusing an injected inline script. Screenshots of each page
//! land in `target/screenshots/`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use e2e::{
    Backend, TestServer, both_backends, browser::Browser, json, reqwest::StatusCode, smtp::SmtpSink,
};
use fantoccini::Locator;
use sha2::Digest;

struct World {
    s: TestServer,
    mail: SmtpSink,
    issuer: String,
    client_id: String,
    redirect: String,
}

/// The client application's callback: a loopback server that just says "signed in".
async fn callback_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/cb", axum::routing::get(|| async { "signed in" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

async fn world(backend: Backend) -> World {
    let (s, mail) = TestServer::start_with_mail(backend).await;
    let tenant = s.create_tenant().await;
    let (client_id, _) = s
        .create_client(
            &tenant,
            json!({
                "client_name": "Notes",
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
                "scope": "openid email",
            }),
        )
        .await;
    s.post(
        &format!("/a/{}/admin/users", tenant.id),
        Some(&tenant.admin_secret),
        json!({ "email": "ada@example.com" }),
    )
    .await;
    let port = callback_server().await;
    World {
        issuer: format!("{}/a/{}", s.base_url, tenant.id),
        s,
        mail,
        client_id,
        redirect: format!("http://127.0.0.1:{port}/cb"),
    }
}

impl World {
    fn authorize_url(&self, challenge: &str) -> String {
        let redirect: String =
            url::form_urlencoded::byte_serialize(self.redirect.as_bytes()).collect();
        format!(
            "{}/authorize?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid+email&state=s1&code_challenge={challenge}&code_challenge_method=S256",
            self.issuer, self.client_id
        )
    }

    async fn redeem(&self, url: &str, verifier: &str) -> e2e::Reply {
        let query: std::collections::HashMap<String, String> = url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(
            (query["state"].as_str(), query["iss"].as_str()),
            ("s1", self.issuer.as_str())
        );
        self.s
            .form(
                &format!("{}/token", self.issuer),
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &query["code"]),
                    ("redirect_uri", &self.redirect),
                    ("code_verifier", verifier),
                    ("client_id", &self.client_id),
                ],
            )
            .await
    }

    /// Opens the sign-in page in `b` and asks for a link for Ada.
    async fn ask(&self, b: &Browser, challenge: &str, shot: &str) {
        b.client.goto(&self.authorize_url(challenge)).await.unwrap();
        let email = b
            .client
            .wait()
            .for_element(Locator::Id("email"))
            .await
            .unwrap();
        b.screenshot(&format!("{shot}-1-sign-in")).await;
        email.send_keys("ada@example.com").await.unwrap();
        b.client
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.client
            .wait()
            .for_element(Locator::Id("code"))
            .await
            .unwrap();
        b.screenshot(&format!("{shot}-2-check-email")).await;
    }
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

async fn chromium_signs_in_by_magic_link(backend: Backend) {
    let w = world(backend).await;
    let b = Browser::start().await;
    let (verifier, challenge) = pkce();
    w.ask(&b, &challenge, "magic-link").await;
    let link = w
        .mail
        .wait_for("ada@example.com", 1)
        .await
        .link(&format!("{}/login/confirm?token=", w.issuer))
        .unwrap();
    // The confirm page submits itself with its nonce'd script: no click needed.
    b.client.goto(&link).await.unwrap();
    let landed = b.wait_for_url(&w.redirect).await;
    b.screenshot("magic-link-3-back-at-the-client").await;
    let tokens = w.redeem(&landed, &verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert!(tokens.json["id_token"].is_string());
    b.close().await;
}

async fn chromium_signs_in_across_devices_by_code(backend: Backend) {
    let w = world(backend).await;
    let b = Browser::start().await;
    let (verifier, challenge) = pkce();
    w.ask(&b, &challenge, "cross-device").await;
    let link = w
        .mail
        .wait_for("ada@example.com", 1)
        .await
        .link(&format!("{}/login/confirm?token=", w.issuer))
        .unwrap();

    // The link opened on a phone (another browser) shows a code instead of signing in there.
    let phone = Browser::start().await;
    phone.client.goto(&link).await.unwrap();
    let shown = phone
        .client
        .wait()
        .for_element(Locator::Id("handoff-code"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    phone.screenshot("cross-device-3-code-on-the-phone").await;
    assert_eq!(shown.trim().len(), 6);
    phone.close().await;

    b.client
        .find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys(shown.trim())
        .await
        .unwrap();
    b.client
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = b.wait_for_url(&w.redirect).await;
    assert_eq!(w.redeem(&landed, &verifier).await.status, StatusCode::OK);
    b.close().await;
}

async fn the_csp_runs_the_pages_nonce_and_refuses_injected_scripts(backend: Backend) {
    let w = world(backend).await;
    let b = Browser::start().await;
    let (_, challenge) = pkce();
    b.client.goto(&w.authorize_url(&challenge)).await.unwrap();
    b.client
        .wait()
        .for_element(Locator::Id("email"))
        .await
        .unwrap();
    let outcome = b
        .client
        .execute(
            r#"
            const nonce = document.querySelector("style").nonce;
            const good = document.createElement("script");
            good.nonce = nonce;
            good.textContent = "document.body.dataset.good = 'ran'";
            document.body.appendChild(good);
            const bad = document.createElement("script");
            bad.textContent = "document.body.dataset.bad = 'ran'";
            document.body.appendChild(bad);
            return [nonce.length > 0, document.body.dataset.good || null, document.body.dataset.bad || null];
            "#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        json!([true, "ran", null]),
        "only the script with the page's nonce runs"
    );
    b.close().await;
}

async fn chromium_gives_and_refuses_consent(backend: Backend) {
    let mut w = world(backend).await;
    let tenant = w.s.create_tenant().await;
    let (client_id, _) =
        w.s.create_client(
            &tenant,
            json!({
                "client_name": "Planner",
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
                "scope": "openid email",
                "first_party": false,
            }),
        )
        .await;
    w.s.post(
        &format!("/a/{}/admin/users", tenant.id),
        Some(&tenant.admin_secret),
        json!({ "email": "ada@example.com" }),
    )
    .await;
    w.issuer = format!("{}/a/{}", w.s.base_url, tenant.id);
    w.client_id = client_id;

    let b = Browser::start().await;
    for (round, decision) in [(1, "allow"), (2, "deny")] {
        let (verifier, challenge) = pkce();
        let extra = if round == 2 { "&prompt=consent" } else { "" };
        b.client
            .goto(&format!("{}{extra}", w.authorize_url(&challenge)))
            .await
            .unwrap();
        // The second round runs on the browser session of the first: no mail, straight to
        // the consent page that prompt=consent asks for.
        if round == 1 {
            let email = b
                .client
                .wait()
                .for_element(Locator::Id("email"))
                .await
                .unwrap();
            email.send_keys("ada@example.com").await.unwrap();
            let submit = b
                .client
                .find(Locator::Css("button[type=submit]"))
                .await
                .unwrap();
            submit.click().await.unwrap();
            b.client
                .wait()
                .for_element(Locator::Id("code"))
                .await
                .unwrap();
            let link = w
                .mail
                .wait_for("ada@example.com", 1)
                .await
                .link(&format!("{}/login/confirm?token=", w.issuer))
                .unwrap();
            b.client.goto(&link).await.unwrap();
        }
        let button = b
            .client
            .wait()
            .for_element(Locator::Css(&format!("button[value={decision}]")))
            .await
            .unwrap();
        b.screenshot(&format!("consent-{round}")).await;
        button.click().await.unwrap();
        let landed = b.wait_for_url(&w.redirect).await;
        let query: std::collections::HashMap<String, String> = url::Url::parse(&landed)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        if decision == "allow" {
            assert_eq!(w.redeem(&landed, &verifier).await.status, StatusCode::OK);
        } else {
            assert_eq!(query["error"], "access_denied");
            assert!(!query.contains_key("code"));
        }
    }
    b.close().await;
}

both_backends!(
    chromium_gives_and_refuses_consent,
    chromium_signs_in_by_magic_link,
    chromium_signs_in_across_devices_by_code,
    the_csp_runs_the_pages_nonce_and_refuses_injected_scripts,
);
