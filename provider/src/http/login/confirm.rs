//! The link's confirm step, the code from the email, and the code shown in another browser
//! (cross-device sign-in); each ends in `finish`, which signs the person in.

use super::email_form::check_email_page;
use super::*;

#[derive(Template)]
#[template(path = "confirm.html")]
struct Confirm<'a> {
    nonce: &'a str,
    client_name: &'a str,
    tenant_name: &'a str,
    action: &'a str,
    token: &'a str,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "other_device.html")]
struct OtherDevice<'a> {
    nonce: &'a str,
    client_name: &'a str,
    code: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "enter_code.html")]
struct EnterCode<'a> {
    nonce: &'a str,
    client_name: &'a str,
    action: &'a str,
    token: &'a str,
    csrf: &'a str,
    error: &'a str,
}

#[derive(Debug, Deserialize)]
pub(in crate::http) struct TokenQuery {
    token: String,
}

/// What a link leads to, once checked.
async fn open_link(
    state: &AppState,
    tenant: &IssuerTenant,
    token: &str,
) -> Result<Option<(sign_in::Link, sign_in::PendingRequest, StoredRequest)>, store::StoreError> {
    let digest = state.digester.digest(SecretKind::LoginLink, token);
    let Some(link) = sign_in::get_link(state.store.reader(), &tenant.tenant.id, &digest).await?
    else {
        return Ok(None);
    };
    if link.used_at.is_some() || link.expires_at <= state.clock.unix() {
        return Ok(None);
    }
    Ok(pending(state, &tenant.tenant.id, &link.request_id)
        .await?
        .map(|(row, request)| (link, row, request)))
}

/// `GET /a/{t}/login/confirm?token=…`: shows the confirm step; consumes nothing.
pub(in crate::http) async fn confirm_page(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let (_, row, request) = match open_link(&state, &tenant, &query.token).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(),
        Err(_) => return busy(),
    };
    let (device, set_cookie) = pages::device_or_new(&headers, &state.config);
    let name = client_name(&state, &tenant, &row.client_id).await;
    let nonce = pages::nonce();
    let action = format!("{}/login/confirm", tenant.issuer);
    let csrf = pages::csrf_token(&state, &device, &query.token);
    let template = Confirm {
        nonce: &nonce,
        client_name: &name,
        tenant_name: &tenant.tenant.display_name,
        action: &action,
        token: &query.token,
        csrf: &csrf,
    };
    let mut page = Page::render(&template, nonce.clone());
    page.form_targets
        .extend(pages::origin_of(&request.redirect_uri));
    page.set_cookie = set_cookie;
    page.into_response()
}

#[derive(Debug, Deserialize)]
pub(in crate::http) struct ConfirmForm {
    token: String,
    csrf: String,
}

/// `POST /a/{t}/login/confirm`: in the browser that asked, consumes the link, signs in and
/// returns a code to the client; in any other browser, signs nobody in.
pub(in crate::http) async fn confirm(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    web: Session,
    meta: RequestMeta,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let (link, row, request) = match open_link(&state, &tenant, &form.token).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(),
        Err(_) => return busy(),
    };
    let device = pages::device(&headers, &state.config).unwrap_or_default();
    if !pages::csrf_ok(&state, &device, &form.token, &form.csrf) {
        return error_page(
            StatusCode::FORBIDDEN,
            "This page expired. Open the link from your email again.",
        )
        .into_response();
    }
    let same_device = asking_browser(&state, &headers, &row).is_some();
    let name = client_name(&state, &tenant, &row.client_id).await;
    if !same_device {
        let code = six_digits();
        let digest = handoff_digest(&state, &row.id, &code);
        let now = state.clock.unix();
        let stored = sign_in::set_handoff(
            state.store.writer(),
            &tenant.tenant.id,
            &link.link_digest,
            &digest,
            now + HANDOFF_TTL,
        )
        .await;
        if stored.is_err() {
            return busy();
        }
        let nonce = pages::nonce();
        let template = OtherDevice {
            nonce: &nonce,
            client_name: &name,
            code: &code,
            minutes: HANDOFF_TTL / 60,
        };
        return Page::render(&template, nonce.clone()).into_response();
    }
    if link.email_code_digest.is_some() {
        let redirect = request.redirect_uri.as_str();
        return enter_code_page(&state, &tenant, &form.token, &device, &name, "", redirect)
            .into_response();
    }
    finish(&state, &tenant, &web, &link, &row, &request, &device, &meta).await
}

