//! Refresh tokens (RFC 6749 §6, RFC 9700 §4.14): opaque, 256 random bits, stored as keyed
//! digests, rotated at every use. A rotated token presented again revokes its whole family and
//! the access tokens it produced, unless it is the immediate predecessor retried within the
//! grace window, which gets the same response again and mints nothing.

use axum::response::Response;
use serde_json::{Value, json};
use shared::TenantId;

use super::{protocol::IssuerTenant, token::no_store, token::single};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    crypto::{SecretKind, random_b64, random_secret},
    error::OAuthError,
    oauth::{
        access_token::NewAccessToken, client_metadata::GRANT_REFRESH_TOKEN, params::Params,
        resource,
    },
    state::AppState,
    store::{self, clients::Client, refresh},
    tokens,
};

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_grant",
        description,
    )
}

fn response_aad(tenant: &TenantId, digest: &[u8]) -> Vec<u8> {
    let hex = crate::crypto::hex(digest);
    format!("refresh-response:{tenant}:{hex}").into_bytes()
}

/// What a new family needs from the grant that starts it.
pub(super) struct Grant<'a> {
    pub(super) client: &'a Client,
    pub(super) user_id: &'a str,
    pub(super) scope: &'a [String],
    pub(super) resources: &'a [String],
    pub(super) auth_time: i64,
    pub(super) access_jti: &'a str,
    pub(super) access_exp: i64,
    pub(super) session_digest: Option<&'a [u8]>,
    /// The DPoP key the grant's tokens are bound to, if any.
    pub(super) dpop_jkt: Option<&'a str>,
}

/// The family a grant starts, when the client may refresh, with its first refresh token; it
/// is written with the grant's other rows.
pub(super) fn new_family(
    state: &AppState,
    tenant: &IssuerTenant,
    grant: Grant<'_>,
) -> Option<(refresh::NewFamily, String)> {
    let offline = grant.scope.iter().any(|s| s == "offline_access");
    if !grant.client.metadata.allows_grant(GRANT_REFRESH_TOKEN)
        || (tenant.tenant.require_offline_access && !offline)
    {
        return None;
    }
    let now = state.clock.unix();
    let family = refresh::Family {
        id: random_b64(16),
        client_id: grant.client.client_id.clone(),
        user_id: grant.user_id.to_owned(),
        scope: grant.scope.join(" "),
        resources: Value::from(grant.resources.to_vec()).to_string(),
        auth_time: grant.auth_time,
        expires_at: now + tenant.tenant.refresh_absolute_secs,
        revoked_at: None,
        session_digest: grant.session_digest.map(<[u8]>::to_vec),
        // A public client has no credential, so its refresh tokens are bound to the DPoP key.
        dpop_jkt: grant
            .dpop_jkt
            .filter(|_| grant.client.metadata.is_public())
            .map(str::to_owned),
    };
    let token = random_secret();
    let new = refresh::NewFamily {
        token_digest: state.digester.digest(SecretKind::RefreshToken, &token),
        token_expires_at: (now + tenant.tenant.refresh_idle_secs).min(family.expires_at),
        access_jti: grant.access_jti.to_owned(),
        access_expires_at: grant.access_exp,
        family,
        now,
    };
    Some((new, token))
}

/// The `refresh_token` grant.
pub(super) async fn refresh_grant(
    state: &AppState,
    tenant: &IssuerTenant,
    client: &Client,
    params: &Params,
    meta: &RequestMeta,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let presented = single(params, "refresh_token")?
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let id = &tenant.tenant.id;
    let digest = state.digester.digest(SecretKind::RefreshToken, presented);
    let now = state.clock.unix();
    let found = refresh::get_presented(state.store.reader(), id, &digest).await?;
    // Another client's token is refused like an unknown one.
    let Some(refresh::Presented {
        token,
        family,
        user_active,
    }) = found.filter(|p| p.family.revoked_at.is_none() && p.family.client_id == client.client_id)
    else {
        return Err(invalid_grant("the refresh token is not valid"));
    };
    if family.dpop_jkt.is_some() && family.dpop_jkt.as_deref() != jkt {
        return Err(invalid_grant(
            "the refresh token is bound to another DPoP key",
        ));
    }
    if token.rotated_at.is_some() {
        return retry_or_reuse(state, tenant, client, &family, &token, &digest, meta).await;
    }
    if now >= token.expires_at || now >= family.expires_at {
        return Err(invalid_grant("the refresh token expired"));
    }
    let granted: Vec<String> = family.scope.split_whitespace().map(str::to_owned).collect();
    let scope: Vec<String> = match single(params, "scope")? {
        Some(requested) => {
            let requested: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
            if let Some(extra) = requested.iter().find(|s| !granted.contains(s)) {
                return Err(OAuthError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    format!("scope {extra} was not granted"),
                ));
            }
            requested
        }
        None => granted,
    };
    let family_resources: Vec<String> = serde_json::from_str(&family.resources).unwrap_or_default();
    let requested = resource::check(&params.all("resource")).map_err(|why| {
        OAuthError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_target", why)
    })?;
    let resources = resource::narrow(requested, &family_resources).map_err(|why| {
        OAuthError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_target", why)
    })?;
    if !user_active {
        return Err(invalid_grant("the user can no longer sign in"));
    }

    // Mint first, then rotate: only the use that wins the conditional update keeps its tokens.
    let jti = tokens::new_jti();
    let ttl = client
        .metadata
        .access_token_ttl
        .unwrap_or(tenant.tenant.access_token_ttl);
    let audience = if resources.is_empty() {
        vec![tenant.issuer.clone()]
    } else {
        resources
    };
    let new = NewAccessToken {
        issuer: &tenant.issuer,
        subject: &family.user_id,
        client_id: &client.client_id,
        audience: &audience,
        scope: &scope,
        issued_at: now,
        ttl,
        jti: &jti,
        cnf_jkt: jkt,
    };
    let access_token = tokens::issue(state, id, new).await?;
    let successor = random_secret();
    let mut body = json!({
        "access_token": access_token,
        "token_type": super::token::token_type(jkt),
        "expires_in": ttl,
        "refresh_token": successor,
    });
    if !scope.is_empty() {
        body["scope"] = scope.join(" ").into();
    }
    let sealed = state
        .keyring
        .seal(body.to_string().as_bytes(), &response_aad(id, &digest));

    let generation = token.generation + 1;
    let details = json!({ "grant_type": GRANT_REFRESH_TOKEN, "jti": jti, "family": family.id, "generation": generation });
    let event = AuditEvent::new("token.refreshed")
        .client(&client.client_id)
        .user(&family.user_id)
        .details(details);
    let rotation = refresh::Rotation {
        tenant: id.clone(),
        digest: digest.clone(),
        now,
        sealed_response: sealed,
        family_id: family.id.clone(),
        successor_digest: state.digester.digest(SecretKind::RefreshToken, &successor),
        successor_generation: generation,
        successor_expires_at: (now + tenant.tenant.refresh_idle_secs).min(family.expires_at),
        access_jti: jti,
        access_expires_at: now + ttl,
        audit: audit::row(state.clock.as_ref(), id.as_str(), meta, event),
    };
    if !state.store.write(rotation).await? {
        // Another use of this token rotated it first: answer as its retry would be answered.
        let Some(rotated) = refresh::get_token(state.store.reader(), id, &digest).await? else {
            return Err(invalid_grant("the refresh token is not valid"));
        };
        return retry_or_reuse(state, tenant, client, &family, &rotated, &digest, meta).await;
    }
    crate::monitoring::token_issued(GRANT_REFRESH_TOKEN);
    Ok(no_store(body))
}

