//! A protected resource in the MCP style: RFC 9728 metadata naming the tenant as its
//! authorization server, `401` with `WWW-Authenticate: Bearer resource_metadata="…"` when a
//! token is missing or invalid, and `403 insufficient_scope` when it lacks the scope asked for
//! (step-up). Access tokens are RFC 9068 JWTs checked against the tenant's JWKS (fetched again
//! once on an unknown `kid`, so key rotation never breaks it): signature, `typ`, `iss`, `aud`
//! (this resource's URL), `exp`.

use std::{
    sync::{Arc, RwLock},
    time::SystemTime,
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use josekit::{
    jwk::JwkSet,
    jws::{ES256, ES384, EdDSA, RS256},
    jwt::{self, JwtPayload},
};
use serde_json::{Value, json};

/// The scope the example API asks for.
pub const SCOPE: &str = "notes:read";

/// What the resource needs to know.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This resource's identifier: its URL, which tokens must name in `aud`.
    pub resource: String,
    /// The tenant's issuer, `{PUBLIC_URL}/a/{tenant}`.
    pub issuer: String,
    /// Where the tenant publishes its keys.
    pub jwks_uri: String,
}

#[derive(Clone, Debug)]
struct Protected {
    settings: Arc<Settings>,
    keys: Arc<RwLock<Option<JwkSet>>>,
    http: reqwest::Client,
}

/// The metadata route and the protected `/api/notes`, served at the root of `settings.resource`'s
/// origin.
pub fn router(settings: Settings) -> Router {
    let state = Protected {
        settings: Arc::new(settings),
        keys: Arc::default(),
        http: reqwest::Client::new(),
    };
    Router::new()
        .route("/.well-known/oauth-protected-resource", get(metadata))
        .route("/.well-known/oauth-protected-resource/api", get(metadata))
        .route("/api/notes", get(notes))
        .with_state(state)
}

fn metadata_url(settings: &Settings) -> String {
    let origin = url_origin(&settings.resource);
    format!("{origin}/.well-known/oauth-protected-resource/api")
}

fn url_origin(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    url[..host_end].to_owned()
}

/// RFC 9728 §3.2.
async fn metadata(State(state): State<Protected>) -> Json<Value> {
    Json(json!({
        "resource": state.settings.resource,
        "authorization_servers": [state.settings.issuer],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
    }))
}

fn challenge(state: &Protected, status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let mut value = format!(
        "Bearer resource_metadata=\"{}\"",
        metadata_url(&state.settings)
    );
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
        if code == "insufficient_scope" {
            value.push_str(&format!(", scope=\"{SCOPE}\""));
        }
    }
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

async fn notes(State(state): State<Protected>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return challenge(&state, StatusCode::UNAUTHORIZED, None);
    };
    let claims = match verify(&state, token).await {
        Ok(claims) => claims,
        Err(why) => {
            tracing::info!(why, "access token refused");
            let error = Some(("invalid_token", "the access token is not valid here"));
            return challenge(&state, StatusCode::UNAUTHORIZED, error);
        }
    };
    let scopes = claims
        .claim("scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !scopes.split(' ').any(|s| s == SCOPE) {
        let error = Some(("insufficient_scope", "this call needs notes:read"));
        return challenge(&state, StatusCode::FORBIDDEN, error);
    }
    let subject = claims.subject().unwrap_or_default().to_owned();
    Json(json!({ "notes": [], "subject": subject })).into_response()
}

async fn jwks(state: &Protected, refresh: bool) -> Result<JwkSet, String> {
    if !refresh
        && let Ok(keys) = state.keys.read()
        && let Some(keys) = keys.as_ref()
    {
        return Ok(keys.clone());
    }
    let body = state
        .http
        .get(&state.settings.jwks_uri)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let keys = JwkSet::from_bytes(&body).map_err(|e| e.to_string())?;
    if let Ok(mut cached) = state.keys.write() {
        *cached = Some(keys.clone());
    }
    Ok(keys)
}

async fn verify(state: &Protected, token: &str) -> Result<JwtPayload, String> {
    let header = jwt::decode_header(token).map_err(|e| e.to_string())?;
    if header.claim("typ").and_then(Value::as_str) != Some("at+jwt") {
        return Err("not an RFC 9068 access token".into());
    }
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .ok_or("no kid")?
        .to_owned();
    let alg = header
        .claim("alg")
        .and_then(Value::as_str)
        .ok_or("no alg")?
        .to_owned();
    // An unknown kid may be a key the tenant just activated: fetch the set again, once.
    let mut keys = jwks(state, false).await?;
    if keys.get(&kid).is_empty() {
        keys = jwks(state, true).await?;
    }
    let jwk = keys
        .get(&kid)
        .first()
        .map(|k| (*k).clone())
        .ok_or("unknown kid")?;
    let (payload, _) = match alg.as_str() {
        "ES256" => jwt::decode_with_verifier(
            token,
            &ES256.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?,
        ),
        "ES384" => jwt::decode_with_verifier(
            token,
            &ES384.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?,
        ),
        "RS256" => jwt::decode_with_verifier(
            token,
            &RS256.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?,
        ),
        "EdDSA" => jwt::decode_with_verifier(
            token,
            &EdDSA.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("alg {other} is not accepted")),
    }
    .map_err(|e| e.to_string())?;
    if payload.issuer() != Some(state.settings.issuer.as_str()) {
        return Err("wrong issuer".into());
    }
    let audience = payload.audience().unwrap_or_default();
    if !audience.iter().any(|a| *a == state.settings.resource) {
        return Err("not meant for this resource".into());
    }
    #[allow(clippy::disallowed_methods)] // the example has no clock to inject
    let now = SystemTime::now();
    if payload.expires_at().is_none_or(|exp| exp <= now) {
        return Err("expired".into());
    }
    Ok(payload)
}
