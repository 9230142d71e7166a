//! After sign-in: consent when the client needs it, then the authorization code back to the
//! client.

use super::*;

/// After sign-in (or with a live session): the consent page when needed, else the code.
#[allow(clippy::too_many_arguments)]
pub(in crate::http) async fn proceed(
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
pub(in crate::http) struct ConsentForm {
    csrf: String,
    decision: String,
}

/// `POST /a/{t}/consent/{request}`: allow (remembered) or deny (`access_denied`).
pub(in crate::http) async fn consent(
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
        session_digest: row.session_digest.clone(),
    };
    let digest = state.digester.digest(SecretKind::AuthorizationCode, &code);
    sign_in::insert_code(&mut *tx, id, &digest, &stored, now).await?;
    store::commit(tx).await?;
    Ok(Some(code))
}
