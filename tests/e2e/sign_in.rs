//! Sign-in by magic link through the real pages and a real SMTP server on loopback, the
//! authorization code it yields, and every refusal on the way. The browser here is an HTTP
//! client with a cookie jar; the pages work without JavaScript.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use e2e::{
    Backend, TestServer, TestTenant, both_backends, json, jwt, reqwest::StatusCode, smtp::SmtpSink,
};
use reqwest::{Client, redirect::Policy};
use sha2::Digest;

pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/cb";
const AFTER_LOGOUT: &str = "http://127.0.0.1:9/bye";

pub(crate) struct World {
    pub(crate) s: TestServer,
    pub(crate) mail: SmtpSink,
    pub(crate) tenant: TestTenant,
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) user_id: String,
}

pub(crate) fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(crate) async fn world(backend: Backend) -> World {
    world_with(backend, &[]).await
}

/// A world whose server has extra environment variables.
pub(crate) async fn world_with(backend: Backend, env: &[(&str, &str)]) -> World {
    let (s, mail) = TestServer::start_with_mail_and(backend, env).await;
    let tenant = s.create_tenant().await;
    let (client_id, _) = s
        .create_client(
            &tenant,
            json!({
                "client_name": "Notes",
                "redirect_uris": [REDIRECT],
                "post_logout_redirect_uris": [AFTER_LOGOUT],
                "token_endpoint_auth_method": "none",
                "scope": "openid email profile",
            }),
        )
        .await;
    let user = s
        .post(
            &format!("/a/{}/admin/users", tenant.id),
            Some(&tenant.admin_secret),
            json!({ "email": "ada@example.com", "name": "Ada" }),
        )
        .await;
    let issuer = format!("{}/a/{}", s.base_url, tenant.id);
    World {
        user_id: user.json["user_id"].as_str().unwrap().to_owned(),
        s,
        mail,
        tenant,
        issuer,
        client_id,
    }
}

pub(crate) use e2e::agent::field;

pub(crate) fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

