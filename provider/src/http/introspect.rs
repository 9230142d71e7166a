//! Token introspection (RFC 7662) for confidential clients such as resource servers. Anything
//! that is not a live token of this tenant is `{"active": false}`.

use axum::{extract::State, http::HeaderMap, response::Response};
use serde_json::json;

use super::{
    client_auth,
    protocol::{FormBody, IssuerTenant},
    refresh,
    token::{no_store, single},
};
use crate::{
    error::OAuthError,
    keys::SignatureError,
    state::AppState,
    tokens::{self, Inactive},
};

pub(super) async fn introspect(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    FormBody(params): FormBody,
) -> Result<Response, OAuthError> {
    let client =
        client_auth::authenticate(&state, &tenant.tenant, &tenant.issuer, &headers, &params)
            .await?;
    if client.metadata.is_public() {
        return Err(OAuthError::invalid_client(
            "public clients cannot introspect",
            &tenant.issuer,
        ));
    }
    let token = single(&params, "token")?
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // Refresh tokens are base64url and never hold a dot; a JWT access token holds two, and
    // needs no database read to be told apart.
    let found = if token.contains('.') {
        None
    } else {
        refresh::lookup(&state, &tenant.tenant.id, token).await?
    };
    if let Some(presented) = found {
        if !refresh::is_live(&state, &presented) {
            return Ok(no_store(json!({ "active": false })));
        }
        let family = &presented.family;
        let client_active = state
            .client(&tenant.tenant.id, &family.client_id)
            .await?
            .is_some_and(|c| c.is_active());
        if !client_active {
            return Ok(no_store(json!({ "active": false })));
        }
        return Ok(no_store(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": family.client_id,
            "sub": family.user_id,
            "scope": family.scope,
            "iss": tenant.issuer,
            "exp": presented.token.expires_at.min(family.expires_at),
        })));
    }
    match tokens::check(&state, &tenant.tenant.id, &tenant.issuer, token).await {
        Ok(t) => {
            let mut body = json!({
                "active": true,
                "token_type": "Bearer",
                "client_id": t.client_id,
                "sub": t.sub,
                "aud": t.aud,
                "iss": t.iss,
                "exp": t.exp,
                "iat": t.iat,
                "jti": t.jti,
            });
            if let Some(scope) = t.scope {
                body["scope"] = scope.into();
            }
            if let Some(cnf) = t.cnf {
                body["cnf"] = cnf;
                body["token_type"] = "DPoP".into();
            }
            Ok(no_store(body))
        }
        Err(Inactive::Unavailable(err)) => Err(err.into()),
        Err(Inactive::Signature(SignatureError::Unavailable)) => Err(OAuthError::unavailable()),
        Err(_) => Ok(no_store(json!({ "active": false }))),
    }
}
