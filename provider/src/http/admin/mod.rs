//! The admin API (SPEC "Admin API"): tenants under `/admin`, everything a tenant owns under
//! `/a/{tenant}/admin`. Authenticated by `x-admin-secret`; errors in the admin format; every
//! response `no-store`, since several carry secrets shown only once.

mod audit;
mod auth;
mod clients;
mod keys;
mod registration;
mod sessions;
pub(crate) mod tenants;
mod users;

use axum::{
    Router,
    extract::{FromRequest, FromRequestParts},
    http::{HeaderValue, header},
    routing::{get, post},
};
use serde::Deserialize;
use tower_http::set_header::SetResponseHeaderLayer;

pub use auth::{RootAdmin, TenantAdmin};
pub(crate) use clients::{create_client, replace_client};

use crate::{error::AdminError, state::AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/tenants", post(tenants::create).get(tenants::list))
        .route(
            "/admin/tenants/{tenant}",
            get(tenants::get).patch(tenants::update),
        )
        .route("/a/{tenant}/admin/secret", post(tenants::rotate_secret))
        .route(
            "/a/{tenant}/admin/clients",
            post(clients::create).get(clients::list),
        )
        .route(
            "/a/{tenant}/admin/clients/{client_id}",
            get(clients::get)
                .put(clients::replace)
                .patch(clients::set_status),
        )
        .route(
            "/a/{tenant}/admin/clients/{client_id}/secret",
            post(clients::rotate_secret),
        )
        .route(
            "/a/{tenant}/admin/users",
            post(users::create).get(users::list),
        )
        .route(
            "/a/{tenant}/admin/users/{user_id}",
            get(users::get).patch(users::update),
        )
        .route("/a/{tenant}/admin/audit", get(audit::list))
        .route(
            "/a/{tenant}/admin/registration",
            post(registration::set_policy),
        )
        .route("/a/{tenant}/admin/audit/export", get(audit::export))
        .route("/a/{tenant}/admin/keys", get(keys::list).post(keys::stage))
        .route("/a/{tenant}/admin/keys/revoke", post(keys::revoke))
        .route("/a/{tenant}/admin/revoke/sessions", post(sessions::revoke))
        .route(
            "/a/{tenant}/admin/keys/{kid}/activate",
            post(keys::activate),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// `Json` whose rejections answer in the admin error format.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AdminError))]
pub struct AdminJson<T>(pub T);

/// `Query` whose rejections answer in the admin error format.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AdminError))]
pub struct AdminQuery<T>(pub T);

/// `Path` whose rejections answer in the admin error format.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AdminError))]
pub struct AdminPath<T>(pub T);

/// A JSON body that may be left out entirely: an empty body is `None`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = AdminError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, AdminError> {
        let has_body = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len != "0")
            || request.headers().contains_key(header::TRANSFER_ENCODING);
        if !has_body {
            return Ok(Self(None));
        }
        let AdminJson(value) = AdminJson::<T>::from_request(request, state).await?;
        Ok(Self(Some(value)))
    }
}

/// Cursor pagination shared by the listings: `?after=<cursor>&limit=<n>`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub after: Option<String>,
    pub limit: Option<i64>,
}

const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;

impl Page {
    pub fn limit(&self) -> Result<i64, AdminError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(AdminError::bad_request(
                "invalid_request",
                format!("limit must be from 1 to {MAX_PAGE}"),
            )),
        }
    }
}

/// A page of items, with the cursor of the next page when one may follow.
pub fn page_body<T: serde::Serialize>(
    items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> serde_json::Value {
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(&cursor))
        .flatten();
    let mut body = serde_json::json!({ "items": items });
    if let Some(next) = next {
        body["next"] = next.into();
    }
    body
}

/// Text fields a person types: trimmed, bounded, and free of control characters.
pub fn check_text(value: &str, field: &str, max_chars: usize) -> Result<String, AdminError> {
    let value = value.trim();
    if value.chars().count() > max_chars || value.chars().any(char::is_control) {
        return Err(AdminError::bad_request(
            "invalid_request",
            format!("{field} must be at most {max_chars} characters of text"),
        ));
    }
    Ok(value.to_owned())
}
