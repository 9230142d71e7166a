//! The email form: the address a link goes to, and the "check your email" page.

use super::*;

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
pub(in crate::http) async fn form(
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
pub(in crate::http) struct EmailForm {
    email: String,
    csrf: String,
}

/// `POST /a/{t}/login/{request}`: sends a link when the address may sign in. Every address gets
/// the same page, so the form does not tell who has an account.
/// When the "check your email" page answers, whatever the address: longer than queueing a link
/// takes, short enough that nobody waits.
const ANSWER_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

pub(in crate::http) async fn send_link(
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
    let ip = meta.ip;
    let email_key = state.digester.digest(SecretKind::RateLimitKey, &address);
    let mut actors = vec![Actor::email(&email_key)];
    actors.extend(ip.map(Actor::ip));
    if let Err(limited) = limits::enforce(&state, Class::Link, &actors).await {
        return limited.page();
    }
    let Some(mailer) = &state.mail else {
        return sign_in_page(&state, &tenant, &request_id, &device, &name, &address, "")
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
    };

    // Known and unknown addresses must not differ in timing either: the lookup and queueing run
    // on their own, and the page answers a fixed time after the request, not when they finish.
    let answer_at = tokio::time::Instant::now() + ANSWER_AFTER;
    let work = {
        let (state, tenant, mailer) = (state.clone(), tenant.clone(), mailer.clone());
        let (request_id, name) = (row.id.clone(), name.clone());
        async move {
            let queued = queue_link(
                &state,
                &tenant,
                &request_id,
                &address,
                &name,
                &meta,
                &mailer,
            );
            if let Err(err) = queued.await {
                tracing::warn!(error = %err, "could not queue a sign-in link");
            }
        }
    };
    tokio::spawn(work);
    tokio::time::sleep_until(answer_at).await;
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
pub(super) fn check_email_page(
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

    let requested_ip = meta.ip.map(|ip| ip.to_string());
    let per_address = sign_in::links_since(&mut *tx, id, &user.user_id, now - LINK_WINDOW).await?;
    let per_ip = match &requested_ip {
        Some(ip) => sign_in::links_from_ip_since(&mut *tx, id, ip, now - LINK_WINDOW).await?,
        None => 0,
    };
    if per_address >= LINKS_PER_WINDOW || per_ip >= LINKS_PER_IP_WINDOW {
        // The page stays the same, so the limit tells nobody whether the address exists.
        let limit = if per_address >= LINKS_PER_WINDOW {
            "address"
        } else {
            "ip"
        };
        crate::monitoring::rate_limited(format!("magic_link_{limit}"));
        let event = AuditEvent::new("login.link_limited")
            .user(&user.user_id)
            .details(json!({ "limit": limit }));
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
        requested_ip.as_deref(),
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
