//! The authorization endpoint (RFC 6749 §3.1, OpenID Connect Core §3.1.2), GET and POST. A
//! checked request is stored server-side and the browser goes to the sign-in page; refusals
//! before the client and redirect URI are verified render a page, later ones go back to the
//! client with `iss` (RFC 9207).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{
    pages,
    protocol::{IssuerTenant, QueryOrForm},
};
use crate::{
    crypto::{SecretKind, random_b64},
    oauth::{
        authorize::{self, Policy, Refusal},
        params::Params,
    },
    state::AppState,
    store::{self, pushed, sessions, sign_in},
    tokens,
};

/// How long a person has to finish signing in.
pub(crate) const REQUEST_TTL: i64 = 15 * 60;

pub(super) async fn authorize(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    web: tower_sessions::Session,
    meta: crate::audit::RequestMeta,
    QueryOrForm { params, .. }: QueryOrForm,
) -> Response {
    let (params, pushed) = match pushed_params(&state, &tenant, &params).await {
        Ok(Some(stored)) => (stored, true),
        Ok(None) => (params, false),
        Err(page) => return page,
    };
    let client = match params.single("client_id") {
        Ok(Some(id)) => match state.client(&tenant.tenant.id, id).await {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(error = %err, "client lookup failed");
                return pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is busy. Try again shortly.",
                )
                .into_response();
            }
        },
        _ => None,
    };
    let policy = Policy {
        pkce_required_for_confidential: tenant.tenant.pkce_required_for_confidential,
    };
    let request = match authorize::check(&params, client.as_ref(), policy) {
        Ok(request) => request,
        Err(Refusal::Page(message)) => {
            return pages::error_page(StatusCode::BAD_REQUEST, &message).into_response();
        }
        Err(Refusal::Redirect {
            redirect_uri,
            state: echoed,
            error,
            description,
        }) => {
            return redirect_error(
                &redirect_uri,
                echoed.as_deref(),
                error,
                &description,
                &tenant.issuer,
            );
        }
    };
    if tenant.tenant.issuance_paused {
        return redirect_error(
            &request.redirect_uri,
            request.state.as_deref(),
            "temporarily_unavailable",
            "sign-in is paused for this tenant",
            &tenant.issuer,
        );
    }
    if tenant.tenant.require_par && !pushed {
        let description = "this tenant requires pushed authorization requests";
        return redirect_error(
            &request.redirect_uri,
            request.state.as_deref(),
            "invalid_request",
            description,
            &tenant.issuer,
        );
    }
    let now = state.clock.unix();
    // Single sign-on: a live session skips sign-in unless the client asks for a fresh one.
    let Ok(session) = super::session::current(&state, &tenant.tenant.id, &web).await else {
        return busy();
    };
    // An id_token_hint names who the client expects; a session of anyone else does not count.
    let hinted_user = match &request.id_token_hint {
        Some(token) => {
            match tokens::id_token_hint(&state, &tenant.tenant.id, &tenant.issuer, token).await {
                Some((_, sub)) => Some(sub),
                None => {
                    let (uri, echoed) = (&request.redirect_uri, request.state.as_deref());
                    return redirect_error(
                        uri,
                        echoed,
                        "invalid_request",
                        "id_token_hint is not valid",
                        &tenant.issuer,
                    );
                }
            }
        }
        None => None,
    };
    let session = session.filter(|(_, s)| hinted_user.as_ref().is_none_or(|sub| *sub == s.user_id));
    let session = session.filter(|(_, s)| {
        !request.prompt.iter().any(|p| p == "login")
            && request
                .max_age
                .is_none_or(|max_age| now - s.auth_time <= max_age)
    });
    if session.is_none() && request.prompt.iter().any(|p| p == "none") {
        return redirect_error(
            &request.redirect_uri,
            request.state.as_deref(),
            "login_required",
            "the user must sign in",
            &tenant.issuer,
        );
    }

    let (device, set_cookie) = pages::device_or_new(&headers, &state.config);
    let pending = sign_in::PendingRequest {
        id: random_b64(16),
        client_id: request.client_id.clone(),
        request: serde_json::to_string(&StoredRequest::from(&request)).unwrap_or_default(),
        device_digest: state.digester.digest(SecretKind::Device, &device),
        expires_at: now + REQUEST_TTL,
        completed_at: None,
        user_id: None,
        auth_time: None,
        session_digest: None,
    };
    if let Err(err) =
        sign_in::insert_request(state.store.writer(), &tenant.tenant.id, &pending, now).await
    {
        tracing::warn!(error = %err, "could not store the authorization request");
        return pages::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is busy. Try again shortly.",
        )
        .into_response();
    }
    let mut response = match session {
        Some((sid_digest, signed_in)) => {
            let id = &tenant.tenant.id;
            let (user_id, auth_time) = (signed_in.user_id.as_str(), signed_in.auth_time);
            let marked = async {
                sign_in::authenticate_request(
                    state.store.writer(),
                    id,
                    &pending.id,
                    user_id,
                    auth_time,
                    &sid_digest,
                )
                .await?;
                sessions::touch(state.store.writer(), id, &sid_digest, now).await
            };
            if marked.await.is_err() {
                return busy();
            }
            let stored = StoredRequest::from(&request);
            let signed_in_request = sign_in::PendingRequest {
                session_digest: Some(sid_digest.clone()),
                ..pending.clone()
            };
            let login = super::login::proceed;
            login(
                &state,
                &tenant,
                &signed_in_request,
                &stored,
                user_id,
                auth_time,
                &device,
                &meta,
            )
            .await
        }
        None => Redirect::to(&format!("{}/login/{}", tenant.issuer, pending.id)).into_response(),
    };
    if let Some(cookie) = set_cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The parameters of a pushed request named by `request_uri` (RFC 9126 §4), taken once; `None`
