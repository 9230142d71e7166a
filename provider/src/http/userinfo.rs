//! The UserInfo endpoint (OpenID Connect Core §5.3) by GET or POST, with the access token in the
//! `Authorization: Bearer` header only (RFC 6750 §2.1); a token in the query or body is refused.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::Response,
};
use serde_json::json;

use super::{
    dpop::{self, At},
    protocol::IssuerTenant,
    token::no_store,
};
use crate::{
    error::OAuthError,
    oauth::params::Params,
    state::AppState,
    store::users::{self, UserStatus},
    tokens,
};

/// The access token of the `Authorization` header, and whether it came with the DPoP scheme.
fn bearer(headers: &HeaderMap) -> Option<(&str, bool)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    (dpop || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| (token.trim(), dpop))
        .filter(|(t, _)| !t.is_empty())
}

pub(super) async fn userinfo(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let in_query =
        Params::parse(uri.query().unwrap_or_default().as_bytes()).contains("access_token");
    if in_query || Params::parse(&body).contains("access_token") {
        return Err(OAuthError::invalid_request(
            "send the access token in the Authorization header, never in the query or body",
        ));
    }
    let Some((token, dpop_scheme)) = bearer(&headers) else {
        let mut err = OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a bearer token is required",
        );
        err.www_authenticate = Some(format!("Bearer realm=\"{}\"", tenant.issuer));
        return Err(err);
    };
    let raw_token = token;
    let token = tokens::check(&state, &tenant.tenant.id, &tenant.issuer, token)
        .await
        .map_err(tokens::Inactive::into_oauth_error)?;
    // RFC 9449 §7: a DPoP-bound token needs the DPoP scheme and a proof by its key.
    if let Some(jkt) = token.jkt() {
        let url = format!(
            "{}{}",
            tenant.issuer,
            crate::oauth::metadata::paths::USERINFO
        );
        let id = &tenant.tenant.id;
        let proof = dpop::proof(
            &state,
            id,
            &headers,
            method.as_str(),
            &url,
            Some(raw_token),
            At::Resource,
        )
        .await?;
        if !dpop_scheme || proof.is_none_or(|p| p.jkt != jkt) {
            return Err(OAuthError::invalid_token(
                "the token is bound to a DPoP key this request does not prove",
            ));
        }
    } else if dpop_scheme {
        return Err(OAuthError::invalid_token(
            "the token is not bound to a DPoP key",
        ));
    }
    if !token.has_scope("openid") {
        let mut err = OAuthError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the openid scope is required",
        );
        err.www_authenticate = Some("Bearer error=\"insufficient_scope\", scope=\"openid\"".into());
        return Err(err);
    }
    let user = users::get(state.store.reader(), &tenant.tenant.id, &token.sub).await?;
    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
        return Err(OAuthError::invalid_token("the user is unknown or disabled"));
    };
    let mut claims = json!({ "sub": user.user_id });
    if token.has_scope("email") {
        claims["email"] = user.email.into();
    }
    if token.has_scope("profile")
        && let Some(name) = user.name
    {
        claims["name"] = name.into();
    }
    let mut response = no_store(claims);
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("authorization"));
    Ok(response)
}
