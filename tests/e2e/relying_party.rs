//! The example relying party (`relying_party::app`) in headless Chromium, as a person uses it:
//! sign in by magic link read from the SMTP server on loopback, see their email on the profile
//! page, call the API; an administrator activates a new signing key and the relying party
//! keeps working (refresh, API call, sign-out and a new sign-in whose ID token names the new
//! key); then the administrator revokes the person's sessions and the relying party's next
//! refresh fails and signs them out. Screenshots of each page land in `target/screenshots/`.

use e2e::{Backend, TestServer, browser::Browser, json, reqwest::StatusCode, smtp::SmtpSink};
use fantoccini::Locator;
use relying_party::config::Settings;

const EMAIL: &str = "ada@example.com";

struct World {
    s: TestServer,
    mail: SmtpSink,
    tenant: e2e::TestTenant,
    issuer: String,
    rp: String,
    user_id: String,
}

/// A provider with a tenant, Ada and the relying party's client, and the relying party
/// configured for them on its own port.
async fn world() -> World {
    let (s, mail) = TestServer::start_with_mail(Backend::Sqlite).await;
    let tenant = s.create_tenant().await;
    let user = s
        .post(
            &format!("/a/{}/admin/users", tenant.id),
            Some(&tenant.admin_secret),
            json!({ "email": EMAIL, "name": "Ada" }),
        )
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp = format!("http://{}", listener.local_addr().unwrap());
    let (client_id, _) = s
        .create_client(
            &tenant,
            json!({
                "client_name": "Notes",
                "redirect_uris": [format!("{rp}/callback")],
                "post_logout_redirect_uris": [format!("{rp}/")],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "scope": "openid profile email offline_access notes:read",
            }),
        )
        .await;
    let issuer = format!("{}/a/{}", s.base_url, tenant.id);
    let settings = Settings {
        bind: String::new(),
        public_url: rp.clone(),
        issuer: issuer.clone(),
        client_id,
        client_secret: None,
        sentry_dsn: None,
    };
    let app = relying_party::app(settings);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    World {
        user_id: user.json["user_id"].as_str().unwrap().to_owned(),
        s,
        mail,
        tenant,
        issuer,
        rp,
    }
}

impl World {
    /// From the relying party's home page to its profile page, by magic link.
    async fn sign_in(&self, b: &Browser, shot: &str) {
        let n = self.mail.messages_to(EMAIL).len() + 1;
        click(b, "sign-in").await;
        let email = b
            .client
            .wait()
            .for_element(Locator::Id("email"))
            .await
            .unwrap();
        b.screenshot(&format!("{shot}-1-provider-sign-in")).await;
        email.send_keys(EMAIL).await.unwrap();
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
        let link = self
            .mail
            .wait_for(EMAIL, n)
            .await
            .link(&format!("{}/login/confirm?token=", self.issuer))
            .expect("a sign-in link");
        // The confirm page submits itself; the provider sends the browser back to the
        // relying party's callback, which lands on the profile.
        b.client.goto(&link).await.unwrap();
        b.wait_for_url(&format!("{}/profile", self.rp)).await;
        b.screenshot(&format!("{shot}-3-profile")).await;
        assert_eq!(text(b, "email").await, EMAIL);
    }

    /// Calls the API from the profile page; returns what the page shows.
    async fn call_api(&self, b: &Browser) -> String {
        click(b, "call-api").await;
        b.client
            .wait()
            .for_element(Locator::Id("api-result"))
            .await
            .unwrap();
        text(b, "api-result").await
    }
}

