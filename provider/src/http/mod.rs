//! The route table and the middleware every request passes through.

pub mod admin;
mod authorize;
mod client_auth;
pub mod client_ip;
mod discovery;
mod dpop;
mod health;
mod introspect;
pub(crate) mod limits;
mod login;
mod logout;
mod pages;
mod par;
mod prometheus;
mod protocol;
mod refresh;
pub(crate) mod register;
pub mod request_id;
mod revoke;
mod session;
mod session_store;
mod token;
mod userinfo;

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{Any, CorsLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};

use crate::state::AppState;

/// Largest request body accepted anywhere; protocol and admin requests are small.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request still running after this is answered 408 and dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Endpoints that answer CORS from any origin, without credentials (SPEC).
fn cors_routes(state: &AppState) -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("dpop"),
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("dpop-nonce"),
        ])
        .max_age(Duration::from_secs(600));
    Router::new()
        // Discovery: RFC 8414 §3 path insertion and the OpenID Connect path, both ways round.
        .route(
            "/a/{tenant}/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route(
            "/a/{tenant}/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server/a/{tenant}",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/openid-configuration/a/{tenant}",
            get(discovery::metadata),
        )
        // jwks_uri
        .route("/a/{tenant}/jwks.json", get(discovery::jwks))
        .merge(client_routes(state))
        // registration_endpoint (RFC 7591) and client configuration (RFC 7592)
        .route("/a/{tenant}/register", post(register::register))
        .route(
            "/a/{tenant}/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .layer(cors)
}

/// The endpoints where clients authenticate, counted together by the `token` rate limits.
fn client_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        // token_endpoint
        .route("/a/{tenant}/token", post(token::token))
        // introspection_endpoint
        .route("/a/{tenant}/introspect", post(introspect::introspect))
        // revocation_endpoint
        .route("/a/{tenant}/revoke", post(revoke::revoke))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limits::token_endpoints,
        ))
}

/// The pages people sign in and out on; they alone carry the browser session.
fn page_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        // authorization_endpoint, and the sign-in pages it leads to (not advertised)
        .route(
            "/a/{tenant}/authorize",
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(
            "/a/{tenant}/login/confirm",
            get(login::confirm_page).post(login::confirm),
        )
        .route(
            "/a/{tenant}/login/{request}",
            get(login::form).post(login::send_link),
        )
        .route("/a/{tenant}/login/confirm/code", post(login::confirm_code))
        .route("/a/{tenant}/login/{request}/code", post(login::handoff))
        .route("/a/{tenant}/consent/{request}", post(login::consent))
        // end_session_endpoint
        .route(
            "/a/{tenant}/logout",
            get(logout::logout).post(logout::logout),
        )
        .layer(session::layer(state))
        .route_layer(middleware::from_fn_with_state(state.clone(), limits::pages))
}

pub fn app(state: AppState) -> Router {
    let sentry = state.config.sentry.is_some();
    let router = Router::new()
        .merge(cors_routes(&state))
        .merge(page_routes(&state))
        // userinfo_endpoint
        .route(
            "/a/{tenant}/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        // pushed_authorization_request_endpoint
        .route(
            "/a/{tenant}/par",
            post(par::par).route_layer(middleware::from_fn_with_state(
                state.clone(),
                limits::token_endpoints,
            )),
        )
        // Service endpoints (SPEC): liveness and readiness, not advertised in metadata.
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(prometheus::metrics))
        // The admin API (SPEC "Admin API"); not in discovery, never answers CORS.
        .merge(admin::routes())
        // The origin-root well-known paths fall through to 404: there is no default tenant.
        .fallback(not_found)
        .with_state(state.clone())
        // Every request's middleware, outermost first: one layer, so a request pays for one
        // boxed service rather than one per middleware.
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(state, around_every_request))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(SetResponseHeaderLayer::if_not_present(
                    HeaderName::from_static("x-content-type-options"),
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                ))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        );
    if !sentry {
        return router;
    }
    // A hub per request, and the request (scrubbed in `reporting`) on its events.
    router
        .layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction())
        .layer(sentry::integrations::tower::NewSentryLayer::<Request>::new_from_top())
}

/// What every request gets around its handler: an id (echoed on the answer), the client's
/// address, a count and latency by route, and a sampled audit row if a limit refused it. One
/// middleware, not four: a `from_fn` layer clones the whole stack inside it for every request.
async fn around_every_request(
    State(state): State<AppState>,
    mut request: Request,
    next: middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let id = request_id::assign(&mut request);
    client_ip::attribute(&mut request, &state.config.trusted_proxies);
    let requester = limits::Requester::of(&request);
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    crate::monitoring::request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        &method,
        response.status(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(policy) = limits::refusing_policy(&response) {
        limits::audit_refusal(&state, requester, policy).await;
    }
    request_id::echo(&mut response, id);
    response
}

/// The tenant of a request: the path segment where its route template says `{tenant}`.
pub(super) fn route_tenant(request: &Request) -> &str {
    tenant_segment(request.extensions().get(), request.uri().path())
}

/// The segment of `path` where `route` (its template) says `{tenant}`; empty if none.
pub(super) fn tenant_segment<'a>(route: Option<&MatchedPath>, path: &'a str) -> &'a str {
    let Some(route) = route else {
        return "";
    };
    route
        .as_str()
        .split('/')
        .position(|part| part == "{tenant}")
        .and_then(|at| path.split('/').nth(at))
        .unwrap_or("")
}

/// The span of one request: method, route template, request id and tenant. Never the query
/// string, which can carry codes and tokens.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .extensions()
        .get::<request_id::RequestId>()
        .map_or("", request_id::RequestId::as_str);
    let tenant = route_tenant(request);
    tracing::info_span!("request", method = %request.method(), route, request_id, tenant)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "message": "no such route" })),
    )
        .into_response()
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    let body = Json(json!({ "error": "server_error", "message": "internal error" }));
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
