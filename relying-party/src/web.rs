//! The web app: a home page, sign-in (`/login` → provider → `/callback`), a profile page with
//! the ID token's claims, a call to the protected API with the access token, refresh (a
//! minute before expiry, or on request) and RP-initiated logout. The session is a
//! tower-sessions cookie; its record (in memory: this is an example) holds the tokens, which
//! never reach the browser. Every page carries a nonce-based Content-Security-Policy.

use std::sync::Arc;

use askama::Template;
use axum::{
    Form, Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer, cookie::SameSite};

use crate::{
    config::Settings,
    oidc::{Failure, Oidc, Pending, Tokens, now},
};

const PENDING: &str = "pending";
const TOKENS: &str = "tokens";
const CSRF: &str = "csrf";
const API_RESULT: &str = "api_result";
/// Refresh when the access token has less than this left (seconds).
const REFRESH_AHEAD: i64 = 60;

#[derive(Clone, Debug)]
struct App {
    settings: Arc<Settings>,
    oidc: Oidc,
    http: reqwest::Client,
}

/// The web app's routes with their session layer.
pub fn router(settings: Arc<Settings>) -> Router {
    let app = App {
        oidc: Oidc::new(settings.clone()),
        settings: settings.clone(),
        http: reqwest::Client::new(),
    };
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_name(if settings.https() { "__Host-rp" } else { "rp" })
        .with_secure(settings.https())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(8),
        ));
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/profile", get(profile))
        .route("/refresh", post(refresh))
        .route("/call-api", post(call_api))
        .route("/logout", post(logout))
        .layer(sessions)
        .with_state(app)
}

#[derive(Template)]
#[template(path = "relying-party/home.html")]
struct Home<'a> {
    nonce: &'a str,
    issuer: &'a str,
    message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "relying-party/profile.html")]
struct Profile<'a> {
    nonce: &'a str,
    email: &'a str,
    expires_in: i64,
    kid: &'a str,
    claims: Vec<(String, String)>,
    api: Option<String>,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "relying-party/problem.html")]
struct Problem<'a> {
    nonce: &'a str,
    heading: &'a str,
    message: &'a str,
}

/// A page under a CSP whose nonce is `nonce`; forms may post to this app, and the logout
/// redirect after a form post may go to the provider (CSP `form-action` covers it).
fn page(
    settings: &Settings,
    status: StatusCode,
    nonce: &str,
    html: askama::Result<String>,
) -> Response {
    let html = html.unwrap_or_else(|err| {
        tracing::error!(error = %err, "page template failed");
        "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
    });
    let provider = origin(&settings.issuer);
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self' {provider}; \
         frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn problem(app: &App, status: StatusCode, heading: &str, message: &str) -> Response {
    let nonce = random();
    let html = Problem {
        nonce: &nonce,
        heading,
        message,
    }
    .render();
    page(&app.settings, status, &nonce, html)
}

/// What the person sees when the provider cannot be reached, or refused something.
fn failure_page(app: &App, failure: &Failure) -> Response {
    match failure {
        Failure::Unavailable(_) => {
            tracing::error!(%failure, "provider unavailable");
            problem(
                app,
                StatusCode::BAD_GATEWAY,
                "The sign-in service is unavailable",
                "Please try again in a moment.",
            )
        }
        Failure::GrantRefused => problem(
            app,
            StatusCode::UNAUTHORIZED,
            "Please sign in again",
            "Your sign-in has ended.",
        ),
        Failure::Rejected(_) => {
            tracing::warn!(%failure, "sign-in response refused");
            problem(
                app,
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "The answer from the sign-in service did not check out.",
            )
        }
    }
}

fn origin(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| String::new(), |u| u.origin().ascii_serialization())
}

fn random() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

async fn home(State(app): State<App>, session: Session) -> Response {
    if signed_in(&session).await.is_some() {
        return Redirect::to("/profile").into_response();
    }
    let nonce = random();
    let html = Home {
        nonce: &nonce,
        issuer: &app.settings.issuer,
        message: None,
    }
    .render();
    page(&app.settings, StatusCode::OK, &nonce, html)
}

async fn signed_in(session: &Session) -> Option<Tokens> {
    session.get::<Tokens>(TOKENS).await.ok().flatten()
}

async fn login(State(app): State<App>, session: Session) -> Response {
    match app.oidc.authorization_request().await {
        Ok((url, pending)) => match session.insert(PENDING, pending).await {
            Ok(()) => Redirect::to(&url).into_response(),
            Err(err) => session_failure(&app, &err),
        },
        Err(failure) => failure_page(&app, &failure),
    }
}