/// Clicks the link or button `id` and waits until the browser has left the page it was on
/// (the element goes stale), so the next lookup finds the next page's elements.
async fn click(b: &Browser, id: &str) {
    let element = b.client.wait().for_element(Locator::Id(id)).await.unwrap();
    element.clone().click().await.unwrap();
    for _ in 0..200 {
        if element.is_displayed().await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("clicking {id} did not leave the page");
}

async fn text(b: &Browser, id: &str) -> String {
    b.client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_survives_key_rotation_and_is_signed_out_by_revocation() {
    let w = world().await;
    let b = Browser::start().await;

    b.client.goto(&format!("{}/", w.rp)).await.unwrap();
    b.screenshot("rp-0-home").await;
    w.sign_in(&b, "rp-sign-in").await;
    let first_kid = text(&b, "kid").await;
    let claims = text(&b, "claims").await;
    for shown in [w.issuer.as_str(), w.user_id.as_str(), "email_verified"] {
        assert!(claims.contains(shown), "{shown} in {claims}");
    }
    let api = w.call_api(&b).await;
    assert!(api.starts_with("200 OK"), "{api}");
    assert!(api.contains(&w.user_id), "{api}");
    b.screenshot("rp-4-api-called").await;

    // A new key, activated at once: refresh and the API call go on working.
    let keys = format!("/a/{}/admin/keys", w.tenant.id);
    let staged =
        w.s.post(&keys, Some(&w.tenant.admin_secret), json!({}))
            .await;
    let kid = staged.json["kid"].as_str().unwrap().to_owned();
    let activated =
        w.s.post(
            &format!("{keys}/{kid}/activate"),
            Some(&w.tenant.admin_secret),
            json!({ "force": true }),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.text);
    click(&b, "refresh").await;
    b.wait_for_url(&format!("{}/profile", w.rp)).await;
    let api = w.call_api(&b).await;
    assert!(api.starts_with("200 OK"), "after the rotation: {api}");
    b.screenshot("rp-5-after-key-rotation").await;

    // Sign out (RP-initiated logout at the provider), then sign in again: the new ID token is
    // signed by the new key, which the relying party fetches when it sees its kid.
    click(&b, "sign-out").await;
    b.wait_for_url(&format!("{}/", w.rp)).await;
    b.client
        .wait()
        .for_element(Locator::Id("sign-in"))
        .await
        .unwrap();
    b.screenshot("rp-6-signed-out").await;
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "session.ended").await.len(),
        1
    );
    w.sign_in(&b, "rp-sign-in-again").await;
    assert_eq!(text(&b, "kid").await, kid);
    assert_ne!(first_kid, kid);

    // The administrator ends Ada's sessions: the next refresh fails and signs her out.
    let revoked =
        w.s.post(
            &format!("/a/{}/admin/revoke/sessions", w.tenant.id),
            Some(&w.tenant.admin_secret),
            json!({ "user_id": w.user_id }),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    click(&b, "refresh").await;
    b.client
        .wait()
        .for_element(Locator::Id("message"))
        .await
        .unwrap();
    b.screenshot("rp-7-signed-out-by-revocation").await;
    assert!(text(&b, "message").await.contains("Your session has ended"));
    b.client.goto(&format!("{}/profile", w.rp)).await.unwrap();
    b.wait_for_url(&format!("{}/", w.rp)).await;
    assert!(b.client.find(Locator::Id("sign-in")).await.is_ok());
    b.close().await;
}

/// Everything a callback can get wrong is refused with a page, never a session; forms need
/// the session's token; pages carry a nonce CSP; an unreachable provider is a 502 page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relying_party_refuses_what_does_not_check_out() {
    let w = world().await;
    let browser = || {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let b = browser();
    let home = b.get(format!("{}/", w.rp)).send().await.unwrap();
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("style-src 'nonce-") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("form-action 'self' {}", w.s.base_url)),
        "{csp}"
    );

    // No sign-in in progress.
    let stray = b
        .get(format!("{}/callback?code=x&state=y&iss={}", w.rp, w.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), StatusCode::BAD_REQUEST);

    // A sign-in in progress, answered with the wrong state, the wrong issuer or an error.
    let state_of = |location: &str| {
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned()
    };
    for (case, expect) in [
        ("state", "Sign-in failed"),
        ("iss", "Sign-in failed"),
        ("error", "You did not allow the sign-in."),
    ] {
        let started = b.get(format!("{}/login", w.rp)).send().await.unwrap();
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!("{}/authorize?", w.issuer)),
            "{location}"
        );
        for needed in ["code_challenge_method=S256", "nonce=", "resource="] {
            assert!(location.contains(needed), "{needed} in {location}");
        }
        let state = state_of(&location);
        let query = match case {
            "state" => format!("code=x&state=other&iss={}", w.issuer),
            "iss" => format!("code=x&state={state}&iss=https://attacker.example"),
            _ => format!("error=access_denied&state={state}&iss={}", w.issuer),
        };
        let back = b
            .get(format!("{}/callback?{query}", w.rp))
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(back.text().await.unwrap().contains(expect), "{case}");
        let profile = b.get(format!("{}/profile", w.rp)).send().await.unwrap();
        assert_eq!(profile.headers()["location"], "/", "{case}: not signed in");
    }

    // Forms without the session's token are refused.
    let forged = b
        .post(format!("{}/refresh", w.rp))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The provider gone: a page that says so.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp = format!("http://{}", listener.local_addr().unwrap());
    let closed = e2e::binary::free_port();
    let settings = Settings {
        bind: String::new(),
        public_url: rp.clone(),
        issuer: format!("http://127.0.0.1:{closed}/a/demo"),
        client_id: "relying-party".into(),
        client_secret: None,
        sentry_dsn: None,
    };
    let app = relying_party::app(settings);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let down = browser().get(format!("{rp}/login")).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
    assert!(down.text().await.unwrap().contains("unavailable"));
}

