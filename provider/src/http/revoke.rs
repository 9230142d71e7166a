//! Token revocation (RFC 7009). A client may revoke only its own tokens; anything else, including
//! an unknown or already invalid token, is answered 200 with nothing done (§2.2).

use axum::{extract::State, http::HeaderMap, response::Response};
use serde_json::json;

use super::{
    client_auth,
    protocol::{FormBody, IssuerTenant},
    refresh,
    token::{no_store, single},
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    error::OAuthError,
    state::AppState,
    store::{self, revoked_tokens},
    tokens::{self, Inactive},
};

pub(super) async fn revoke(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    meta: RequestMeta,
    headers: HeaderMap,
    FormBody(params): FormBody,
) -> Result<Response, OAuthError> {
    let client =
        client_auth::authenticate(&state, &tenant.tenant, &tenant.issuer, &headers, &params)
            .await?;
    let token = single(&params, "token")?
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let id = &tenant.tenant.id;
    // A refresh token revokes its whole family, with the access tokens it produced.
    if let Some(presented) = refresh::lookup(&state, id, token).await? {
        if presented.family.client_id == client.client_id {
            refresh::revoke(&state, id, &presented.family, &meta).await?;
        }
        return Ok(no_store(json!({})));
    }
    match tokens::check(&state, id, &tenant.issuer, token).await {
        Ok(t) if t.client_id == client.client_id => {
            let mut tx = state.store.begin().await?;
            revoked_tokens::insert(&mut *tx, id, &t.jti, t.exp, state.clock.unix()).await?;
            let details = json!({ "jti": t.jti, "token_type": "access_token" });
            let event = AuditEvent::new("token.revoked")
                .client(&client.client_id)
                .details(details);
            audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), &meta, event).await?;
            store::commit(tx).await?;
        }
        Err(Inactive::Unavailable(err)) => return Err(err.into()),
        _ => {}
    }
    Ok(no_store(json!({})))
}