fn session_failure(app: &App, err: &tower_sessions::session::Error) -> Response {
    tracing::error!(error = %err, "session store failed");
    problem(
        app,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again.",
    )
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(app): State<App>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Response {
    // One use only: a second visit to the same callback URL finds nothing pending.
    let pending: Option<Pending> = session.remove(PENDING).await.ok().flatten();
    let Some(pending) = pending else {
        return problem(
            &app,
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "No sign-in was in progress here. Please start again.",
        );
    };
    if let Some(error) = query.error {
        let message = if error == "access_denied" {
            "You did not allow the sign-in."
        } else {
            "The sign-in service refused the request."
        };
        return problem(&app, StatusCode::BAD_REQUEST, "Sign-in failed", message);
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return problem(
            &app,
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The sign-in response was incomplete.",
        );
    };
    let tokens = match app
        .oidc
        .finish_sign_in(pending, &code, &state, query.iss.as_deref())
        .await
    {
        Ok(tokens) => tokens,
        Err(failure) => return failure_page(&app, &failure),
    };
    // A new session id at sign-in, so an id planted before it is worth nothing after.
    let stored = async {
        session.cycle_id().await?;
        session.insert(TOKENS, tokens).await?;
        session.insert(CSRF, random()).await
    };
    match stored.await {
        Ok(()) => Redirect::to("/profile").into_response(),
        Err(err) => session_failure(&app, &err),
    }
}

/// The signed-in person's tokens, refreshed first when they are about to expire; `Err` is the
/// response to send instead (to the home page, or signed out when the refresh was refused).
async fn current_tokens(
    app: &App,
    session: &Session,
    force_refresh: bool,
) -> Result<Tokens, Response> {
    let Some(tokens) = signed_in(session).await else {
        return Err(Redirect::to("/").into_response());
    };
    if !force_refresh && tokens.expires_at - now() > REFRESH_AHEAD {
        return Ok(tokens);
    }
    match app.oidc.refresh(&tokens).await {
        Ok(fresh) => match session.insert(TOKENS, fresh.clone()).await {
            Ok(()) => Ok(fresh),
            Err(err) => Err(session_failure(app, &err)),
        },
        Err(Failure::GrantRefused) => {
            // Revoked, expired or replayed: the sign-in is over here too.
            let _ = session.flush().await;
            Err(signed_out(
                app,
                "Your session has ended. Please sign in again.",
            ))
        }
        Err(failure) => Err(failure_page(app, &failure)),
    }
}

fn signed_out(app: &App, message: &str) -> Response {
    let nonce = random();
    let html = Home {
        nonce: &nonce,
        issuer: &app.settings.issuer,
        message: Some(message),
    }
    .render();
    page(&app.settings, StatusCode::OK, &nonce, html)
}

async fn profile(State(app): State<App>, session: Session) -> Response {
    let tokens = match current_tokens(&app, &session, false).await {
        Ok(tokens) => tokens,
        Err(response) => return response,
    };
    let api: Option<String> = session.remove(API_RESULT).await.ok().flatten();
    let csrf: String = session.get(CSRF).await.ok().flatten().unwrap_or_default();
    let claims = tokens
        .claims
        .as_object()
        .map(|object| {
            object
                .iter()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let kid = tokens.id_token_kid().unwrap_or_default();
    let nonce = random();
    let html = Profile {
        kid: &kid,
        nonce: &nonce,
        email: tokens.claims["email"].as_str().unwrap_or("(no email)"),
        expires_in: (tokens.expires_at - now()).max(0),
        claims,
        api,
        csrf: &csrf,
    }
    .render();
    page(&app.settings, StatusCode::OK, &nonce, html)
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The 403 page when the form's token is not this session's; `None` when it is.
async fn forged(app: &App, session: &Session, form: &CsrfForm) -> Option<Response> {
    use subtle::ConstantTimeEq;
    let expected: Option<String> = session.get(CSRF).await.ok().flatten();
    let genuine = expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(form.csrf.as_bytes())));
    (!genuine).then(|| {
        let message = "The form had expired. Please try again.";
        problem(app, StatusCode::FORBIDDEN, "Refused", message)
    })
}

async fn refresh(State(app): State<App>, session: Session, Form(form): Form<CsrfForm>) -> Response {
    if let Some(refused) = forged(&app, &session, &form).await {
        return refused;
    }
    match current_tokens(&app, &session, true).await {
        Ok(_) => Redirect::to("/profile").into_response(),
        Err(response) => response,
    }
}

async fn call_api(
    State(app): State<App>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = forged(&app, &session, &form).await {
        return refused;
    }
    let tokens = match current_tokens(&app, &session, false).await {
        Ok(tokens) => tokens,
        Err(response) => return response,
    };
    let url = format!("{}/notes", app.settings.resource());
    let result = match app
        .http
        .get(&url)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            format!("{status}: {body}")
        }
        Err(err) => format!("the API could not be reached: {err}"),
    };
    match session.insert(API_RESULT, result).await {
        Ok(()) => Redirect::to("/profile").into_response(),
        Err(err) => session_failure(&app, &err),
    }
}

async fn logout(State(app): State<App>, session: Session, Form(form): Form<CsrfForm>) -> Response {
    if let Some(refused) = forged(&app, &session, &form).await {
        return refused;
    }
    let tokens = signed_in(&session).await;
    let _ = session.flush().await;
    let target = match tokens {
        Some(tokens) => app.oidc.logout_url(&tokens).await,
        None => None,
    };
    Redirect::to(target.as_deref().unwrap_or("/")).into_response()
}
