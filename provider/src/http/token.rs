//! The token endpoint (RFC 6749 §3.2): client authentication, an optional DPoP proof (RFC 9449),
//! then the grant: `client_credentials` (§4.4), `authorization_code` (§4.1.3) here, and
//! `refresh_token` in `refresh`. RFC 8707 resources become audiences.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    client_auth,
    dpop::{self, At},
    protocol::{FormBody, IssuerTenant},
    refresh,
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    crypto::SecretKind,
    error::OAuthError,
    oauth::{
        access_token::NewAccessToken,
        authorize::pkce_matches,
        client_metadata::{
            GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
        },
        id_token::{self, NewIdToken},
        metadata::paths,
        params::{Params, Repeated},
        resource, scope,
    },
    state::AppState,
    store::{self, clients::Client, revoked_tokens, sign_in},
    tokens,
};

/// A JSON answer that no cache may keep (RFC 6749 §5.1).
pub(super) fn no_store(body: Value) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub(super) fn single<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, OAuthError> {
    params.single(name).map_err(|Repeated(name)| {
        OAuthError::invalid_request(format!("parameter {name} is repeated"))
    })
}

pub(super) async fn token(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    meta: RequestMeta,
    headers: HeaderMap,
    FormBody(params): FormBody,
) -> Result<Response, OAuthError> {
    let grant_type = single(&params, "grant_type")?
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?
        .to_owned();
    let client =
        client_auth::authenticate(&state, &tenant.tenant, &tenant.issuer, &headers, &params)
            .await?;
    if tenant.tenant.issuance_paused {
        return Err(OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "token issuance is paused for this tenant",
        ));
    }
    // RFC 9449: a DPoP proof binds the tokens issued here to its key.
    let token_url = format!("{}{}", tenant.issuer, paths::TOKEN);
    let id = &tenant.tenant.id;
    let proof = dpop::proof(
        &state,
        id,
        &headers,
        "POST",
        &token_url,
        None,
        At::TokenEndpoint,
    )
    .await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let mut response = match grant_type.as_str() {
        GRANT_CLIENT_CREDENTIALS => {
            client_credentials(&state, &tenant, &client, &params, &meta, jkt).await
        }
        GRANT_AUTHORIZATION_CODE => {
            authorization_code(&state, &tenant, &client, &params, &meta, jkt).await
        }
        GRANT_REFRESH_TOKEN => {
            refresh::refresh_grant(&state, &tenant, &client, &params, &meta, jkt).await
        }
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant type {other} is not supported"),
        )),
    }
    .map_err(|mut err| {
        if proof.is_some() {
            err.dpop_nonce = Some(dpop::current_nonce(&state, id));
        }
        err
    })?;
    if proof.is_some()
        && let Ok(nonce) = HeaderValue::from_str(&dpop::current_nonce(&state, id))
    {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    Ok(response)
}

/// `token_type` of an access token (RFC 9449 §5).
pub(super) fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

