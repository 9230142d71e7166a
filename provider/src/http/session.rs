//! Single sign-on. The browser holds one tower-sessions session (cookie `__Host-session` over
//! https, `session` over http; HttpOnly, SameSite=Lax; records in Redis or the database, see
//! `session_store`). It names, per tenant, a sign-in: a `browser_sessions` row found by the keyed
//! digest of a random id. The row is the source of truth, so an administrator can end every
//! sign-in of one user of one tenant, and idle and absolute timeouts are checked against it.
//! The session id changes at every sign-in.

use std::collections::BTreeMap;

use shared::TenantId;
use tower_sessions::{Expiry, Session, SessionManagerLayer, cookie::SameSite};

use crate::{
    crypto::{SecretKind, random_secret},
    http::session_store::WebSessionStore,
    state::AppState,
    store::{
        StoreError, StoreResult, Tx,
        sessions::{self, BrowserSession},
        users::{self, UserStatus},
    },
};

/// A session unused for this long is over.
pub(crate) const IDLE_SECS: i64 = 8 * 3600;
/// A session is over this long after sign-in, used or not.
pub(crate) const ABSOLUTE_SECS: i64 = 7 * 24 * 3600;

/// The session key holding the browser's sign-ins: tenant id to sign-in id.
const SIGN_INS: &str = "sign_ins";

type SignIns = BTreeMap<String, String>;

/// The session middleware for the pages that sign people in and out.
pub(super) fn layer(state: &AppState) -> SessionManagerLayer<WebSessionStore> {
    let https = state.config.public_url.starts_with("https://");
    let store = WebSessionStore::new(
        state.store.clone(),
        state.redis.clone(),
        state.digester.clone(),
        state.clock.clone(),
    );
    SessionManagerLayer::new(store)
        .with_name(if https { "__Host-session" } else { "session" })
        .with_secure(https)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(ABSOLUTE_SECS)))
}

fn unavailable(err: tower_sessions::session::Error) -> StoreError {
    tracing::warn!(error = %err, "session store unavailable");
    StoreError::Busy
}

async fn sign_ins(web: &Session) -> StoreResult<SignIns> {
    Ok(web
        .get::<SignIns>(SIGN_INS)
        .await
        .map_err(unavailable)?
        .unwrap_or_default())
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
    web: &Session,
) -> StoreResult<Option<(Vec<u8>, BrowserSession)>> {
    let Some(sid) = sign_ins(web).await?.remove(tenant.as_str()) else {
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

/// Records a sign-in inside the sign-in transaction; returns its id (for `remember`) and digest,
/// which the grant records.
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
    Ok((sid, sid_digest))
}

/// Puts a committed sign-in in the browser's session, under a new session id (no fixation).
pub(super) async fn remember(web: &Session, tenant: &TenantId, sid: String) -> StoreResult<()> {
    let mut signed_in = sign_ins(web).await?;
    signed_in.insert(tenant.as_str().to_owned(), sid);
    web.insert(SIGN_INS, signed_in).await.map_err(unavailable)?;
    web.cycle_id().await.map_err(unavailable)
}

/// Takes the tenant's sign-in out of the browser's session; an empty session is deleted.
pub(super) async fn forget(web: &Session, tenant: &TenantId) -> StoreResult<()> {
    let mut signed_in = sign_ins(web).await?;
    if signed_in.remove(tenant.as_str()).is_none() {
        return Ok(());
    }
    if signed_in.is_empty() {
        web.flush().await.map_err(unavailable)
    } else {
        web.insert(SIGN_INS, signed_in).await.map_err(unavailable)
    }
}