pub(crate) fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl World {
    pub(crate) fn authorize_url(&self, challenge: &str, extra: &str) -> String {
        format!(
            "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid+email+profile&state=st-1&nonce=n-1&code_challenge={challenge}&code_challenge_method=S256{extra}",
            self.issuer,
            self.client_id,
            urlencode(REDIRECT)
        )
    }

    /// Starts a sign-in in `browser` and submits `email`; returns the sign-in page URL and the
    /// page's form token (which the code form of the next page shares).
    pub(crate) async fn ask_for_link(
        &self,
        browser: &Client,
        challenge: &str,
        email: &str,
    ) -> (String, String) {
        self.ask_for_link_with(browser, challenge, email, "").await
    }

    /// `ask_for_link` with `extra` appended to the authorization request.
    pub(crate) async fn ask_for_link_with(
        &self,
        browser: &Client,
        challenge: &str,
        email: &str,
        extra: &str,
    ) -> (String, String) {
        let start = browser
            .get(self.authorize_url(challenge, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let login = location(&start);
        let page = browser.get(&login).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let csrf = field(&html, "csrf");
        let sent = browser
            .post(&login)
            .form(&[("email", email), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::OK);
        assert!(sent.text().await.unwrap().contains("Check your email"));
        (login, csrf)
    }

    pub(crate) async fn link(&self, n: usize) -> String {
        let mail = self.mail.wait_for("ada@example.com", n).await;
        mail.link(&format!("{}/login/confirm?token=", self.issuer))
            .expect("a sign-in link")
    }

    /// Opens the emailed link in `browser` and confirms; returns the confirm response.
    pub(crate) async fn open_and_confirm(&self, browser: &Client, link: &str) -> reqwest::Response {
        let page = browser.get(link).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        browser
            .post(format!("{}/login/confirm", self.issuer))
            .form(&[
                ("token", field(&html, "token")),
                ("csrf", field(&html, "csrf")),
            ])
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn sign_in(&self, browser: &Client, challenge: &str) -> String {
        self.sign_in_with(browser, challenge, "").await
    }

    /// `sign_in` with `extra` appended to the authorization request.
    pub(crate) async fn sign_in_with(
        &self,
        browser: &Client,
        challenge: &str,
        extra: &str,
    ) -> String {
        let n = self.mail.messages_to("ada@example.com").len() + 1;
        self.ask_for_link_with(browser, challenge, "Ada@Example.com", extra)
            .await;
        let link = self.link(n).await;
        let done = self.open_and_confirm(browser, &link).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        let back = location(&done);
        assert!(back.starts_with(REDIRECT), "{back}");
        query_of(&back)["code"].clone()
    }

    /// Changes the signed-in user through the admin API.
    pub(crate) async fn update_user(&self, body: serde_json::Value) {
        let path = format!("/a/{}/admin/users/{}", self.tenant.id, self.user_id);
        let reply = self
            .s
            .send(
                reqwest::Method::PATCH,
                &path,
                Some(&self.tenant.admin_secret),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    pub(crate) async fn redeem(&self, code: &str, verifier: &str) -> e2e::Reply {
        self.s
            .form(
                &format!("{}/token", self.issuer),
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier),
                    ("client_id", &self.client_id),
                ],
            )
            .await
    }
}

/// A page with its CSP nonces blanked out.
fn regex_free_nonce(page: &str) -> String {
    let mut out = String::new();
    let mut rest = page;
    while let Some(at) = rest.find("nonce=\"") {
        let (head, tail) = rest.split_at(at + "nonce=\"".len());
        out.push_str(head);
        rest = &tail[tail.find('"').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

async fn a_magic_link_signs_in_and_the_code_redeems_for_tokens(backend: Backend) {
    let w = world(backend).await;
    let browser = browser();
    let (verifier, challenge) = pkce();
    let start = browser
        .get(w.authorize_url(&challenge, ""))
        .send()
        .await
        .unwrap();
    let login = location(&start);
    let page = browser.get(&login).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    for directive in [
        "script-src 'nonce-",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    let html = page.text().await.unwrap();
    assert!(html.contains("Notes"), "the client's name is shown");
    let sent = browser
        .post(&login)
        .form(&[
            ("email", "Ada@Example.com"),
            ("csrf", &field(&html, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert!(sent.text().await.unwrap().contains("Check your email"));

    let mail = w.mail.wait_for("ada@example.com", 1).await;
    let decoded = mail.decoded();
    assert!(decoded.contains("Subject: Sign in to Notes"), "{decoded}");
    assert!(
        decoded.contains("127.0.0.1"),
        "the mail says where the request came from"
    );
    let link = mail
        .link(&format!("{}/login/confirm?token=", w.issuer))
        .expect("a sign-in link");

    // Opening the link only shows the confirm step; a scanner fetching it signs nobody in.
    let scanner = reqwest::get(&link).await.unwrap();
    assert_eq!(scanner.status(), StatusCode::OK);
    let confirm_page = browser.get(&link).send().await.unwrap();
    let confirm_csp = confirm_page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        confirm_csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{confirm_csp}"
    );
    let html = confirm_page.text().await.unwrap();
    let nonce = confirm_csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "the page's script carries the nonce"
    );
    let done = browser
        .post(format!("{}/login/confirm", w.issuer))
        .form(&[
            ("token", field(&html, "token")),
            ("csrf", field(&html, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let back = query_of(&location(&done));
    assert_eq!(
        (back["state"].as_str(), back["iss"].as_str()),
        ("st-1", w.issuer.as_str())
    );

    let tokens = w.redeem(&back["code"], &verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    let access = tokens.json["access_token"].as_str().unwrap();
    let (header, id_claims) = jwt::parts(tokens.json["id_token"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(id_claims["iss"], w.issuer.as_str());
    assert_eq!(id_claims["sub"], w.user_id.as_str());
    assert_eq!(
        (id_claims["aud"].as_str(), id_claims["azp"].as_str()),
        (Some(w.client_id.as_str()), Some(w.client_id.as_str()))
    );
    assert_eq!(id_claims["nonce"], "n-1");
    assert_eq!(
        (
            id_claims["email"].as_str(),
            id_claims["email_verified"].as_bool()
        ),
        (Some("ada@example.com"), Some(true))
    );
    let expected_at_hash = URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access.as_bytes())[..16]);
    assert_eq!(id_claims["at_hash"], expected_at_hash.as_str());
    assert!(id_claims["auth_time"].is_i64());
    let (_, access_claims) = jwt::parts(access);
    assert_eq!(
        (
            access_claims["sub"].as_str(),
            access_claims["scope"].as_str()
        ),
        (Some(w.user_id.as_str()), Some("openid email profile"))
    );

    let userinfo = e2e::read(
        w.s.http
            .get(format!("{}/userinfo", w.issuer))
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(userinfo.json["email"], "ada@example.com");
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "login.magic_link_sent")
            .await
            .len(),
        1
    );
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "login.succeeded")
            .await
            .len(),
        1
    );

    // A second redemption fails and revokes what the first one issued.
    let again = w.redeem(&back["code"], &verifier).await;
    assert_eq!(
        (again.status, again.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let userinfo =
        w.s.http
            .get(format!("{}/userinfo", w.issuer))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "token.code_replayed")
            .await
            .len(),
        1
    );
}

async fn codes_are_bound_to_verifier_redirect_client_and_time(backend: Backend) {
    let w = world(backend).await;
    let browser = browser();
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser, &challenge).await;
    let token_url = format!("{}/token", w.issuer);
    let (other_verifier, _) = pkce();
    let wrong_verifier = w.redeem(&code, &other_verifier).await;
    assert_eq!(wrong_verifier.json["error"], "invalid_grant");
    let wrong_redirect =
        w.s.form(
            &token_url,
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/other"),
                ("code_verifier", &verifier),
                ("client_id", &w.client_id),
            ],
        )
        .await;
    assert_eq!(wrong_redirect.json["error"], "invalid_grant");
    let (other_client, _) =
        w.s.create_client(
            &w.tenant,
            json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" }),
        )
        .await;
    let wrong_client =
        w.s.form(
            &token_url,
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", &other_client),
            ],
        )
        .await;
    assert_eq!(wrong_client.json["error"], "invalid_grant");
    // None of those consumed it: the rightful redemption still works.
    assert_eq!(w.redeem(&code, &verifier).await.status, StatusCode::OK);

    let late = w.sign_in(&self::browser(), &challenge).await;
    w.s.advance(60);
    let expired = w.redeem(&late, &verifier).await;
    assert_eq!(expired.json["error"], "invalid_grant", "codes live 60 s");
}

async fn a_code_of_a_user_disabled_since_waits_and_carries_the_user_as_now(backend: Backend) {
    let w = world(backend).await;
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    w.update_user(json!({ "status": "disabled" })).await;
    let refused = w.redeem(&code, &verifier).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json["error"], "invalid_grant");
    assert_eq!(
        refused.json["error_description"],
        "the user can no longer sign in"
    );

    // Refused, not spent: enabled again (and renamed), the same code redeems, and the ID token
    // names the user as they are at the exchange.
    w.update_user(json!({ "status": "active", "name": "Ada L." }))
        .await;
    let redeemed = w.redeem(&code, &verifier).await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.text);
    let (_, id_claims) = jwt::parts(redeemed.json["id_token"].as_str().unwrap());
    assert_eq!(id_claims["sub"], w.user_id.as_str());
    assert_eq!(
        (id_claims["email"].as_str(), id_claims["name"].as_str()),
        (Some("ada@example.com"), Some("Ada L."))
    );
}

async fn parallel_redemptions_let_exactly_one_succeed(backend: Backend) {
    let w = world(backend).await;
    let (verifier, challenge) = pkce();
    let code = w.sign_in(&browser(), &challenge).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let http = w.s.http.clone();
        let url = format!("{}/token", w.issuer);
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", verifier.clone()),
            ("client_id", w.client_id.clone()),
        ];
        tasks.push(tokio::spawn(async move {
            http.post(url).form(&form).send().await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
}

async fn a_link_opened_in_another_browser_signs_nobody_in_there(backend: Backend) {
    let w = world(backend).await;
    let asking = browser();
    let (_, challenge) = pkce();
    w.ask_for_link(&asking, &challenge, "ada@example.com").await;
    let link = w.link(1).await;
    let elsewhere = w.open_and_confirm(&browser(), &link).await;
    assert_eq!(
        elsewhere.status(),
        StatusCode::OK,
        "no redirect, so no code"
    );
    assert!(
        elsewhere
            .text()
            .await
            .unwrap()
            .contains("different browser")
    );
    // The link still works in the browser that asked, once.
    let done = w.open_and_confirm(&asking, &link).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let again = asking.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "single use");
}

async fn links_expire_after_ten_minutes(backend: Backend) {
    let w = world(backend).await;
    let asking = browser();
    let (_, challenge) = pkce();
    w.ask_for_link(&asking, &challenge, "ada@example.com").await;
    let link = w.link(1).await;
    w.s.advance(600);
    let page = asking.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
}

async fn unknown_addresses_get_the_same_page_and_no_mail(backend: Backend) {
    let w = world(backend).await;
    let (_, challenge) = pkce();
    // Same status and page, and both answer at the fixed time rather than when the work ends.
    let mut answers = Vec::new();
    for address in ["ada@example.com", "nobody@example.com"] {
        let b = browser();
        let start = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
        let login = location(&start);
        let html = b.get(&login).send().await.unwrap().text().await.unwrap();
        let csrf = field(&html, "csrf");
        let began = std::time::Instant::now();
        let sent = b
            .post(&login)
            .form(&[("email", address), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        let took = began.elapsed();
        let status = sent.status();
        let page = sent.text().await.unwrap();
        // The page differs only in its nonce, form token and request.
        let page = page.replace(&csrf, "").replace(&field(&page, "csrf"), "");
        let request = login.rsplit('/').next().unwrap();
        let page = page.replace(request, "");
        let page = regex_free_nonce(&page);
        answers.push((status, page));
        assert!(
            took >= std::time::Duration::from_millis(250),
            "{address} answered after {took:?}"
        );
    }
    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(answers[0], answers[1]);
    w.mail.wait_for("ada@example.com", 1).await;
    let queued: Vec<String> =
        sqlx::query_scalar("SELECT recipient FROM mail_outbox WHERE tenant_id = $1")
            .bind(&w.tenant.id)
            .fetch_all(w.s.state.store.reader())
            .await
            .unwrap();
    assert_eq!(
        queued,
        ["ada@example.com"],
        "only the known address gets mail"
    );
    let users =
        w.s.get(
            &format!("/a/{}/admin/users?email=nobody@example.com", w.tenant.id),
            Some(&w.tenant.admin_secret),
        )
        .await;
    assert_eq!(
        users.json["items"],
        json!([]),
        "self-signup is off by default"
    );
}

async fn authorization_errors_follow_rfc6749_and_rfc9207(backend: Backend) {
    let w = world(backend).await;
    let b = browser();
    let (_, challenge) = pkce();
    // Unverified client or redirect URI: a page, never a redirect.
    for url in [
        format!(
            "{}/authorize?client_id=nobody&redirect_uri={}&response_type=code",
            w.issuer,
            urlencode(REDIRECT)
        ),
        format!(
            "{}/authorize?client_id={}&redirect_uri={}&response_type=code",
            w.issuer,
            w.client_id,
            urlencode("https://evil.example/cb")
        ),
    ] {
        let reply = b.get(&url).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(reply.headers().get("location").is_none());
        assert!(
            reply.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("nonce-")
        );
    }
    // Verified: errors go back with state and iss.
    let cases = [
        (
            w.authorize_url(&challenge, "&prompt=none"),
            "login_required",
        ),
        (
            w.authorize_url(&challenge, "&scope=admin"),
            "invalid_request",
        ),
        (
            format!(
                "{}/authorize?client_id={}&redirect_uri={}&response_type=token&state=st-1",
                w.issuer,
                w.client_id,
                urlencode(REDIRECT)
            ),
            "unsupported_response_type",
        ),
        (
            format!(
                "{}/authorize?client_id={}&redirect_uri={}&response_type=code&state=st-1",
                w.issuer,
                w.client_id,
                urlencode(REDIRECT)
            ),
            "invalid_request",
        ),
    ];
    for (url, error) in cases {
        let reply = b.get(&url).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::SEE_OTHER, "{url}");
        let back = query_of(&location(&reply));
        assert_eq!(back["error"], error, "{url}");
        assert_eq!(back["state"], "st-1");
        assert_eq!(back["iss"], w.issuer);
    }
    // A loopback redirect URI may use any port (RFC 8252 §7.3).
    let other_port = w
        .authorize_url(&challenge, "")
        .replace(&urlencode(REDIRECT), &urlencode("http://127.0.0.1:5555/cb"));
    let reply = b.get(&other_port).send().await.unwrap();
    assert!(location(&reply).contains("/login/"));
}

async fn forms_refuse_a_missing_or_foreign_csrf_token(backend: Backend) {
    let w = world(backend).await;
    let b = browser();
    let (_, challenge) = pkce();
    let start = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    let login = location(&start);
    let forged = b
        .post(&login)
        .form(&[("email", "ada@example.com"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Another browser cannot use this browser's sign-in page at all.
    let other = browser().get(&login).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    let none: Vec<String> =
        sqlx::query_scalar("SELECT recipient FROM mail_outbox WHERE tenant_id = $1")
            .bind(&w.tenant.id)
            .fetch_all(w.s.state.store.reader())
            .await
            .unwrap();
    assert!(none.is_empty());
}

/// The shown code, from the page a link opened in another browser.
fn handoff_code(html: &str) -> String {
    let start = html.find("id=\"handoff-code\"").expect("a handoff code");
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    rest[open..].split('<').next().unwrap().trim().to_owned()
}

async fn a_code_shown_in_another_browser_signs_in_the_one_that_asked(backend: Backend) {
    let w = world(backend).await;
    let asking = browser();
    let (verifier, challenge) = pkce();
    let (login, csrf) = w.ask_for_link(&asking, &challenge, "ada@example.com").await;
    let link = w.link(1).await;
    let phone = w.open_and_confirm(&browser(), &link).await;
    let code = handoff_code(&phone.text().await.unwrap());
    assert_eq!(code.len(), 6);

    let typed = asking
        .post(format!("{login}/code"))
        .form(&[("code", code.as_str()), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(typed.status(), StatusCode::SEE_OTHER);
    let back = query_of(&location(&typed));
    assert_eq!(
        w.redeem(&back["code"], &verifier).await.status,
        StatusCode::OK
    );
    // The code cannot be typed into a third browser, and the link is now spent.
    let third = browser()
        .post(format!("{login}/code"))
        .form(&[("code", code.as_str()), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::BAD_REQUEST);
}

async fn five_wrong_codes_void_the_link(backend: Backend) {
    let w = world(backend).await;
    let asking = browser();
    let (_, challenge) = pkce();
    let (login, csrf) = w.ask_for_link(&asking, &challenge, "ada@example.com").await;
    let link = w.link(1).await;
    let phone = w.open_and_confirm(&browser(), &link).await;
    let code = handoff_code(&phone.text().await.unwrap());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let reply = asking
            .post(format!("{login}/code"))
            .form(&[("code", wrong), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "attempt {attempt}");
    }
    let right = asking
        .post(format!("{login}/code"))
        .form(&[("code", code.as_str()), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        right.status(),
        StatusCode::BAD_REQUEST,
        "the link is void after five wrong codes"
    );
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "login.code_failed")
            .await
            .len(),
        5
    );
}

async fn a_tenant_may_require_the_emailed_code_after_the_link(backend: Backend) {
    let w = world(backend).await;
    let path = format!("/admin/tenants/{}", w.tenant.id);
    let set =
        w.s.send(
            reqwest::Method::PATCH,
            &path,
            Some(&w.s.root_secret),
            Some(json!({ "require_email_code": true })),
        )
        .await;
    assert_eq!(set.json["require_email_code"], true);
    let asking = browser();
    let (verifier, challenge) = pkce();
    w.ask_for_link(&asking, &challenge, "ada@example.com").await;
    let mail = w.mail.wait_for("ada@example.com", 1).await.decoded();
    let code: String = mail
        .split("enter this code when asked: ")
        .nth(1)
        .expect("the code is in the mail")
        .chars()
        .take(6)
        .collect();
    let link = w.link(1).await;
    let confirm = w.open_and_confirm(&asking, &link).await;
    assert_eq!(
        confirm.status(),
        StatusCode::OK,
        "the link alone does not sign in"
    );
    let html = confirm.text().await.unwrap();
    assert!(html.contains("Enter your code"));
    let (token, csrf) = (field(&html, "token"), field(&html, "csrf"));
    let url = format!("{}/login/confirm/code", w.issuer);
    let wrong = asking
        .post(&url)
        .form(&[
            ("token", token.as_str()),
            ("csrf", &csrf),
            ("code", "12345x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let right = asking
        .post(&url)
        .form(&[
            ("token", token.as_str()),
            ("csrf", &csrf),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    let back = query_of(&location(&right));
    assert_eq!(
        w.redeem(&back["code"], &verifier).await.status,
        StatusCode::OK
    );
}

/// A world whose client was not registered by an administrator: people are asked to consent.
async fn third_party_world(backend: Backend) -> World {
    let mut w = world(backend).await;
    let (client_id, _) =
        w.s.create_client(
            &w.tenant,
            json!({
                "client_name": "Planner",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "scope": "openid email",
                "first_party": false,
            }),
        )
        .await;
    w.client_id = client_id;
    w
}

impl World {
    /// Signs in up to the page after the confirm step; returns that response.
    async fn until_after_confirm(
        &self,
        browser: &Client,
        challenge: &str,
        extra: &str,
    ) -> reqwest::Response {
        let start = browser
            .get(
                self.authorize_url(challenge, extra)
                    .replace("scope=openid+email+profile", "scope=openid+email"),
            )
            .send()
            .await
            .unwrap();
        let login = location(&start);
        let html = browser
            .get(&login)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let n = self.mail.messages_to("ada@example.com").len() + 1;
        browser
            .post(&login)
            .form(&[
                ("email", "ada@example.com"),
                ("csrf", &field(&html, "csrf")),
            ])
            .send()
            .await
            .unwrap();
        let link = self.link(n).await;
        self.open_and_confirm(browser, &link).await
    }
}

async fn third_party_clients_ask_for_consent_once_and_remember_it(backend: Backend) {
    let w = third_party_world(backend).await;
    let b = browser();
    let (verifier, challenge) = pkce();
    let asked = w
        .until_after_confirm(&b, &challenge, "&resource=https%3A%2F%2Fapi.example%2F")
        .await;
    assert_eq!(
        asked.status(),
        StatusCode::OK,
        "a consent page, not a redirect"
    );
    let csp = asked.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    let html = asked.text().await.unwrap();
    for shown in [
        "Allow Planner?",
        "See your email address",
        "https://api.example/",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    let action = html
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let allowed = b
        .post(&action)
        .form(&[("csrf", field(&html, "csrf")), ("decision", "allow".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::SEE_OTHER);
    let back = query_of(&location(&allowed));
    assert_eq!(
        w.redeem(&back["code"], &verifier).await.status,
        StatusCode::OK
    );
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "consent.granted")
            .await
            .len(),
        1
    );

    // Remembered per user, so a sign-in from another browser does not ask again.
    let again = w
        .until_after_confirm(
            &browser(),
            &challenge,
            "&resource=https%3A%2F%2Fapi.example%2F",
        )
        .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    // prompt=consent asks anyway.
    let forced = w
        .until_after_confirm(&browser(), &challenge, "&prompt=consent")
        .await;
    assert_eq!(forced.status(), StatusCode::OK);
    assert!(forced.text().await.unwrap().contains("Allow Planner?"));
}

async fn refusing_consent_returns_access_denied(backend: Backend) {
    let w = third_party_world(backend).await;
    let b = browser();
    let (_, challenge) = pkce();
    let asked = w.until_after_confirm(&b, &challenge, "").await;
    let html = asked.text().await.unwrap();
    let action = html
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let forged = b
        .post(&action)
        .form(&[("csrf", "forged"), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let denied = b
        .post(&action)
        .form(&[("csrf", field(&html, "csrf")), ("decision", "deny".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::SEE_OTHER);
    let back = query_of(&location(&denied));
    assert_eq!(
        (
            back["error"].as_str(),
            back["state"].as_str(),
            back["iss"].as_str()
        ),
        ("access_denied", "st-1", w.issuer.as_str())
    );
    assert!(!back.contains_key("code"));
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "consent.denied").await.len(),
        1
    );
    let replay = b
        .post(&action)
        .form(&[("csrf", field(&html, "csrf")), ("decision", "allow".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::BAD_REQUEST,
        "a refused request cannot be allowed afterwards"
    );
}

impl World {
    async fn push(&self, extra: &[(&str, &str)]) -> e2e::Reply {
        let mut form = vec![
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("state", "st-1"),
        ];
        form.extend_from_slice(extra);
        let endpoint =
            self.s.discover(&self.tenant.id).await["pushed_authorization_request_endpoint"]
                .as_str()
                .unwrap()
                .to_owned();
        self.s.form(&endpoint, None, &form).await
    }
}

async fn pushed_requests_sign_in_once_and_can_be_required(backend: Backend) {
    let w = world(backend).await;
    let (verifier, challenge) = pkce();
    let pushed = w
        .push(&[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{}", pushed.text);
    assert_eq!(pushed.json["expires_in"], 60);
    let request_uri = pushed.json["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let url = format!(
        "{}/authorize?client_id={}&request_uri={}",
        w.issuer,
        w.client_id,
        urlencode(&request_uri)
    );

    let b = browser();
    let start = b.get(&url).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let login = location(&start);
    let html = b.get(&login).send().await.unwrap().text().await.unwrap();
    b.post(&login)
        .form(&[
            ("email", "ada@example.com"),
            ("csrf", &field(&html, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    let done = w.open_and_confirm(&b, &w.link(1).await).await;
    let back = query_of(&location(&done));
    assert_eq!(back["state"], "st-1", "the pushed state comes back");
    assert_eq!(
        w.redeem(&back["code"], &verifier).await.status,
        StatusCode::OK
    );

    let reused = b.get(&url).send().await.unwrap();
    assert_eq!(
        reused.status(),
        StatusCode::BAD_REQUEST,
        "a request_uri works once"
    );
    let late = w
        .push(&[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    w.s.advance(60);
    let late_url = format!(
        "{}/authorize?client_id={}&request_uri={}",
        w.issuer,
        w.client_id,
        urlencode(late.json["request_uri"].as_str().unwrap())
    );
    assert_eq!(
        b.get(&late_url).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST,
        "and for 60 s"
    );

    // Pushing checks the request like the authorization endpoint, answering in JSON.
    let no_pkce = w.push(&[]).await;
    assert_eq!(
        (no_pkce.status, no_pkce.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let token = w
        .push(&[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("response_type", "token"),
        ])
        .await;
    assert_eq!(
        token.json["error"], "invalid_request",
        "response_type repeated"
    );
    let unknown =
        w.s.form(
            &format!("{}/par", w.issuer),
            None,
            &[("client_id", "nobody"), ("response_type", "code")],
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.json["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // A tenant may require them: then a plain request is refused, back at the client.
    let path = format!("/admin/tenants/{}", w.tenant.id);
    w.s.send(
        reqwest::Method::PATCH,
        &path,
        Some(&w.s.root_secret),
        Some(json!({ "require_par": true })),
    )
    .await;
    assert_eq!(
        w.s.discover(&w.tenant.id).await["require_pushed_authorization_requests"],
        true
    );
    let plain = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    let back = query_of(&location(&plain));
    assert_eq!(
        (back["error"].as_str(), back["iss"].as_str()),
        ("invalid_request", w.issuer.as_str())
    );
}

/// Mail survives an SMTP outage and a restart: the outbox keeps it, and whichever replica runs
/// next delivers it once the server is back.
async fn queued_mail_survives_an_smtp_outage_and_a_restart(backend: Backend) {
    let port = e2e::binary::free_port();
    let env = [
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", port.to_string()),
        ("SMTP_TLS", "none".to_owned()),
        ("SMTP_FROM", "sign-in@id.example".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = TestServer::start_with(backend, &env).await;
    let tenant = a.create_tenant().await;
    let (client_id, _) = a
        .create_client(&tenant, json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "openid" }))
        .await;
    a.post(
        &format!("/a/{}/admin/users", tenant.id),
        Some(&tenant.admin_secret),
        json!({ "email": "ada@example.com" }),
    )
    .await;
    let issuer = format!("{}/a/{}", a.base_url, tenant.id);
    let (_, challenge) = pkce();
    let b = browser();
    let start = b
        .get(format!("{issuer}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256", urlencode(REDIRECT)))
        .send()
        .await
        .unwrap();
    let login = location(&start);
    let html = b.get(&login).send().await.unwrap().text().await.unwrap();
    let page = b
        .post(&login)
        .form(&[
            ("email", "ada@example.com"),
            ("csrf", &field(&html, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the page does not wait for the mail server"
    );

    let attempts = || async {
        let row: (i64, Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT attempts, last_error, sent_at FROM mail_outbox WHERE tenant_id = $1",
        )
        .bind(&tenant.id)
        .fetch_one(a.state.store.reader())
        .await
        .unwrap();
        row
    };
    let mut failed = false;
    for _ in 0..100 {
        let (tries, error, _) = attempts().await;
        if tries >= 1 && error.is_some() {
            failed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        failed,
        "the first attempt failed against the closed port and was recorded"
    );

    // The mail server comes back; a process started after the failure, on the same database,
    // delivers the queued mail once its back-off has passed. The first process's clock stays
    // put, so the delivery can only be the new one's.
    let fresh = a.replica().await;
    let sink = SmtpSink::start_on(port).await;
    fresh.advance(30);
    fresh.state.mail.as_ref().unwrap().wake();
    let mail = sink.wait_for("ada@example.com", 1).await;
    assert!(
        mail.link(&format!("{issuer}/login/confirm?token="))
            .is_some()
    );
    let mut delivered = false;
    for _ in 0..100 {
        if attempts().await.2.is_some() {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "marked sent");
    let (tries, _, _) = attempts().await;
    assert_eq!(tries, 2, "one failed attempt, one delivery");
    let body: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM mail_outbox WHERE tenant_id = $1")
        .bind(&tenant.id)
        .fetch_one(a.state.store.reader())
        .await
        .unwrap();
    assert!(
        body.is_empty(),
        "the sealed body, which holds the link, is gone once sent"
    );
    assert_eq!(sink.messages_to("ada@example.com").len(), 1, "sent once");
}

async fn a_browser_session_signs_in_again_without_mail_until_logout(backend: Backend) {
    let w = world(backend).await;
    let b = browser();
    let (verifier, challenge) = pkce();
    let first = w.sign_in(&b, &challenge).await;
    let id_token = w.redeem(&first, &verifier).await.json["id_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Single sign-on: straight back to the client, no mail.
    let again = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let back = query_of(&location(&again));
    assert!(back.contains_key("code"), "{back:?}");
    let tokens = w.redeem(&back["code"], &verifier).await;
    let (_, claims) = jwt::parts(tokens.json["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], w.user_id.as_str());
    assert_eq!(
        w.mail.messages_to("ada@example.com").len(),
        1,
        "no second mail"
    );
    let silent = b
        .get(w.authorize_url(&challenge, "&prompt=none"))
        .send()
        .await
        .unwrap();
    assert!(
        query_of(&location(&silent)).contains_key("code"),
        "prompt=none succeeds with a session"
    );
    // id_token_hint: the session counts only for the user the hint names.
    let hinted = b
        .get(w.authorize_url(
            &challenge,
            &format!("&prompt=none&id_token_hint={id_token}"),
        ))
        .send()
        .await
        .unwrap();
    assert!(query_of(&location(&hinted)).contains_key("code"));
    let tenant = shared::TenantId::parse(&w.tenant.id).unwrap();
    let claims = json!({ "iss": w.issuer, "sub": "someone-else", "aud": w.client_id });
    let other =
        w.s.state
            .keys
            .sign(&tenant, claims.as_object().unwrap().clone(), "JWT")
            .await
            .unwrap();
    let mismatch = b
        .get(w.authorize_url(&challenge, &format!("&prompt=none&id_token_hint={other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(query_of(&location(&mismatch))["error"], "login_required");
    let garbage = b
        .get(w.authorize_url(&challenge, "&id_token_hint=not.a.token"))
        .send()
        .await
        .unwrap();
    assert_eq!(query_of(&location(&garbage))["error"], "invalid_request");
    // A client may still ask for a fresh sign-in.
    for extra in ["&prompt=login", "&max_age=0"] {
        w.s.advance(1);
        let fresh = b
            .get(w.authorize_url(&challenge, extra))
            .send()
            .await
            .unwrap();
        assert!(location(&fresh).contains("/login/"), "{extra}");
    }

    // RP-initiated logout with the ID token: ends the session and returns to the client.
    let doc = w.s.discover(&w.tenant.id).await;
    let end_session = doc["end_session_endpoint"].as_str().unwrap().to_owned();
    let bad = b
        .get(format!(
            "{end_session}?id_token_hint={id_token}&post_logout_redirect_uri={}",
            urlencode("https://evil.example/")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status(),
        StatusCode::BAD_REQUEST,
        "unregistered post-logout URIs are refused"
    );
    let out = b
        .get(format!(
            "{end_session}?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye-1",
            urlencode(AFTER_LOGOUT)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), format!("{AFTER_LOGOUT}?state=bye-1"));
    let after = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert!(
        location(&after).contains("/login/"),
        "signed out: sign-in again"
    );
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "session.ended").await.len(),
        1
    );
}

async fn logout_without_a_hint_asks_first_and_sessions_time_out(backend: Backend) {
    let w = world(backend).await;
    let b = browser();
    let (_, challenge) = pkce();
    w.sign_in(&b, &challenge).await;
    let end_session = format!("{}/logout", w.issuer);
    // A page elsewhere cannot sign the person out: without a hint, they confirm here.
    let asked = b.get(&end_session).send().await.unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    let html = asked.text().await.unwrap();
    assert!(html.contains("Sign out?"));
    let still = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert!(
        query_of(&location(&still)).contains_key("code"),
        "the GET ended nothing"
    );
    let forged = b
        .post(&end_session)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::OK, "asked again");
    let confirmed = b
        .post(&end_session)
        .form(&[("csrf", field(&html, "csrf"))])
        .send()
        .await
        .unwrap();
    assert!(confirmed.text().await.unwrap().contains("Signed out"));
    let after = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert!(location(&after).contains("/login/"));

    // Idle timeout: eight hours unused ends a session.
    w.sign_in(&b, &challenge).await;
    w.s.advance(8 * 3600);
    let idle = b.get(w.authorize_url(&challenge, "")).send().await.unwrap();
    assert!(
        location(&idle).contains("/login/"),
        "idle sessions are over"
    );
}

async fn an_address_gets_at_most_five_links_per_quarter_hour(backend: Backend) {
    let w = world(backend).await;
    let (_, challenge) = pkce();
    for _ in 0..6 {
        w.ask_for_link(&browser(), &challenge, "ada@example.com")
            .await;
    }
    let count = || async {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT recipient FROM mail_outbox WHERE tenant_id = $1")
                .bind(&w.tenant.id)
                .fetch_all(w.s.state.store.reader())
                .await
                .unwrap();
        rows.len()
    };
    assert_eq!(
        count().await,
        5,
        "the sixth request got the same page and no mail"
    );
    assert_eq!(
        w.s.audit_events(&w.tenant.id, "login.link_limited")
            .await
            .len(),
        1
    );
    w.s.advance(15 * 60);
    w.ask_for_link(&browser(), &challenge, "ada@example.com")
        .await;
    assert_eq!(count().await, 6, "the window moves on");
}

async fn one_ip_gets_at_most_twenty_links_per_quarter_hour(backend: Backend) {
    let w = world(backend).await;
    let (_, challenge) = pkce();
    for i in 0..21 {
        let email = format!("person{i}@example.com");
        w.s.post(
            &format!("/a/{}/admin/users", w.tenant.id),
            Some(&w.tenant.admin_secret),
            json!({ "email": email }),
        )
        .await;
        w.ask_for_link(&browser(), &challenge, &email).await;
    }
    let queued: Vec<String> =
        sqlx::query_scalar("SELECT recipient FROM mail_outbox WHERE tenant_id = $1")
            .bind(&w.tenant.id)
            .fetch_all(w.s.state.store.reader())
            .await
            .unwrap();
    assert_eq!(
        queued.len(),
        20,
        "the 21st request from 127.0.0.1 sent nothing"
    );
    let limited = w.s.audit_events(&w.tenant.id, "login.link_limited").await;
    assert_eq!(
        (limited.len(), limited[0]["details"]["limit"].as_str()),
        (1, Some("ip"))
    );
}

both_backends!(
    one_ip_gets_at_most_twenty_links_per_quarter_hour,
    an_address_gets_at_most_five_links_per_quarter_hour,
    a_browser_session_signs_in_again_without_mail_until_logout,
    logout_without_a_hint_asks_first_and_sessions_time_out,
    queued_mail_survives_an_smtp_outage_and_a_restart,
    pushed_requests_sign_in_once_and_can_be_required,
    third_party_clients_ask_for_consent_once_and_remember_it,
    refusing_consent_returns_access_denied,
    a_code_shown_in_another_browser_signs_in_the_one_that_asked,
    five_wrong_codes_void_the_link,
    a_tenant_may_require_the_emailed_code_after_the_link,
    a_magic_link_signs_in_and_the_code_redeems_for_tokens,
    codes_are_bound_to_verifier_redirect_client_and_time,
    a_code_of_a_user_disabled_since_waits_and_carries_the_user_as_now,
    parallel_redemptions_let_exactly_one_succeed,
    a_link_opened_in_another_browser_signs_nobody_in_there,
    links_expire_after_ten_minutes,
    unknown_addresses_get_the_same_page_and_no_mail,
    authorization_errors_follow_rfc6749_and_rfc9207,
    forms_refuse_a_missing_or_foreign_csrf_token,
);
