//! Single sign-on browser sessions: a cookie per tenant (`__Host-sid-{tenant}` over https,
//! `sid-{tenant}` over http; HttpOnly, SameSite=Lax) whose keyed digest finds a
//! `browser_sessions` row. A new session id at every sign-in; idle and absolute timeouts.
//!
//! The product keeps its own table rather than tower-sessions' opaque per-origin store: every
//! tenant is its own issuer on one origin, and an administrator must be able to end every
//! session of one user of one tenant.

use axum::http::HeaderMap;
use shared::TenantId;

use crate::{
    config::Config,
    crypto::{SecretKind, random_secret},
    state::AppState,
    store::{
        StoreResult, Tx,
        sessions::{self, BrowserSession},
        users::{self, UserStatus},
    },
};

/// A session unused for this long is over.
pub(crate) const IDLE_SECS: i64 = 8 * 3600;
/// A session is over this long after sign-in, used or not.
pub(crate) const ABSOLUTE_SECS: i64 = 7 * 24 * 3600;

fn cookie_name(config: &Config, tenant: &TenantId) -> String {
    if config.public_url.starts_with("https://") {
        format!("__Host-sid-{tenant}")
    } else {
        format!("sid-{tenant}")
    }
}

pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

fn digest(state: &AppState, sid: &str) -> Vec<u8> {
    state
        .digester
        .digest(SecretKind::Device, &format!("session\n{sid}"))
}

/// The browser's live session with this tenant, with its digest: not ended, not past either
/// timeout, and its user still active.
pub(super) async fn current(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
) -> StoreResult<Option<(Vec<u8>, BrowserSession)>> {
    let Some(sid) = cookie(headers, &cookie_name(&state.config, tenant)) else {
        return Ok(None);
    };
    let sid_digest = digest(state, &sid);
    let now = state.clock.unix();
    let Some(session) = sessions::get(state.store.reader(), tenant, &sid_digest).await? else {
        return Ok(None);
    };
    let live = session.ended_at.is_none()
        && now < session.expires_at
        && now - session.last_seen_at < IDLE_SECS;
    if !live {
        return Ok(None);
    }
    let user = users::get(state.store.reader(), tenant, &session.user_id).await?;
    if !user.is_some_and(|u| u.status == UserStatus::Active) {
        return Ok(None);
    }
    Ok(Some((sid_digest, session)))
}

/// Starts a session inside the sign-in transaction; returns the `Set-Cookie` value and the
/// session's digest, which the grant records.
pub(super) async fn start(
    tx: &mut Tx,
    state: &AppState,
    tenant: &TenantId,
    user_id: &str,
    auth_time: i64,
) -> StoreResult<(String, Vec<u8>)> {
    let sid = random_secret();
    let sid_digest = digest(state, &sid);
    sessions::insert(
        &mut **tx,
        tenant,
        &sid_digest,
        user_id,
        auth_time,
        auth_time + ABSOLUTE_SECS,
    )
    .await?;
    Ok((
        set_cookie(&state.config, tenant, &sid, ABSOLUTE_SECS),
        sid_digest,
    ))
}

/// The `Set-Cookie` that removes the session cookie.
pub(super) fn clear(config: &Config, tenant: &TenantId) -> String {
    set_cookie(config, tenant, "", 0)
}

fn set_cookie(config: &Config, tenant: &TenantId, value: &str, max_age: i64) -> String {
    let secure = if config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(config, tenant)
    )
}
