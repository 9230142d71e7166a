//! Server-rendered pages: askama templates under a strict nonce-based Content-Security-Policy,
//! and the device cookie that ties a sign-in to the browser that asked.

use askama::Template;
use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{
    config::Config,
    crypto::{SecretKind, random_b64, random_secret},
    state::AppState,
};

/// A fresh nonce for one page response.
pub(super) fn nonce() -> String {
    random_b64(16)
}

/// A rendered page with its CSP. `form_targets` are the origins a form on the page may end up
/// at (CSP `form-action` also governs the redirect after a form post).
pub(super) struct Page {
    pub(super) status: StatusCode,
    pub(super) nonce: String,
    pub(super) html: String,
    pub(super) form_targets: Vec<String>,
    pub(super) set_cookie: Option<String>,
}

impl Page {
    pub(super) fn render(template: &impl Template, nonce: String) -> Self {
        let html = template.render().unwrap_or_else(|err| {
            tracing::error!(error = %err, "page template failed");
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
        });
        Self {
            status: StatusCode::OK,
            nonce,
            html,
            form_targets: Vec::new(),
            set_cookie: None,
        }
    }

    pub(super) fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let csp = format!(
            "default-src 'none'; script-src 'nonce-{n}'; style-src 'nonce-{n}'; img-src 'self'; \
             form-action 'self'{targets}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
            n = self.nonce,
            targets = self
                .form_targets
                .iter()
                .map(|t| format!(" {t}"))
                .collect::<String>(),
        );
        let mut response = (self.status, self.html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        if let Ok(csp) = HeaderValue::from_str(&csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if let Some(cookie) = self.set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    nonce: &'a str,
    message: &'a str,
}

pub(super) fn error_page(status: StatusCode, message: &str) -> Page {
    let nonce = nonce();
    let template = ErrorTemplate {
        nonce: &nonce,
        message,
    };
    let page = Page::render(&template, nonce.clone());
    page.status(status)
}

/// The device cookie's name: `__Host-` prefixed (which needs `Secure`) when served over https.
fn device_cookie_name(config: &Config) -> &'static str {
    if config.public_url.starts_with("https://") {
        "__Host-device"
    } else {
        "device"
    }
}

/// The device cookie the browser sent, if any.
pub(super) fn device(headers: &HeaderMap, config: &Config) -> Option<String> {
    let name = device_cookie_name(config);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 43)
}

/// The browser's device id, and the `Set-Cookie` to send when it had none.
pub(super) fn device_or_new(headers: &HeaderMap, config: &Config) -> (String, Option<String>) {
    if let Some(existing) = device(headers, config) {
        return (existing, None);
    }
    let value = random_secret();
    let secure = if config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{secure}",
        device_cookie_name(config)
    );
    (value, Some(cookie))
}

/// A form token bound to the browser's device cookie and to what the form acts on.
pub(super) fn csrf_token(state: &AppState, device: &str, subject: &str) -> String {
    let digest = state
        .digester
        .digest(SecretKind::Csrf, &format!("{device}\n{subject}"));
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, digest)
}

pub(super) fn csrf_ok(state: &AppState, device: &str, subject: &str, presented: &str) -> bool {
    crate::crypto::ct_eq(
        csrf_token(state, device, subject).as_bytes(),
        presented.as_bytes(),
    )
}

/// The CSP source that lets a form end up at `url`: its origin, or for a native app's
/// private-use scheme (RFC 8252 §7.1) the scheme itself.
pub(super) fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let origin = url.origin();
    if origin.is_tuple() {
        Some(origin.ascii_serialization())
    } else {
        Some(format!("{}:", url.scheme()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_targets_are_origins_or_private_use_schemes() {
        assert_eq!(
            origin_of("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9/cb").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            origin_of("com.example.app:/oauth2redirect").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
