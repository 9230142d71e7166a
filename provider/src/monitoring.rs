//! Prometheus metrics. Counters and histograms go to the process-wide `metrics` recorder as
//! things happen; what is read from the database (key states, mail waiting, pool use) is
//! measured at scrape time by `http::prometheus`.

use std::{
    collections::HashSet,
    sync::{LazyLock, OnceLock, RwLock},
    time::Duration,
};

use axum::http::{Method, StatusCode};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latency buckets, in seconds: a token endpoint answers in about a millisecond.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The recorder, installed on first use; every server in the process shares it.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".to_owned()),
                    &LATENCY_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    drain_histograms(handle.clone());
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP: Duration = Duration::from_secs(5);

/// Histogram samples wait in the recorder until upkeep folds them into buckets; a scrape does
/// that too, but a server nobody scrapes would otherwise keep every sample of every request.
fn drain_histograms(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                handle.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "metrics upkeep not started");
    }
}

/// One answered request, by route template (never the raw path, whose ids would explode the
/// label set).
pub fn request(route: &str, method: &Method, status: StatusCode, seconds: f64) {
    let (route, method, status) = (
        interned(route),
        method_label(method),
        interned(status.as_str()),
    );
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(seconds);
}

/// The standard methods by name; any other a client makes up is counted as `other`, so it
/// cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    const NAMES: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .position(|known| known == method)
        .map_or("other", |at| NAMES[at])
}

/// A label value kept for the life of the process. Route templates and status codes are a
/// small fixed set, so each is allocated once instead of on every request.
fn interned(value: &str) -> &'static str {
    static SEEN: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Some(seen) = SEEN.read().ok().and_then(|seen| seen.get(value).copied()) {
        return seen;
    }
    let Ok(mut seen) = SEEN.write() else {
        return "unknown";
    };
    if let Some(known) = seen.get(value) {
        return known;
    }
    let leaked: &'static str = Box::leak(value.into());
    seen.insert(leaked);
    leaked
}

/// A token endpoint grant that issued tokens.
pub fn token_issued(grant: &'static str) {
    metrics::counter!("tokens_issued_total", "grant" => grant).increment(1);
}

/// A rotated refresh token presented again; its family was revoked.
pub fn reuse_detected() {
    metrics::counter!("refresh_token_reuse_detected_total").increment(1);
}

/// A request refused by a limit (`limit` names which, e.g. `token_ip`).
pub fn rate_limited(limit: String) {
    metrics::counter!("rate_limited_total", "limit" => limit).increment(1);
}

/// The shared rate-limit store (Redis) could not be reached for a decision.
pub fn rate_limit_store_failed() {
    metrics::counter!("rate_limit_store_errors_total").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_come_from_a_bounded_set() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        let once = interned("/a/{tenant}/token");
        let again = interned(&String::from("/a/{tenant}/token"));
        assert!(std::ptr::eq(once, again), "the same text is kept once");
        assert_eq!(interned(StatusCode::TOO_MANY_REQUESTS.as_str()), "429");
    }
}
