//! Magic-link sign-in pages: the email form, the link that leads to a confirm step (opening a
//! link never consumes it, so mail scanners sign nobody in), and the confirm that signs in the
//! browser that asked and returns an authorization code to the client.

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{
    authorize::{StoredRequest, pending},
    pages::{self, Page, error_page},
    protocol::IssuerTenant,
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    crypto::{SecretKind, random_secret},
    email,
    login::mail::Mail,
    oauth::authorize::response_url,
    state::AppState,
    store::{
        self, consents, sign_in,
        users::{self, User, UserStatus},
    },
};

/// How long a sign-in link works.
pub(crate) const LINK_TTL: i64 = 10 * 60;
/// How long an authorization code works (RFC 9700 §4.5: short-lived).
pub(crate) const CODE_TTL: i64 = 60;
/// How long the code shown in another browser works.
const HANDOFF_TTL: i64 = 5 * 60;
/// Links one address may be sent per `LINK_WINDOW`: enough for a person, too few to flood an
/// inbox. Shared by every replica, since it counts rows.
const LINKS_PER_WINDOW: i64 = 5;
const LINK_WINDOW: i64 = 15 * 60;
/// Wrong one-time codes a link survives.
const MAX_CODE_ATTEMPTS: i64 = 5;

/// Six random digits.
fn six_digits() -> String {
    format!("{:06}", rand::random::<u32>() % 1_000_000)
}

/// Digits only: people type codes with spaces.
fn digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

/// Codes are short, so their digests are bound to what they unlock.
fn handoff_digest(state: &AppState, request_id: &str, code: &str) -> Vec<u8> {
    state.digester.digest(
        SecretKind::LoginLink,
        &format!("handoff\n{request_id}\n{code}"),
    )
}

fn email_code_digest(state: &AppState, token: &str, code: &str) -> Vec<u8> {
    state.digester.digest(
        SecretKind::LoginLink,
        &format!("email-code\n{token}\n{code}"),
    )
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignIn<'a> {
    nonce: &'a str,
    client_name: &'a str,
    tenant_name: &'a str,
    action: &'a str,
    csrf: &'a str,
    email: &'a str,
    error: &'a str,
    mail_available: bool,
}

#[derive(Template)]
#[template(path = "check_email.html")]
struct CheckEmail<'a> {
    nonce: &'a str,
    client_name: &'a str,
    minutes: i64,
    code_action: &'a str,
    csrf: &'a str,
    error: &'a str,
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
#[template(path = "mail_sign_in.txt")]
struct MailText<'a> {
    code: &'a str,
    client_name: &'a str,
    tenant_name: &'a str,
    link: &'a str,
    minutes: i64,
    ip: &'a str,
    user_agent: &'a str,
}

#[derive(Template)]
#[template(path = "mail_sign_in.html")]
struct MailHtml<'a> {
    code: &'a str,
    client_name: &'a str,
    tenant_name: &'a str,
    link: &'a str,
    minutes: i64,
    ip: &'a str,
    user_agent: &'a str,
}

fn busy() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is busy. Try again shortly.",
    )
    .into_response()
}

/// The device id of the browser that started this request, when this is that browser.
fn asking_browser(
    state: &AppState,
    headers: &HeaderMap,
    row: &sign_in::PendingRequest,
) -> Option<String> {
    pages::device(headers, &state.config).filter(|device| {
        crate::crypto::ct_eq(
            &state.digester.digest(SecretKind::Device, device),
            &row.device_digest,
        )
    })
}

/// The device id, when a form post comes from the browser that started the request with its
/// form token for `subject`.
fn form_from_asking_browser(
    state: &AppState,
    headers: &HeaderMap,
    row: &sign_in::PendingRequest,
    subject: &str,
    csrf: &str,
) -> Option<String> {
    asking_browser(state, headers, row)
        .filter(|device| pages::csrf_ok(state, device, subject, csrf))
}

/// The answer to a form post that `form_from_asking_browser` refused.
fn form_expired() -> Response {
    let message = "This page expired. Start signing in again from the application.";
    error_page(StatusCode::FORBIDDEN, message).into_response()
}