/// The two commands of the README's quick start, with no configuration at all: the provider in
/// dev mode on its default address and the relying party on its own, and a person signs in
/// with the link dev mode prints. Needs 127.0.0.1:8080 and 127.0.0.1:3000 free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_configuration_it_signs_in_against_dev_mode() {
    use e2e::binary::{Running, relying_party_binary};
    use std::time::Duration;
    for port in [8080, 3000] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "127.0.0.1:{port} is taken; this test runs both binaries on their defaults"
        );
    }
    let limit = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let mut provider = Running::spawn(&["serve", "--dev"], &[], dir.path());
    provider
        .wait_ready("http://127.0.0.1:8080/readyz", limit)
        .await;
    let mut rp = Running::spawn_binary(relying_party_binary(), &[], &[], dir.path());
    rp.wait_ready("http://127.0.0.1:3000/", limit).await;

    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let go = |url: String| b.get(url).send();
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();
    let field = e2e::agent::field;
    let login = go("http://127.0.0.1:3000/login".into()).await.unwrap();
    let authorize = location(&login);
    assert!(authorize.starts_with("http://127.0.0.1:8080/a/demo/authorize?"));
    let page_url = location(&go(authorize).await.unwrap());
    let page = go(page_url.clone()).await.unwrap().text().await.unwrap();
    let sent = b
        .post(&page_url)
        .form(&[
            ("email", "grace@example.com"),
            ("csrf", &field(&page, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    // Dev mode prints the link (and only dev mode does).
    let mut link = None;
    for _ in 0..100 {
        link = provider
            .stdout()
            .lines()
            .find(|l| l.starts_with("Dev mode: sign-in link for"))
            .and_then(|l| l.rsplit(": ").next().map(str::to_owned));
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let link = link.expect("dev mode prints the sign-in link");
    let confirm = go(link).await.unwrap().text().await.unwrap();
    let done = b
        .post("http://127.0.0.1:8080/a/demo/login/confirm")
        .form(&[
            ("token", field(&confirm, "token")),
            ("csrf", field(&confirm, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    let callback = location(&done);
    assert!(
        callback.starts_with("http://127.0.0.1:3000/callback?"),
        "{callback}"
    );
    let landed = go(callback).await.unwrap();
    assert_eq!(location(&landed), "/profile");
    let profile = go("http://127.0.0.1:3000/profile".into()).await.unwrap();
    assert_eq!(profile.status(), StatusCode::OK);
    assert!(profile.text().await.unwrap().contains("grace@example.com"));
    assert!(rp.terminate(limit).success());
    assert!(provider.terminate(limit).success());
}

/// With `SENTRY_DSN` set, the relying party's binary reports its errors: here, a provider it
/// cannot reach when someone tries to sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relying_party_reports_errors_to_sentry() {
    use e2e::binary::{Running, free_port, relying_party_binary};
    let sentry = e2e::sentry::SentrySink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let provider = format!("http://127.0.0.1:{}", free_port());
    let dsn = sentry.dsn();
    let env = [
        ("RP_BIND", bind.as_str()),
        ("RP_PROVIDER_URL", provider.as_str()),
        ("SENTRY_DSN", dsn.as_str()),
    ];
    let mut rp = Running::spawn_binary(relying_party_binary(), &[], &env, dir.path());
    let limit = std::time::Duration::from_secs(60);
    rp.wait_ready(&format!("http://{bind}/"), limit).await;
    let down = reqwest::get(format!("http://{bind}/login")).await.unwrap();
    assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
    let event = sentry.wait_for("provider unavailable").await;
    assert!(event.contains("discovery"), "{event}");
    assert!(rp.terminate(limit).success());
}
