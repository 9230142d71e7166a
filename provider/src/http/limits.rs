//! Rate limits at the HTTP surface: which actors each endpoint counts, and the 429 each surface
//! answers with (`Retry-After` and the IETF `RateLimit-Policy`/`RateLimit` headers, in the
//! surface's own error format). A store outage on a limit that may not be skipped is a 503.

use std::net::IpAddr;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{client_ip::ClientIp, pages::error_page, request_id::RequestId};
use crate::{
    error::{AdminError, OAuthError},
    limits::{Actor, Class, Decision, Refusal},
    state::AppState,
};

/// A request the limiter did not let through.
#[derive(Debug)]
pub(in crate::http) struct Limited(Decision);

/// Counts one request of `class` against `actors`.
pub(in crate::http) async fn enforce(
    state: &AppState,
    class: Class,
    actors: &[Actor],
) -> Result<(), Limited> {
    match state.limits.check(class, actors).await {
        Decision::Allowed => Ok(()),
        Decision::Refused(refusal) => {
            crate::monitoring::rate_limited(format!(
                "{}_{}",
                refusal.class.name(),
                refusal.kind.name()
            ));
            Err(Limited(Decision::Refused(refusal)))
        }
        Decision::Unavailable => Err(Limited(Decision::Unavailable)),
    }
}

/// The actors every request of a tenant's endpoint is counted as: its address, its tenant and
/// everyone.
pub(super) fn request_actors(ip: Option<&ClientIp>, tenant: &str) -> Vec<Actor> {
    let mut actors = vec![Actor::tenant(tenant), Actor::global()];
    if let Some(ClientIp(ip)) = ip {
        actors.insert(0, Actor::ip(*ip));
    }
    actors
}

/// `Retry-After`, `RateLimit-Policy` and `RateLimit` for a refusal.
pub(super) fn headers(refusal: &Refusal) -> Vec<(HeaderName, HeaderValue)> {
    let policy = format!("{}-{}", refusal.class.name(), refusal.kind.name());
    let values = [
        ("retry-after", refusal.retry_after.to_string()),
        (
            "ratelimit-policy",
            format!("\"{policy}\";q={};w=60", refusal.limit),
        ),
        (
            "ratelimit",
            format!("\"{policy}\";r=0;t={}", refusal.retry_after),
        ),
    ];
    values
        .into_iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_static(name),
                HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect()
}

fn unavailable_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![(
        HeaderName::from_static("retry-after"),
        HeaderValue::from_static("5"),
    )]
}

impl Limited {
    pub(in crate::http) fn refused(refusal: Refusal) -> Self {
        Self(Decision::Refused(refusal))
    }

    pub(in crate::http) fn unavailable() -> Self {
        Self(Decision::Unavailable)
    }

