//! Magic-link sign-in pages: the email form (`email`), the link that leads to a confirm step and
//! the one-time codes (`confirm`), and consent before the code goes back (`consent`). Opening a
//! link never consumes it, so mail scanners sign nobody in.

mod confirm;
mod consent;
mod email_form;

pub(super) use confirm::{confirm, confirm_code, confirm_page, handoff};
pub(super) use consent::{consent, proceed};
pub(super) use email_form::{form, send_link};

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::{
    authorize::{StoredRequest, pending},
    limits,
    pages::{self, Page, error_page},
    protocol::IssuerTenant,
    session,
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    crypto::{SecretKind, random_secret},
    email,
    limits::{Actor, Class},
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
/// Links one IP address may have sent per `LINK_WINDOW`, to any addresses: a person or an
/// office, not a script mailing a list.
const LINKS_PER_IP_WINDOW: i64 = 20;
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

/// Counts a code check (class `code`) against the address and the tenant.
async fn code_check_allowed(
    state: &AppState,
    tenant: &IssuerTenant,
    meta: &RequestMeta,
) -> Result<(), Response> {
    let mut actors = vec![Actor::tenant(tenant.tenant.id.as_str())];
    actors.extend(meta.ip.map(Actor::ip));
    limits::enforce(state, Class::Code, &actors)
        .await
        .map_err(limits::Limited::page)
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