fn enter_code_page(
    state: &AppState,
    tenant: &IssuerTenant,
    token: &str,
    device: &str,
    client_name: &str,
    error: &str,
    redirect_uri: &str,
) -> Page {
    let nonce = pages::nonce();
    let action = format!("{}/login/confirm/code", tenant.issuer);
    let csrf = pages::csrf_token(state, device, token);
    let template = EnterCode {
        nonce: &nonce,
        client_name,
        action: &action,
        token,
        csrf: &csrf,
        error,
    };
    let mut page = Page::render(&template, nonce.clone());
    page.form_targets.extend(pages::origin_of(redirect_uri));
    page
}

#[derive(Debug, Deserialize)]
pub(in crate::http) struct EmailCodeForm {
    token: String,
    csrf: String,
    code: String,
}

/// `POST /a/{t}/login/confirm/code`: the code from the email, when the tenant requires it.
pub(in crate::http) async fn confirm_code(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    web: Session,
    meta: RequestMeta,
    Form(form): Form<EmailCodeForm>,
) -> Response {
    if let Err(limited) = code_check_allowed(&state, &tenant, &meta).await {
        return limited;
    }
    let (link, row, request) = match open_link(&state, &tenant, &form.token).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(),
        Err(_) => return busy(),
    };
    let Some(device) = form_from_asking_browser(&state, &headers, &row, &form.token, &form.csrf)
    else {
        return form_expired();
    };
    let Some(expected) = &link.email_code_digest else {
        return finish(&state, &tenant, &web, &link, &row, &request, &device, &meta).await;
    };
    let presented = email_code_digest(&state, &form.token, &digits(&form.code));
    if crate::crypto::ct_eq(&presented, expected) {
        return finish(&state, &tenant, &web, &link, &row, &request, &device, &meta).await;
    }
    if let Some(voided) = wrong_code(&state, &tenant, &link, &meta).await {
        return voided;
    }
    let name = client_name(&state, &tenant, &row.client_id).await;
    let error = "That code is not right.";
    enter_code_page(
        &state,
        &tenant,
        &form.token,
        &device,
        &name,
        error,
        &request.redirect_uri,
    )
    .status(StatusCode::BAD_REQUEST)
    .into_response()
}

/// Counts a wrong code; returns the response to give when that voided the link.
async fn wrong_code(
    state: &AppState,
    tenant: &IssuerTenant,
    link: &sign_in::Link,
    meta: &RequestMeta,
) -> Option<Response> {
    let now = state.clock.unix();
    let id = &tenant.tenant.id;
    let attempts = match sign_in::wrong_code(
        state.store.writer(),
        id,
        &link.link_digest,
        now,
        MAX_CODE_ATTEMPTS,
    )
    .await
    {
        Ok(attempts) => attempts,
        Err(_) => return Some(busy()),
    };
    let event = AuditEvent::new("login.code_failed")
        .user(&link.user_id)
        .details(json!({ "attempts": attempts }));
    let recorded =
        audit::record_alone(&state.store, state.clock.as_ref(), id.as_str(), meta, event).await;
    if let Err(err) = recorded {
        tracing::warn!(error = %err, "could not record login.code_failed");
    }
    (attempts >= MAX_CODE_ATTEMPTS).then(|| {
        let message = "Too many wrong codes. Start signing in again from the application.";
        error_page(StatusCode::BAD_REQUEST, message).into_response()
    })
}

#[derive(Debug, Deserialize)]
pub(in crate::http) struct HandoffForm {
    csrf: String,
    code: String,
}

