//! A person at a browser, played by an HTTP client with a cookie jar: given an authorization
//! request that some client library built, it walks the provider's pages as a person would
//! (email form, the link read from the real SMTP sink, the confirm form, the consent page) and
//! returns the URL the provider finally sends the browser to, without following it.

use reqwest::{Client, StatusCode, redirect::Policy};

use crate::smtp::SmtpSink;

/// Signs `email` in for the request at `authorize_url`; returns the redirect back to the client.
pub async fn sign_in(authorize_url: &str, email: &str, mail: &SmtpSink) -> String {
    let browser = Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let issuer = authorize_url.split("/authorize").next().unwrap().to_owned();
    let start = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(
        start.status(),
        StatusCode::SEE_OTHER,
        "authorize: {}",
        start.text().await.unwrap_or_default()
    );
    let login = location(&start);
    assert!(
        login.starts_with(&format!("{issuer}/login")),
        "the sign-in page, not {login}"
    );
    let page = browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let n = mail.messages_to(email).len() + 1;
    let sent = browser
        .post(&login)
        .form(&[("email", email), ("csrf", &field(&page, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let link = mail
        .wait_for(email, n)
        .await
        .link(&format!("{issuer}/login/confirm?token="))
        .expect("a sign-in link in the mail");
    let confirm = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut done = browser
        .post(format!("{issuer}/login/confirm"))
        .form(&[
            ("token", field(&confirm, "token")),
            ("csrf", field(&confirm, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    if done.status() == StatusCode::OK {
        // A third-party client: the consent page. The person allows it.
        let html = done.text().await.unwrap();
        assert!(html.contains("decision"), "a consent page: {html}");
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .replace("&amp;", "&");
        done = browser
            .post(&action)
            .form(&[("csrf", field(&html, "csrf")), ("decision", "allow".into())])
            .send()
            .await
            .unwrap();
    }
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    location(&done)
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The value of a hidden form field in a page.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}
