//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at `end_session_endpoint`, GET or
//! POST. With an `id_token_hint` this server issued to the signed-in user, the session ends at
//! once; without one, the person confirms first, so a third-party page cannot sign them out.
//! A `post_logout_redirect_uri` must be registered for the client, else the browser stays here.

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde_json::json;

use super::{
    pages::{self, Page, error_page},
    protocol::{IssuerTenant, QueryOrForm},
    session,
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    oauth::authorize::response_url,
    state::AppState,
    store::sessions,
    tokens,
};

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOut<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct Confirm<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    action: &'a str,
    csrf: &'a str,
    carried: Vec<(&'a str, String)>,
}

pub(super) async fn logout(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    web: tower_sessions::Session,
    meta: RequestMeta,
    QueryOrForm { params, posted }: QueryOrForm,
) -> Response {
    let get = |name: &str| params.single(name).ok().flatten().map(str::to_owned);
    let hinted = match get("id_token_hint") {
        Some(token) => {
            match tokens::id_token_hint(&state, &tenant.tenant.id, &tenant.issuer, &token).await {
                Some(found) => Some(found),
                None => {
                    return error_page(StatusCode::BAD_REQUEST, "The id_token_hint is not valid.")
                        .into_response();
                }
            }
        }
        None => None,
    };
    let client_id = match (get("client_id"), &hinted) {
        (Some(given), Some((from_hint, _))) if &given != from_hint => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "client_id does not match the id_token_hint.",
            )
            .into_response();
        }
        (Some(given), _) => Some(given),
        (None, Some((from_hint, _))) => Some(from_hint.clone()),
        (None, None) => None,
    };
    let redirect = match get("post_logout_redirect_uri") {
        Some(uri) => {
            let registered = match &client_id {
                Some(id) => matches!(state.client(&tenant.tenant.id, id).await,
                    Ok(Some(c)) if c.is_active() && c.metadata.post_logout_redirect_uris.contains(&uri)),
                None => false,
            };
            if !registered {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "This post-logout address is not registered for the application.",
                )
                .into_response();
            }
            Some(uri)
        }
        None => None,
    };
    let current = match session::current(&state, &tenant.tenant.id, &web).await {
        Ok(current) => current,
        Err(_) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy. Try again shortly.",
            )
            .into_response();
        }
    };

    // Confirmed when the hint names the signed-in user, or the person pressed the button here.
    let (device, _) = pages::device_or_new(&headers, &state.config);
    let confirmed = match (&hinted, &current) {
        (Some((_, sub)), Some((_, s))) => *sub == s.user_id,
        (_, None) => true,
        _ => false,
    } || (posted
        && get("csrf").is_some_and(|csrf| pages::csrf_ok(&state, &device, "logout", &csrf)));
    if !confirmed {
        let nonce = pages::nonce();
        let action = format!("{}/logout", tenant.issuer);
        let csrf = pages::csrf_token(&state, &device, "logout");
        let carried = ["post_logout_redirect_uri", "state", "client_id"]
            .into_iter()
            .filter_map(|name| get(name).map(|value| (name, value)))
            .collect();
        let template = Confirm {
            nonce: &nonce,
            tenant_name: &tenant.tenant.display_name,
            action: &action,
            csrf: &csrf,
            carried,
        };
        let mut page = Page::render(&template, nonce.clone());
        page.form_targets
            .extend(redirect.as_deref().and_then(pages::origin_of));
        return page.into_response();
    }

    if let Some((sid_digest, signed_in)) = &current {
        let now = state.clock.unix();
        let ended = sessions::end(state.store.writer(), &tenant.tenant.id, sid_digest, now).await;
        if ended.is_err() {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy. Try again shortly.",
            )
            .into_response();
        }
        let mut event = AuditEvent::new("session.ended")
            .user(&signed_in.user_id)
            .details(json!({ "reason": "logout" }));
        if let Some(id) = &client_id {
            event = event.client(id);
        }
        if let Err(err) = audit::record_alone(
            &state.store,
            state.clock.as_ref(),
            tenant.tenant.id.as_str(),
            &meta,
            event,
        )
        .await
        {
            tracing::warn!(error = %err, "could not record session.ended");
        }
    }
    let response = match redirect {
        Some(uri) => {
            let state_param = get("state");
            let pairs: Vec<(&str, &str)> = state_param
                .as_deref()
                .map(|s| ("state", s))
                .into_iter()
                .collect();
            Redirect::to(&response_url(&uri, &pairs)).into_response()
        }
        None => {
            let nonce = pages::nonce();
            let template = SignedOut {
                nonce: &nonce,
                tenant_name: &tenant.tenant.display_name,
            };
            Page::render(&template, nonce.clone()).into_response()
        }
    };
    if let Err(err) = session::forget(&web, &tenant.tenant.id).await {
        tracing::warn!(error = %err, "could not forget the sign-in in the browser session");
    }
    response
}