    /// In the OAuth error format (token, introspection, revocation, PAR).
    pub(in crate::http) fn oauth(self) -> OAuthError {
        match self.0 {
            Decision::Refused(refusal) => OAuthError {
                headers: headers(&refusal),
                ..OAuthError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    format!("rate limit reached; retry in {} s", refusal.retry_after),
                )
            },
            _ => OAuthError {
                headers: unavailable_headers(),
                ..OAuthError::unavailable()
            },
        }
    }

    /// In the admin error format.
    pub(in crate::http) fn admin(self) -> AdminError {
        match self.0 {
            Decision::Refused(refusal) => AdminError {
                headers: headers(&refusal),
                ..AdminError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many failed attempts; retry in {} s",
                        refusal.retry_after
                    ),
                )
            },
            _ => AdminError {
                headers: unavailable_headers(),
                ..AdminError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "a dependency is down; retry shortly",
                )
            },
        }
    }

    /// As a page (the authorization endpoint and sign-in pages).
    pub(in crate::http) fn page(self) -> Response {
        let (status, message, extra) = match self.0 {
            Decision::Refused(refusal) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many attempts. Try again in {} seconds.",
                    refusal.retry_after
                ),
                headers(&refusal),
            ),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy. Try again shortly.".to_owned(),
                unavailable_headers(),
            ),
        };
        let mut response = error_page(status, &message).into_response();
        for (name, value) in extra {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Counts every request to the authorization endpoint and sign-in pages (class `authorize`).
pub(super) async fn pages(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let actors = request_actors(
        request.extensions().get::<ClientIp>(),
        super::route_tenant(&request),
    );
    if let Err(limited) = enforce(&state, Class::Authorize, &actors).await {
        return limited.page();
    }
    next.run(request).await
}

/// Counts every request to the endpoints where clients authenticate (class `token`).
pub(super) async fn token_endpoints(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let actors = request_actors(
        request.extensions().get::<ClientIp>(),
        super::route_tenant(&request),
    );
    if let Err(limited) = enforce(&state, Class::Token, &actors).await {
        return limited.oauth().into_response();
    }
    next.run(request).await
}

/// Refusals recorded in the audit trail: at most one per tenant and policy a minute, so a flood
/// leaves a trace without writing a row per refused request.
const AUDIT_SAMPLE_MS: i64 = 60_000;

static LAST_RECORDED: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, i64>>,
> = std::sync::LazyLock::new(Default::default);

/// Whether a refusal under `key` is the first this minute (and so gets an audit row).
fn sampled(key: String, now_ms: i64) -> bool {
    let Ok(mut last) = LAST_RECORDED.lock() else {
        return false;
    };
    if last.len() > 10_000 {
        last.retain(|_, at| now_ms - *at < AUDIT_SAMPLE_MS);
    }
    match last.get(&key) {
        Some(at) if now_ms - at < AUDIT_SAMPLE_MS => false,
        _ => {
            last.insert(key, now_ms);
            true
        }
    }
}

/// What a refusal's audit row needs of its request: cheap clones, kept while the request is
/// handled and read only if the answer is a 429.
#[derive(Debug)]
pub(super) struct Requester {
    route: Option<MatchedPath>,
    uri: Uri,
    ip: Option<IpAddr>,
    user_agent: Option<HeaderValue>,
    request_id: Option<RequestId>,
}

impl Requester {
    pub(super) fn of(request: &Request) -> Self {
        Self {
            route: request.extensions().get::<MatchedPath>().cloned(),
            uri: request.uri().clone(),
            ip: request.extensions().get::<ClientIp>().map(|ip| ip.0),
            user_agent: request.headers().get(header::USER_AGENT).cloned(),
            request_id: request.extensions().get::<RequestId>().cloned(),
        }
    }
}

/// The policy that refused a request, if `response` is a limit's 429 (whichever surface
/// answered it).
pub(super) fn refusing_policy(response: &Response) -> Option<HeaderValue> {
    (response.status() == StatusCode::TOO_MANY_REQUESTS)
        .then(|| response.headers().get("ratelimit-policy").cloned())
        .flatten()
}

/// Records a `rate_limit.refused` row, at most one per tenant and policy a minute.
pub(super) async fn audit_refusal(state: &AppState, requester: Requester, policy: HeaderValue) {
    let Ok(policy) = policy.to_str() else {
        return;
    };
    let segment = super::tenant_segment(requester.route.as_ref(), requester.uri.path());
    let tenant = shared::TenantId::parse(segment).map_or(crate::audit::SYSTEM_TENANT, |_| segment);
    let clock = state.clock.as_ref();
    if !sampled(format!("{tenant}\n{policy}"), clock.unix_ms()) {
        return;
    }
    let meta = crate::audit::RequestMeta::new(
        requester.ip,
        requester.user_agent.as_ref(),
        requester.request_id.as_ref(),
    );
    let event = crate::audit::AuditEvent::new("rate_limit.refused")
        .details(serde_json::json!({ "policy": policy }));
    let recorded = crate::audit::record_alone(&state.store, clock, tenant, &meta, event).await;
    if let Err(err) = recorded {
        tracing::warn!(error = %err, "could not record rate_limit.refused");
    }
}