fn expired() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired or was already used.",
    )
    .into_response()
}

async fn client_name(state: &AppState, tenant: &IssuerTenant, client_id: &str) -> String {
    match state.client(&tenant.tenant.id, client_id).await {
        Ok(Some(client)) => client
            .metadata
            .client_name
            .unwrap_or_else(|| client_id.to_owned()),
        _ => client_id.to_owned(),
    }
}

#[allow(clippy::too_many_arguments)]
fn sign_in_page(
    state: &AppState,
    tenant: &IssuerTenant,
    request_id: &str,
    device: &str,
    client_name: &str,
    email: &str,
    error: &str,
) -> Page {
    let nonce = pages::nonce();
    let action = format!("{}/login/{request_id}", tenant.issuer);
    let csrf = pages::csrf_token(state, device, request_id);
    let template = SignIn {
        nonce: &nonce,
        client_name,
        tenant_name: &tenant.tenant.display_name,
        action: &action,
        csrf: &csrf,
        email,
        error,
        mail_available: state.mail.is_some(),
    };
    Page::render(&template, nonce.clone())
}

/// `GET /a/{t}/login/{request}`: the email form.
pub(super) async fn form(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    Path((_, request_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (row, request) = match pending(&state, &tenant.tenant.id, &request_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(),
        Err(_) => return busy(),
    };
    let Some(device) = asking_browser(&state, &headers, &row) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Start signing in again from the application.",
        )
        .into_response();
    };
    let name = client_name(&state, &tenant, &row.client_id).await;
    let hint = request.login_hint.as_deref().unwrap_or_default();
    sign_in_page(&state, &tenant, &request_id, &device, &name, hint, "").into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct EmailForm {
    email: String,
    csrf: String,
}

/// `POST /a/{t}/login/{request}`: sends a link when the address may sign in. Every address gets
/// the same page, so the form does not tell who has an account.
pub(super) async fn send_link(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    Path((_, request_id)): Path<(String, String)>,
    headers: HeaderMap,
    meta: RequestMeta,
    Form(form): Form<EmailForm>,
) -> Response {
    let (row, request) = match pending(&state, &tenant.tenant.id, &request_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(),
        Err(_) => return busy(),
    };
    let Some(device) = form_from_asking_browser(&state, &headers, &row, &request_id, &form.csrf)
    else {
        return form_expired();
    };
    let name = client_name(&state, &tenant, &row.client_id).await;
    let Some(address) = email::normalize(&form.email) else {
        let page = sign_in_page(
            &state,
            &tenant,
            &request_id,
            &device,
            &name,
            &form.email,
            "Enter a valid email address.",
        );
        return page.status(StatusCode::BAD_REQUEST).into_response();
    };
    let Some(mailer) = &state.mail else {
        return sign_in_page(&state, &tenant, &request_id, &device, &name, &address, "")
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
    };

    if let Err(err) = queue_link(&state, &tenant, &row.id, &address, &name, &meta, mailer).await {
        tracing::warn!(error = %err, "could not queue a sign-in link");
        return busy();
    }
    check_email_page(
        &state,
        &tenant,
        &request_id,
        &device,
        &name,
        "",
        &request.redirect_uri,
    )
    .into_response()
}

/// The "check your email" page; its code form leads back to the client, so CSP `form-action`
/// names the client's redirect origin.
fn check_email_page(
    state: &AppState,
    tenant: &IssuerTenant,
    request_id: &str,
    device: &str,
    client_name: &str,
    error: &str,
    redirect_uri: &str,
) -> Page {
    let nonce = pages::nonce();
    let code_action = format!("{}/login/{request_id}/code", tenant.issuer);
    let csrf = pages::csrf_token(state, device, request_id);
    let template = CheckEmail {
        nonce: &nonce,
        client_name,
        minutes: LINK_TTL / 60,
        code_action: &code_action,
        csrf: &csrf,
        error,
    };
    let mut page = Page::render(&template, nonce.clone());
    page.form_targets.extend(pages::origin_of(redirect_uri));
    page
}

/// Finds (or, with self-signup, creates) the user and queues their link, in one transaction.
/// Addresses that may not sign in queue nothing.
async fn queue_link(
    state: &AppState,
    tenant: &IssuerTenant,
    request_id: &str,
    address: &str,
    client_name: &str,
    meta: &RequestMeta,
    mailer: &crate::login::mail::Mailer,
) -> Result<(), store::StoreError> {
    let id = &tenant.tenant.id;
    let now = state.clock.unix();
    let allowed = email::domain_allowed(address, &tenant.tenant.allowed_email_domains);
    let mut tx = state.store.begin().await?;
    let user = match users::find_by_email(&mut *tx, id, address).await? {
        Some(user) => Some(user),
        None if allowed && tenant.tenant.self_signup => {
            let user = User {
                user_id: uuid::Uuid::new_v4().to_string(),
                email: address.to_owned(),
                name: None,
                status: UserStatus::Active,
                created_at: now,
                updated_at: now,
            };
            users::insert(&mut *tx, id, &user).await?;
            let event = AuditEvent::new("user.created")
                .user(&user.user_id)
                .details(json!({ "email": address, "via": "self_signup" }));
            audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
            Some(user)
        }
        None => None,
    };
    let Some(user) = user.filter(|u| u.status == UserStatus::Active && allowed) else {
        return store::commit(tx).await;
    };

    if sign_in::links_since(&mut *tx, id, &user.user_id, now - LINK_WINDOW).await?
        >= LINKS_PER_WINDOW
    {
        // The page stays the same, so the limit tells nobody whether the address exists.
        let event = AuditEvent::new("login.link_limited").user(&user.user_id);
        audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
        return store::commit(tx).await;
    }
    let token = random_secret();
    let digest = state.digester.digest(SecretKind::LoginLink, &token);
    let email_code = if tenant.tenant.require_email_code {
        six_digits()
    } else {
        String::new()
    };
    let code_digest =
        (!email_code.is_empty()).then(|| email_code_digest(state, &token, &email_code));
    sign_in::insert_link(
        &mut *tx,
        id,
        &digest,
        request_id,
        &user.user_id,
        code_digest.as_deref(),
        now,
        now + LINK_TTL,
    )
    .await?;
    let link = format!("{}/login/confirm?token={token}", tenant.issuer);
    let ip = meta
        .ip
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "an unknown address".into());
    let user_agent = meta.user_agent.as_deref().unwrap_or("an unknown browser");
    let fields = (
        client_name,
        tenant.tenant.display_name.as_str(),
        link.as_str(),
        LINK_TTL / 60,
        ip.as_str(),
        user_agent,
    );
    let text = MailText {
        code: &email_code,
        client_name: fields.0,
        tenant_name: fields.1,
        link: fields.2,
        minutes: fields.3,
        ip: fields.4,
        user_agent: fields.5,
    };
    let html = MailHtml {
        code: &email_code,
        client_name: fields.0,
        tenant_name: fields.1,
        link: fields.2,
        minutes: fields.3,
        ip: fields.4,
        user_agent: fields.5,
    };
    let mail = Mail {
        subject: format!("Sign in to {client_name}"),
        text: text.render().unwrap_or_default(),
        html: html.render().unwrap_or_default(),
    };
    mailer
        .enqueue(&mut tx, id.as_str(), address, &mail, now)
        .await?;
    let event = AuditEvent::new("login.magic_link_sent")
        .user(&user.user_id)
        .details(json!({ "email": address }));
    audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
    store::commit(tx).await?;
    mailer.wake();
    if state.config.dev {
        // Dev mode prints the link so a newcomer needs no mail server; never outside dev mode.
        println!(
            "Dev mode: sign-in link for {}: {link}",
            email::redact(address)
        );
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenQuery {
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
pub(super) async fn confirm_page(
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
pub(super) struct ConfirmForm {
    token: String,
    csrf: String,
}

/// `POST /a/{t}/login/confirm`: in the browser that asked, consumes the link, signs in and
/// returns a code to the client; in any other browser, signs nobody in.
pub(super) async fn confirm(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
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
    finish(&state, &tenant, &link, &row, &request, &device, &meta).await
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
pub(super) struct EmailCodeForm {
    token: String,
    csrf: String,
    code: String,
}

/// `POST /a/{t}/login/confirm/code`: the code from the email, when the tenant requires it.
pub(super) async fn confirm_code(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    headers: HeaderMap,
    meta: RequestMeta,
    Form(form): Form<EmailCodeForm>,
) -> Response {
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
        return finish(&state, &tenant, &link, &row, &request, &device, &meta).await;
    };
    let presented = email_code_digest(&state, &form.token, &digits(&form.code));
    if crate::crypto::ct_eq(&presented, expected) {
        return finish(&state, &tenant, &link, &row, &request, &device, &meta).await;
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
    let recorded = audit::record(
        state.store.writer(),
        state.clock.as_ref(),
        id.as_str(),
        meta,
        event,
    )
    .await;
    if let Err(err) = recorded {
        tracing::warn!(error = %err, "could not record login.code_failed");
    }
    (attempts >= MAX_CODE_ATTEMPTS).then(|| {
        let message = "Too many wrong codes. Start signing in again from the application.";
        error_page(StatusCode::BAD_REQUEST, message).into_response()
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct HandoffForm {
    csrf: String,
    code: String,
}

/// `POST /a/{t}/login/{request}/code`: the code a link showed in another browser, typed into
/// the browser that asked (cross-device sign-in).
pub(super) async fn handoff(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    Path((_, request_id)): Path<(String, String)>,
    headers: HeaderMap,
    meta: RequestMeta,
    Form(form): Form<HandoffForm>,
) -> Response {
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
        return finish(&state, &tenant, link, &row, &request, &device, &meta).await;
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
    link: &sign_in::Link,
    row: &sign_in::PendingRequest,
    request: &StoredRequest,
    device: &str,
    meta: &RequestMeta,
) -> Response {
    let (auth_time, cookie) = match sign_in_user(state, tenant, link, row, meta).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return expired(),
        Err(err) => {
            tracing::warn!(error = %err, "sign-in could not complete");
            return busy();
        }
    };
    let user_id = link.user_id.as_str();
    let mut response = proceed(
        state, tenant, row, request, user_id, auth_time, device, meta,
    )
    .await;
    if let Ok(cookie) = axum::http::HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    response
}

/// Consumes the link, records who signed in and starts their browser session, in one
/// transaction; returns the sign-in time and the session cookie, or `None` when the link or
/// request was used meanwhile or the user can no longer sign in.
async fn sign_in_user(
    state: &AppState,
    tenant: &IssuerTenant,
    link: &sign_in::Link,
    row: &sign_in::PendingRequest,
    meta: &RequestMeta,
) -> Result<Option<(i64, String)>, store::StoreError> {
    let id = &tenant.tenant.id;
    let now = state.clock.unix();
    let mut tx = state.store.begin().await?;
    let user = users::get(&mut *tx, id, &link.user_id).await?;
    if !user.is_some_and(|u| u.status == UserStatus::Active) {
        return Ok(None);
    }
    if !sign_in::consume_link(&mut *tx, id, &link.link_digest, now).await?
        || !sign_in::authenticate_request(&mut *tx, id, &row.id, &link.user_id, now).await?
    {
        return Ok(None);
    }
    let event = AuditEvent::new("login.succeeded")
        .client(&row.client_id)
        .user(&link.user_id)
        .details(json!({ "method": "magic_link" }));
    audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
    let cookie = super::session::start(&mut tx, state, id, &link.user_id, now).await?;
    store::commit(tx).await?;
    Ok(Some((now, cookie)))
}

/// After sign-in (or with a live session): the consent page when needed, else the code.
#[allow(clippy::too_many_arguments)]
pub(super) async fn proceed(
    state: &AppState,
    tenant: &IssuerTenant,
    row: &sign_in::PendingRequest,
    request: &StoredRequest,
    user_id: &str,
    auth_time: i64,
    device: &str,
    meta: &RequestMeta,
) -> Response {
    let id = &tenant.tenant.id;
    let client = match state.client(id, &row.client_id).await {
        Ok(Some(client)) if client.is_active() => client,
        Ok(_) => return expired(),
        Err(_) => return busy(),
    };
    let forced = request.prompt.iter().any(|p| p == "consent");
    let covered = if client.first_party && !forced {
        true
    } else if forced {
        false
    } else {
        match consents::get(state.store.reader(), id, user_id, &client.client_id).await {
            Ok(Some((scopes, resources))) => {
                request.scope.iter().all(|s| scopes.contains(s))
                    && request.resources.iter().all(|r| resources.contains(r))
            }
            Ok(None) => false,
            Err(_) => return busy(),
        }
    };
    if !covered && request.prompt.iter().any(|p| p == "none") {
        let mut pairs = vec![
            ("error", "consent_required"),
            ("error_description", "the user must consent"),
        ];
        if let Some(s) = &request.state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", &tenant.issuer));
        return Redirect::to(&response_url(&request.redirect_uri, &pairs)).into_response();
    }
    if !covered {
        let name = client
            .metadata
            .client_name
            .clone()
            .unwrap_or_else(|| client.client_id.clone());
        return consent_page(state, tenant, &row.id, device, &name, request).into_response();
    }
    issue_code(state, tenant, row, request, user_id, auth_time, meta, None).await
}

/// What each scope lets a client do, in words a person reads on the consent page.
fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are".into(),
        "email" => "See your email address".into(),
        "profile" => "See your name".into(),
        "offline_access" => "Stay connected when you are not using it".into(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentTemplate<'a> {
    nonce: &'a str,
    client_name: &'a str,
    tenant_name: &'a str,
    scopes: Vec<String>,
    resources: &'a [String],
    action: &'a str,
    csrf: &'a str,
}

fn consent_page(
    state: &AppState,
    tenant: &IssuerTenant,
    request_id: &str,
    device: &str,
    client_name: &str,
    request: &StoredRequest,
) -> Page {
    let nonce = pages::nonce();
    let action = format!("{}/consent/{request_id}", tenant.issuer);
    let csrf = pages::csrf_token(state, device, &format!("consent\n{request_id}"));
    let template = ConsentTemplate {
        nonce: &nonce,
        client_name,
        tenant_name: &tenant.tenant.display_name,
        scopes: request.scope.iter().map(|s| describe(s)).collect(),
        resources: &request.resources,
        action: &action,
        csrf: &csrf,
    };
    let mut page = Page::render(&template, nonce.clone());
    page.form_targets
        .extend(pages::origin_of(&request.redirect_uri));
    page
}

#[derive(Debug, Deserialize)]
pub(super) struct ConsentForm {
    csrf: String,
    decision: String,
}

/// `POST /a/{t}/consent/{request}`: allow (remembered) or deny (`access_denied`).
pub(super) async fn consent(
    State(state): State<AppState>,
    tenant: IssuerTenant,
    Path((_, request_id)): Path<(String, String)>,
    headers: HeaderMap,
    meta: RequestMeta,
    Form(form): Form<ConsentForm>,
) -> Response {
    let (row, request) = match pending(&state, &tenant.tenant.id, &request_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(),
        Err(_) => return busy(),
    };
    let subject = format!("consent\n{request_id}");
    let (Some(user_id), Some(auth_time)) = (row.user_id.clone(), row.auth_time) else {
        return expired();
    };
    if form_from_asking_browser(&state, &headers, &row, &subject, &form.csrf).is_none() {
        return form_expired();
    }
    let grant = match form.decision.as_str() {
        "allow" => Some(&request),
        "deny" => None,
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny.").into_response(),
    };
    if grant.is_some() {
        return issue_code(
            &state, &tenant, &row, &request, &user_id, auth_time, &meta, grant,
        )
        .await;
    }
    let id = &tenant.tenant.id;
    let denied = async {
        let mut tx = state.store.begin().await?;
        let done = sign_in::complete_request(&mut *tx, id, &row.id, state.clock.unix()).await?;
        let event = AuditEvent::new("consent.denied")
            .client(&row.client_id)
            .user(&user_id)
            .details(json!({ "scope": request.scope.join(" "), "resources": request.resources }));
        audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), &meta, event).await?;
        store::commit(tx).await?;
        Ok::<bool, store::StoreError>(done)
    };
    match denied.await {
        Ok(true) => {
            let mut pairs = vec![
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ];
            if let Some(s) = &request.state {
                pairs.push(("state", s));
            }
            pairs.push(("iss", &tenant.issuer));
            Redirect::to(&response_url(&request.redirect_uri, &pairs)).into_response()
        }
        Ok(false) => expired(),
        Err(_) => busy(),
    }
}

/// Completes the request and sends the browser back with a code, in one transaction that also
/// records the consent when one was just given.
#[allow(clippy::too_many_arguments)]
async fn issue_code(
    state: &AppState,
    tenant: &IssuerTenant,
    row: &sign_in::PendingRequest,
    request: &StoredRequest,
    user_id: &str,
    auth_time: i64,
    meta: &RequestMeta,
    consent_given: Option<&StoredRequest>,
) -> Response {
    match code_for(
        state,
        tenant,
        row,
        request,
        user_id,
        auth_time,
        meta,
        consent_given,
    )
    .await
    {
        Ok(Some(code)) => {
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = &request.state {
                pairs.push(("state", s));
            }
            pairs.push(("iss", &tenant.issuer));
            Redirect::to(&response_url(&request.redirect_uri, &pairs)).into_response()
        }
        Ok(None) => expired(),
        Err(err) => {
            tracing::warn!(error = %err, "sign-in could not complete");
            busy()
        }
    }
}

/// The transaction behind `issue_code`; `None` when the request completed meanwhile.
#[allow(clippy::too_many_arguments)]
async fn code_for(
    state: &AppState,
    tenant: &IssuerTenant,
    row: &sign_in::PendingRequest,
    request: &StoredRequest,
    user_id: &str,
    auth_time: i64,
    meta: &RequestMeta,
    consent_given: Option<&StoredRequest>,
) -> Result<Option<String>, store::StoreError> {
    let id = &tenant.tenant.id;
    let now = state.clock.unix();
    let mut tx = state.store.begin().await?;
    if !sign_in::complete_request(&mut *tx, id, &row.id, now).await? {
        return Ok(None);
    }
    if let Some(granted) = consent_given {
        let previous = consents::get(&mut *tx, id, user_id, &row.client_id)
            .await?
            .unwrap_or_default();
        let union = |old: Vec<String>, new: &[String]| {
            let mut all = old;
            all.extend(
                new.iter()
                    .filter(|n| !all.contains(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            all
        };
        let scopes = union(previous.0, &granted.scope);
        let resources = union(previous.1, &granted.resources);
        consents::put(
            &mut *tx,
            id,
            user_id,
            &row.client_id,
            &scopes,
            &resources,
            now,
        )
        .await?;
        let event = AuditEvent::new("consent.granted")
            .client(&row.client_id)
            .user(user_id)
            .details(json!({ "scope": granted.scope.join(" "), "resources": granted.resources }));
        audit::record(&mut *tx, state.clock.as_ref(), id.as_str(), meta, event).await?;
    }
    let code = random_secret();
    let stored = sign_in::Code {
        client_id: row.client_id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.join(" "),
        resources: serde_json::to_string(&request.resources).unwrap_or_else(|_| "[]".into()),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time,
        expires_at: now + CODE_TTL,
        redeemed_at: None,
        access_token_jti: None,
        access_token_exp: None,
    };
    let digest = state.digester.digest(SecretKind::AuthorizationCode, &code);
    sign_in::insert_code(&mut *tx, id, &digest, &stored, now).await?;
    store::commit(tx).await?;
    Ok(Some(code))
}