async fn client_credentials(
    state: &AppState,
    tenant: &IssuerTenant,
    client: &Client,
    params: &Params,
    meta: &RequestMeta,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    if !client.metadata.allows_grant(GRANT_CLIENT_CREDENTIALS) || client.metadata.is_public() {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use the client_credentials grant",
        ));
    }
    let granted = scope::grant(single(params, "scope")?, client.metadata.scope.as_deref())
        .map_err(|token| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("scope {token} is not allowed"),
            )
        })?;
    let resources = resource::check(&params.all("resource"))
        .map_err(|why| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", why))?;
    // Without a resource indicator the token is for this issuer's own endpoints.
    let audience = if resources.is_empty() {
        vec![tenant.issuer.clone()]
    } else {
        resources
    };

    let jti = tokens::new_jti();
    let ttl = client
        .metadata
        .access_token_ttl
        .unwrap_or(tenant.tenant.access_token_ttl);
    let new = NewAccessToken {
        issuer: &tenant.issuer,
        subject: &client.client_id,
        client_id: &client.client_id,
        audience: &audience,
        scope: &granted,
        issued_at: state.clock.unix(),
        ttl,
        jti: &jti,
        cnf_jkt: jkt,
    };
    let access_token = tokens::issue(state, &tenant.tenant.id, new).await?;

    let details = json!({ "grant_type": GRANT_CLIENT_CREDENTIALS, "jti": jti, "scope": granted.join(" "), "aud": audience });
    let event = AuditEvent::new("token.issued")
        .client(&client.client_id)
        .details(details);
    audit::record_alone(
        &state.store,
        state.clock.as_ref(),
        tenant.tenant.id.as_str(),
        meta,
        event,
    )
    .await?;

    crate::monitoring::token_issued(GRANT_CLIENT_CREDENTIALS);
    let mut body =
        json!({ "access_token": access_token, "token_type": token_type(jkt), "expires_in": ttl });
    if !granted.is_empty() {
        body["scope"] = granted.join(" ").into();
    }
    Ok(no_store(body))
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.6: a code is redeemed once, by the client it was issued to,
/// with the same redirect URI and the verifier of its challenge. A code presented again revokes
/// the access token its first redemption produced (RFC 9700 §4.5.3).
async fn authorization_code(
    state: &AppState,
    tenant: &IssuerTenant,
    client: &Client,
    params: &Params,
    meta: &RequestMeta,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    if !client.metadata.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use the authorization code grant",
        ));
    }
    let code =
        single(params, "code")?.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = single(params, "redirect_uri")?
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = single(params, "code_verifier")?;
    let id = &tenant.tenant.id;
    let digest = state.digester.digest(SecretKind::AuthorizationCode, code);
    let now = state.clock.unix();
    let presented = sign_in::get_presented_code(state.store.reader(), id, &digest).await?;
    let Some(sign_in::Presented {
        code: stored,
        holder,
    }) = presented.filter(|p| p.code.client_id == client.client_id)
    else {
        return Err(invalid_grant("the code is not valid"));
    };
    if stored.redeemed_at.is_some() {
        return Err(replayed(state, tenant, client, &stored, meta).await);
    }
    if stored.expires_at <= now || stored.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "the code expired or the redirect_uri differs",
        ));
    }
    let pkce_ok = match (&stored.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => pkce_matches(verifier, challenge),
        (None, None) => true,
        _ => false,
    };
    if !pkce_ok {
        return Err(invalid_grant("the code_verifier does not match"));
    }
    let Some(holder) = holder else {
        return Err(invalid_grant("the user can no longer sign in"));
    };

    // RFC 8707 §2.2: the token request may narrow the audience to granted resources.
    let stored_resources: Vec<String> = serde_json::from_str(&stored.resources).unwrap_or_default();
    let requested = resource::check(&params.all("resource"))
        .map_err(|why| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", why))?;
    let resources = resource::narrow(requested, &stored_resources)
        .map_err(|why| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", why))?;

    let jti = tokens::new_jti();
    let ttl = client
        .metadata
        .access_token_ttl
        .unwrap_or(tenant.tenant.access_token_ttl);
    let scope: Vec<String> = stored.scope.split_whitespace().map(str::to_owned).collect();
    let audience = if resources.is_empty() {
        vec![tenant.issuer.clone()]
    } else {
        resources
    };
    let new = NewAccessToken {
        issuer: &tenant.issuer,
        subject: &stored.user_id,
        client_id: &client.client_id,
        audience: &audience,
        scope: &scope,
        issued_at: now,
        ttl,
        jti: &jti,
        cnf_jkt: jkt,
    };
    // Tokens are signed first and handed out only once the redemption, the refresh family
    // and the audit row are committed together: one durable commit per exchange.
    let access_token = tokens::issue(state, id, new).await?;
    let mut body =
        json!({ "access_token": access_token, "token_type": token_type(jkt), "expires_in": ttl });
    if !scope.is_empty() {
        body["scope"] = scope.join(" ").into();
    }
    if scope.iter().any(|s| s == "openid") {
        let mut user_claims = serde_json::Map::new();
        if scope.iter().any(|s| s == "email") {
            user_claims.insert("email".into(), holder.email.clone().into());
            // The person proved the address by opening the link sent to it.
            user_claims.insert("email_verified".into(), true.into());
        }
        if let (true, Some(name)) = (scope.iter().any(|s| s == "profile"), &holder.name) {
            user_claims.insert("name".into(), name.clone().into());
        }
        let claims = NewIdToken {
            issuer: &tenant.issuer,
            subject: &stored.user_id,
            client_id: &client.client_id,
            issued_at: now,
            ttl: client
                .metadata
                .id_token_ttl
                .unwrap_or(tenant.tenant.id_token_ttl),
            auth_time: Some(stored.auth_time),
            nonce: stored.nonce.as_deref(),
            access_token: Some(&access_token),
            session_id: None,
            alg: state.keys.active_alg(id).await?,
            user_claims,
        }
        .claims();
        body["id_token"] = state.keys.sign(id, claims, id_token::TYP).await?.into();
    }
    let grant = refresh::Grant {
        client,
        user_id: &stored.user_id,
        scope: &scope,
        resources: &stored_resources,
        auth_time: stored.auth_time,
        access_jti: &jti,
        access_exp: now + ttl,
        session_digest: stored.session_digest.as_deref(),
        dpop_jkt: jkt,
    };
    let (family, refresh_token) = refresh::new_family(state, tenant, grant).unzip();
    let details = json!({ "grant_type": GRANT_AUTHORIZATION_CODE, "jti": jti, "scope": scope.join(" "), "aud": audience });
    let event = AuditEvent::new("token.issued")
        .client(&client.client_id)
        .user(&stored.user_id)
        .details(details);
    let redemption = sign_in::Redemption {
        tenant: id.clone(),
        code_digest: digest.clone(),
        access_jti: jti,
        access_expires_at: now + ttl,
        now,
        family,
        audit: audit::row(state.clock.as_ref(), id.as_str(), meta, event),
    };
    if !state.store.write(redemption).await? {
        // Redeemed meanwhile by a concurrent request: nothing of this one is kept.
        let again = sign_in::get_presented_code(state.store.reader(), id, &digest).await?;
        return Err(match again {
            Some(again) => replayed(state, tenant, client, &again.code, meta).await,
            None => invalid_grant("the code is not valid"),
        });
    }
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
    }
    crate::monitoring::token_issued(GRANT_AUTHORIZATION_CODE);
    Ok(no_store(body))
}

/// A code presented after its redemption: revoke what the first redemption issued.
async fn replayed(
    state: &AppState,
    tenant: &IssuerTenant,
    client: &Client,
    stored: &sign_in::Code,
    meta: &RequestMeta,
) -> OAuthError {
    let id = &tenant.tenant.id;
    let revoke = async {
        let mut tx = state.store.begin().await?;
        if let (Some(jti), Some(exp)) = (&stored.access_token_jti, stored.access_token_exp) {
            revoked_tokens::insert(&mut *tx, id, jti, exp, state.clock.unix()).await?;
        }
        let details = json!({ "revoked_jti": stored.access_token_jti });
        let event = AuditEvent::new("token.code_replayed")
            .client(&client.client_id)
            .user(&stored.user_id)
            .details(details);
        audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
        store::commit(tx).await
    };
    if let Err(err) = revoke.await {
        tracing::warn!(error = %err, "could not revoke after a code replay");
    }
    invalid_grant("the code was already used")
}