/// when the request names none. A bad or used `request_uri` is a page: nothing verified it.
async fn pushed_params(
    state: &AppState,
    tenant: &IssuerTenant,
    params: &Params,
) -> Result<Option<Params>, Response> {
    let page = |message: &str| pages::error_page(StatusCode::BAD_REQUEST, message).into_response();
    let Ok(Some(uri)) = params.single("request_uri") else {
        return if params.contains("request_uri") {
            Err(page("request_uri is repeated"))
        } else {
            Ok(None)
        };
    };
    let Some(id) = uri.strip_prefix(super::par::REQUEST_URI_PREFIX) else {
        return Err(page("request_uri was not issued by this server"));
    };
    let Ok(Some(client_id)) = params.single("client_id") else {
        return Err(page("the request names no client"));
    };
    match pushed::take(
        state.store.writer(),
        &tenant.tenant.id,
        id,
        client_id,
        state.clock.unix(),
    )
    .await
    {
        Ok(Some(stored)) => Ok(Some(Params::parse(stored.as_bytes()))),
        Ok(None) => Err(page(
            "This request expired or was already used. Start again from the application.",
        )),
        Err(_) => Err(pages::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is busy. Try again shortly.",
        )
        .into_response()),
    }
}

fn busy() -> Response {
    pages::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is busy. Try again shortly.",
    )
    .into_response()
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
    issuer: &str,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    Redirect::to(&authorize::response_url(redirect_uri, &pairs)).into_response()
}

/// What is kept of a request while the person signs in.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct StoredRequest {
    pub(super) redirect_uri: String,
    pub(super) scope: Vec<String>,
    pub(super) state: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) code_challenge: Option<String>,
    pub(super) resources: Vec<String>,
    pub(super) login_hint: Option<String>,
    #[serde(default)]
    pub(super) prompt: Vec<String>,
}

impl From<&authorize::AuthorizeRequest> for StoredRequest {
    fn from(r: &authorize::AuthorizeRequest) -> Self {
        Self {
            redirect_uri: r.redirect_uri.clone(),
            scope: r.scope.clone(),
            state: r.state.clone(),
            nonce: r.nonce.clone(),
            code_challenge: r.code_challenge.clone(),
            resources: r.resources.clone(),
            login_hint: r.login_hint.clone(),
            prompt: r.prompt.clone(),
        }
    }
}

/// The stored request, if it exists and has not expired or completed.
pub(super) async fn pending(
    state: &AppState,
    tenant: &shared::TenantId,
    id: &str,
) -> Result<Option<(sign_in::PendingRequest, StoredRequest)>, store::StoreError> {
    let Some(row) = sign_in::get_request(state.store.reader(), tenant, id).await? else {
        return Ok(None);
    };
    if row.completed_at.is_some() || row.expires_at <= state.clock.unix() {
        return Ok(None);
    }
    Ok(serde_json::from_str(&row.request)
        .ok()
        .map(|request| (row, request)))
}
