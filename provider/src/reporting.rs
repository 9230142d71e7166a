//! Sentry, when `SENTRY_DSN` is set: panics and error logs become events, information, warnings
//! and database queries (their SQL, never their parameters) become breadcrumbs (the layers are
//! installed by `telemetry`), and security events are reported on purpose. Everything passes `scrub` on the way out: no email,
//! token, cookie, header or query string leaves in an event.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};

use regex::Regex;
use sentry::{
    Breadcrumb, ClientInitGuard, Level,
    protocol::{Event, Value},
};

use crate::config::Config;

/// Starts Sentry; the guard flushes pending events when dropped.
pub fn init(config: &Config) -> Option<ClientInitGuard> {
    let settings = config.sentry.as_ref()?;
    // The rate was checked to lie in 0..=1 when the configuration was read.
    let mut options = sentry::ClientOptions::new()
        .traces_sample_rate(settings.traces_sample_rate)
        .send_default_pii(false)
        .before_send(|event| Some(scrub(event)))
        .before_breadcrumb(|crumb| Some(scrub_breadcrumb(crumb)));
    options.dsn = settings.dsn.expose().parse().ok();
    options.release = sentry::release_name!();
    options.environment = settings.environment.clone().map(Into::into);
    Some(sentry::init(options))
}

/// A security event sent on purpose (warning level), with tags to search by.
pub fn security_event(message: &str, tags: &[(&str, &str)]) {
    sentry::with_scope(
        |scope| {
            for (key, value) in tags {
                scope.set_tag(key, value);
            }
        },
        || sentry::capture_message(message, Level::Warning),
    );
}

/// Failures within this window count towards one burst.
const BURST_WINDOW: Duration = Duration::from_secs(60);
/// This many failed admin logins for one tenant within the window make a burst.
pub const BURST_FAILURES: u32 = 10;

static FAILURES: LazyLock<Mutex<HashMap<String, (Instant, u32)>>> = LazyLock::new(Mutex::default);

/// Counts a failed admin authentication; the `BURST_FAILURES`-th within a window is reported
/// once. Keys are known tenants and the `_system` bucket, so the map stays small.
pub fn admin_auth_failed(tenant: &str) {
    let Ok(mut failures) = FAILURES.lock() else {
        return;
    };
    let now = Instant::now();
    let entry = failures.entry(tenant.to_owned()).or_insert((now, 0));
    if now.duration_since(entry.0) > BURST_WINDOW {
        *entry = (now, 0);
    }
    entry.1 += 1;
    if entry.1 == BURST_FAILURES {
        drop(failures);
        security_event(
            "burst of failed admin authentications",
            &[("tenant", tenant), ("event", "admin.auth_failed")],
        );
    }
}

static JWT: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern
    Regex::new(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*").expect("valid pattern")
});

/// Text as it may leave: emails and anything shaped like a JWT redacted.
fn clean(text: &str) -> String {
    JWT.replace_all(&crate::email::redact(text), "[jwt]")
        .into_owned()
}

fn clean_value(value: &mut Value) {
    match value {
        Value::String(text) => *text = clean(text),
        Value::Array(items) => items.iter_mut().for_each(clean_value),
        Value::Object(map) => map.values_mut().for_each(clean_value),
        _ => {}
    }
}

fn scrub_breadcrumb(mut crumb: Breadcrumb) -> Breadcrumb {
    crumb.message = crumb.message.as_deref().map(clean);
    crumb.data.values_mut().for_each(clean_value);
    crumb
}

/// Strips what may identify a person or carry a credential.
pub fn scrub(mut event: Event<'static>) -> Event<'static> {
    event.user = None;
    if let Some(request) = event.request.as_mut() {
        if let Some(url) = request.url.as_mut() {
            url.set_query(None);
            url.set_fragment(None);
        }
        request.query_string = None;
        request.cookies = None;
        request.data = None;
        request.env.clear();
        request
            .headers
            .retain(|name, _| name.eq_ignore_ascii_case("user-agent"));
    }
    event.message = event.message.as_deref().map(clean);
    if let Some(entry) = event.logentry.as_mut() {
        entry.message = clean(&entry.message);
    }
    for exception in event.exception.values.iter_mut() {
        exception.value = exception.value.as_deref().map(clean);
    }
    event.extra.values_mut().for_each(clean_value);
    for value in event.tags.values_mut() {
        *value = clean(value);
    }
    event.breadcrumbs.values = std::mem::take(&mut event.breadcrumbs.values)
        .into_iter()
        .map(scrub_breadcrumb)
        .collect();
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_lose_addresses_tokens_and_request_details() {
        let mut event = Event {
            message: Some(
                "ada@example.com presented eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln".into(),
            ),
            ..Default::default()
        };
        event.request = Some(sentry::protocol::Request {
            url: "https://id.example/a/t/authorize?code=abc&login_hint=ada@example.com"
                .parse()
                .ok(),
            query_string: Some("code=abc".into()),
            cookies: Some("session=xyz".into()),
            headers: [
                ("Authorization".to_owned(), "Bearer abc".to_owned()),
                ("User-Agent".to_owned(), "test".to_owned()),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        });
        event.extra.insert("who".into(), "bob@example.org".into());
        let event = scrub(event);
        let text = serde_json::to_string(&event).unwrap();
        for leaked in ["ada@", "bob@", "eyJ", "code=abc", "session=xyz", "Bearer"] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
        assert!(
            text.contains("[jwt]") && text.contains("User-Agent"),
            "{text}"
        );
    }
}
