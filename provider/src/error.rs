//! Errors of the admin surface: `{"error": "<code>", "message": "<text>"}` with the right status.
//! Extractor rejections are turned into the same shape, so malformed input is a 4xx in the admin
//! format, never axum's plain text. (The OAuth and page surfaces get their own types.)

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    keys::{KeyError, lifecycle::LifecycleError},
    store::StoreError,
};

#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More headers for the response (rate-limit refusals).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid x-admin-secret header is required",
        )
    }

    /// A failure the caller cannot fix; the cause is logged here, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "message": self.message }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::not_found("resource"),
            StoreError::Conflict => Self::conflict("conflict", "the resource already exists"),
            StoreError::Busy | StoreError::Unavailable(_) => {
                tracing::warn!(error = %err, "database not available");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the database is busy or unavailable; retry shortly",
                )
            }
            StoreError::Corrupt(_) | StoreError::Other(_) => Self::internal(&err),
        }
    }
}

impl From<KeyError> for AdminError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Store(err) => err.into(),
            KeyError::Lifecycle(LifecycleError::UnknownKey(kid)) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("key {kid} not found"),
            ),
            KeyError::Lifecycle(LifecycleError::NotPublishedLongEnough { .. }) => {
                Self::conflict("key_not_published_long_enough", err.to_string())
            }
            KeyError::Lifecycle(LifecycleError::NotStaged { .. }) => {
                Self::conflict("key_not_staged", err.to_string())
            }
            KeyError::Lifecycle(LifecycleError::AlreadyRevoked(_)) => {
                Self::conflict("key_already_revoked", err.to_string())
            }
            KeyError::NoActiveKey | KeyError::Material(_) => Self::internal(&err),
        }
    }
}

impl From<JsonRejection> for AdminError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => Self::bad_request("invalid_json", e.body_text()),
            JsonRejection::JsonDataError(e) => Self::bad_request("invalid_request", e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            ),
            other => Self::bad_request("invalid_request", other.body_text()),
        }
    }
}

impl From<QueryRejection> for AdminError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_request", rejection.body_text())
    }
}

impl From<PathRejection> for AdminError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_request", rejection.body_text())
    }
}

/// Errors of the OAuth surface: RFC 6749 §5.2 JSON (`{"error", "error_description"}`) with the
/// RFC's status, `no-store`, and `WWW-Authenticate` on 401.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub www_authenticate: Option<String>,
    /// A fresh DPoP nonce for the client to use (RFC 9449 §8).
    pub dpop_nonce: Option<String>,
    /// More headers for the response (rate-limit refusals).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
            dpop_nonce: None,
            headers: Vec::new(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 `invalid_client`; `challenge` is the scheme the client tried (`Basic` by default).
    pub fn invalid_client(description: impl Into<String>, realm: &str) -> Self {
        Self {
            www_authenticate: Some(format!("Basic realm=\"{realm}\"")),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }

    /// RFC 6750 §3.1: a bearer token that is missing, expired, revoked or malformed.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            www_authenticate: Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{description}\""
            )),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such tenant")
    }

    pub fn server_error(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service is busy or a dependency is down; retry shortly",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.error, "error_description": self.description }));
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self
            .www_authenticate
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            headers.insert("dpop-nonce", nonce);
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<StoreError> for OAuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Busy | StoreError::Unavailable(_) => {
                tracing::warn!(error = %err, "database not available");
                Self::unavailable()
            }
            _ => Self::server_error(&err),
        }
    }
}

impl From<KeyError> for OAuthError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Store(err) => err.into(),
            _ => Self::server_error(&err),
        }
    }
}