/// A rotated token presented again: within the grace window, the immediate predecessor gets
/// the response its rotation produced; anything else is reuse, which revokes the family.
async fn retry_or_reuse(
    state: &AppState,
    tenant: &IssuerTenant,
    client: &Client,
    family: &refresh::Family,
    token: &refresh::RefreshToken,
    digest: &[u8],
    meta: &RequestMeta,
) -> Result<Response, OAuthError> {
    let id = &tenant.tenant.id;
    let now = state.clock.unix();
    let grace = client
        .metadata
        .refresh_grace_secs
        .unwrap_or(tenant.tenant.refresh_grace_secs);
    let in_grace = token.rotated_at.is_some_and(|at| now - at < grace);
    // Only the immediate predecessor of the newest token is retried: its successor must not
    // have been rotated itself.
    let retried = match (&token.successor_digest, in_grace) {
        (Some(successor), true) => {
            refresh::newest_issued_response(state.store.reader(), id, successor).await?
        }
        _ => None,
    };
    if let Some(sealed) = &retried
        && let Ok(json) = state.keyring.open(sealed, &response_aad(id, digest))
        && let Ok(body) = serde_json::from_slice::<Value>(&json)
    {
        return Ok(no_store(body));
    }
    let mut tx = state.store.begin().await?;
    refresh::revoke_family(&mut tx, id, &family.id, "reuse", now).await?;
    let details = json!({ "family": family.id, "generation": token.generation });
    let event = AuditEvent::new("token.reuse_detected")
        .client(&client.client_id)
        .user(&family.user_id)
        .details(details);
    audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
    store::commit(tx).await?;
    tracing::warn!(tenant = %id, client_id = %client.client_id, "refresh token reuse: family revoked");
    crate::monitoring::reuse_detected();
    crate::reporting::security_event(
        "refresh token reuse detected; family revoked",
        &[
            ("event", "token.reuse_detected"),
            ("tenant", id.as_str()),
            ("client_id", &client.client_id),
        ],
    );
    Err(invalid_grant("the refresh token was already used"))
}

/// A presented refresh token with its family, when the family is still alive.
pub(super) async fn lookup(
    state: &AppState,
    tenant: &TenantId,
    presented: &str,
) -> Result<Option<refresh::Presented>, store::StoreError> {
    let digest = state.digester.digest(SecretKind::RefreshToken, presented);
    let found = refresh::get_presented(state.store.reader(), tenant, &digest).await?;
    Ok(found.filter(|p| p.family.revoked_at.is_none()))
}

/// Whether a refresh token can be used right now (its user may still sign in).
pub(super) fn is_live(state: &AppState, presented: &refresh::Presented) -> bool {
    let now = state.clock.unix();
    let refresh::Presented {
        token,
        family,
        user_active,
    } = presented;
    *user_active && token.rotated_at.is_none() && now < token.expires_at && now < family.expires_at
}

/// Revokes a family at a client's request (RFC 7009), audited.
pub(super) async fn revoke(
    state: &AppState,
    tenant: &TenantId,
    family: &refresh::Family,
    meta: &RequestMeta,
) -> Result<(), store::StoreError> {
    let mut tx = state.store.begin().await?;
    refresh::revoke_family(&mut tx, tenant, &family.id, "revoked", state.clock.unix()).await?;
    let details = json!({ "token_type": "refresh_token", "family": family.id });
    let event = AuditEvent::new("token.revoked")
        .client(&family.client_id)
        .user(&family.user_id)
        .details(details);
    audit::record(&mut *tx, state.clock.as_ref(), tenant.as_str(), meta, event).await?;
    store::commit(tx).await
}