/// `POST /a/{t}/login/{request}/code`: the code a link showed in another browser, typed into
/// the browser that asked (cross-device sign-in).
pub(in crate::http) async fn handoff(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    Path((_, request_id)): Path<(String, String)>,
    headers: HeaderMap,
    web: Session,
    meta: RequestMeta,
    Form(form): Form<HandoffForm>,
) -> Response {
    if let Err(limited) = code_check_allowed(&state, &tenant, &meta).await {
        return limited;
    }
    let (row, request) = match pending(&state, &tenant.tenant.id, &request_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(),
        Err(_) => return busy(),
    };
    let Some(device) = form_from_asking_browser(&state, &headers, &row, &request_id, &form.csrf)
    else {
        return form_expired();
    };
    let now = state.clock.unix();
    let id = &tenant.tenant.id;
    let links = match sign_in::handoff_links(state.store.reader(), id, &request_id, now).await {
        Ok(links) => links,
        Err(_) => return busy(),
    };
    let presented = handoff_digest(&state, &request_id, &digits(&form.code));
    let matching = links.iter().find(|l| {
        l.handoff_digest
            .as_deref()
            .is_some_and(|d| crate::crypto::ct_eq(d, &presented))
    });
    if let Some(link) = matching {
        return finish(&state, &tenant, &web, link, &row, &request, &device, &meta).await;
    }
    for link in &links {
        if let Some(voided) = wrong_code(&state, &tenant, link, &meta).await {
            return voided;
        }
    }
    let name = client_name(&state, &tenant, &row.client_id).await;
    let error = "That code is not right.";
    let redirect = request.redirect_uri.as_str();
    check_email_page(
        &state,
        &tenant,
        &request_id,
        &device,
        &name,
        error,
        redirect,
    )
    .status(StatusCode::BAD_REQUEST)
    .into_response()
}

/// Signs the person in, then asks for consent when the client needs it, or sends the browser
/// back to the client with a code.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    tenant: &IssuerTenant,
    web: &Session,
    link: &sign_in::Link,
    row: &sign_in::PendingRequest,
    request: &StoredRequest,
    device: &str,
    meta: &RequestMeta,
) -> Response {
    let (auth_time, sid, sid_digest) = match sign_in_user(state, tenant, link, row, meta).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return expired(),
        Err(err) => {
            tracing::warn!(error = %err, "sign-in could not complete");
            return busy();
        }
    };
    // Without single sign-on the person still gets through; they sign in again next time.
    if let Err(err) = session::remember(web, &tenant.tenant.id, sid).await {
        tracing::warn!(error = %err, "could not remember the sign-in in the browser session");
    }
    let user_id = link.user_id.as_str();
    // The grant records the browser session it was signed in with.
    let row = sign_in::PendingRequest {
        session_digest: Some(sid_digest),
        ..row.clone()
    };
    proceed(
        state, tenant, &row, request, user_id, auth_time, device, meta,
    )
    .await
}

/// Consumes the link, records who signed in and starts their browser session, in one
/// transaction; returns the sign-in time and the sign-in's id and digest, or `None` when the link or
/// request was used meanwhile or the user can no longer sign in.
async fn sign_in_user(
    state: &AppState,
    tenant: &IssuerTenant,
    link: &sign_in::Link,
    row: &sign_in::PendingRequest,
    meta: &RequestMeta,
) -> Result<Option<(i64, String, Vec<u8>)>, store::StoreError> {
    let id = &tenant.tenant.id;
    let now = state.clock.unix();
    let mut tx = state.store.begin().await?;
    let user = users::get(&mut *tx, id, &link.user_id).await?;
    if !user.is_some_and(|u| u.status == UserStatus::Active) {
        return Ok(None);
    }
    if !sign_in::consume_link(&mut *tx, id, &link.link_digest, now).await? {
        return Ok(None);
    }
    let (sid, sid_digest) =
        crate::http::session::start(&mut tx, state, id, &link.user_id, now).await?;
    if !sign_in::authenticate_request(&mut *tx, id, &row.id, &link.user_id, now, &sid_digest)
        .await?
    {
        return Ok(None);
    }
    let event = AuditEvent::new("login.succeeded")
        .client(&row.client_id)
        .user(&link.user_id)
        .details(json!({ "method": "magic_link" }));
    audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
    store::commit(tx).await?;
    Ok(Some((now, sid, sid_digest)))
}
