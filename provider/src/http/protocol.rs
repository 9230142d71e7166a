//! Extractors shared by the protocol endpoints: the tenant named in the path, and a
//! form-encoded body, each rejecting in the OAuth error format.

use axum::body::Bytes;
use axum::{
    extract::{FromRequest, FromRequestParts, RawPathParams, Request},
    http::{Method, header, request::Parts},
};
use shared::TenantId;

use crate::{error::OAuthError, oauth::params::Params, state::AppState, store::tenants::Tenant};

/// The tenant whose protocol endpoint was called, with its issuer.
#[derive(Clone, Debug)]
pub(super) struct IssuerTenant {
    pub(super) tenant: Tenant,
    pub(super) issuer: String,
}

impl FromRequestParts<AppState> for IssuerTenant {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, OAuthError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| OAuthError::not_found())?;
        let raw = params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value)
            .ok_or_else(OAuthError::not_found)?;
        let id = TenantId::parse(raw).map_err(|_| OAuthError::not_found())?;
        let tenant = state.tenant(&id).await?.ok_or_else(OAuthError::not_found)?;
        let issuer = tenant.id.issuer(&state.config.public_url);
        Ok(Self { tenant, issuer })
    }
}

/// An `application/x-www-form-urlencoded` body (RFC 6749 appendix B).
#[derive(Debug)]
pub(super) struct FormBody(pub(super) Params);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, OAuthError> {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "send parameters as application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                OAuthError::new(rejection.status(), "invalid_request", rejection.body_text())
            })?;
        Ok(Self(Params::parse(&body)))
    }
}

/// The parameters of an endpoint that takes them by GET (query string) or POST (form body), and
/// whether they were posted.
#[derive(Debug)]
pub(super) struct QueryOrForm {
    pub(super) params: Params,
    pub(super) posted: bool,
}

impl<S: Send + Sync> FromRequest<S> for QueryOrForm {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, OAuthError> {
        if request.method() != Method::POST {
            let query = request.uri().query().unwrap_or_default();
            return Ok(Self {
                params: Params::parse(query.as_bytes()),
                posted: false,
            });
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                OAuthError::new(rejection.status(), "invalid_request", rejection.body_text())
            })?;
        Ok(Self {
            params: Params::parse(&body),
            posted: true,
        })
    }
}
