//! The audit writer: who did what, from where, recorded in the same transaction as the change.
//! Rows never carry a secret, a raw token or a link; emails only where the event is about that
//! address.

pub mod chain;
pub mod file;

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderValue, header::USER_AGENT, request::Parts},
};
use serde_json::Value;
use sqlx::{Any, Executor};

use crate::{
    clock::Clock,
    http::request_id::RequestId,
    store::{StoreResult, audit::AuditRow},
};

/// The bucket for events that belong to no tenant, such as a failed root admin login. Tenant
/// ids cannot start with `_`, so it never collides with one.
pub const SYSTEM_TENANT: &str = "_system";

const MAX_USER_AGENT: usize = 512;

/// Where a request came from, as the audit trail records it.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestMeta {
    pub fn new(
        ip: Option<IpAddr>,
        user_agent: Option<&HeaderValue>,
        request_id: Option<&RequestId>,
    ) -> Self {
        Self {
            ip,
            user_agent: user_agent
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
            request_id: request_id.map(|id| id.as_str().to_owned()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<crate::http::client_ip::ClientIp>()
            .map(|ip| ip.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(addr)| addr.ip())
            });
        Ok(Self::new(
            ip,
            parts.headers.get(USER_AGENT),
            parts.extensions.get::<RequestId>(),
        ))
    }
}

/// One event to record.
#[derive(Clone, Debug)]
pub struct AuditEvent<'a> {
    pub event: &'static str,
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub details: Value,
}

impl<'a> AuditEvent<'a> {
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            client_id: None,
            user_id: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn client(mut self, client_id: &'a str) -> Self {
        self.client_id = Some(client_id);
        self
    }

    pub fn user(mut self, user_id: &'a str) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The row that records `event` for `tenant_id`, to write with the change it describes.
pub fn row(
    clock: &dyn Clock,
    tenant_id: &str,
    meta: &RequestMeta,
    event: AuditEvent<'_>,
) -> AuditRow {
    AuditRow {
        tenant_id: tenant_id.to_owned(),
        occurred_at_ms: clock.unix_ms(),
        event: event.event.to_owned(),
        client_id: event.client_id.map(str::to_owned),
        user_id: event.user_id.map(str::to_owned),
        ip: meta.ip.map(|ip| ip.to_string()),
        user_agent: meta.user_agent.clone(),
        request_id: meta.request_id.clone(),
        details: event.details.to_string(),
    }
}

/// Writes `event` for `tenant_id` when there is no change to record it with, sharing a commit
/// with concurrent requests' writes (`store::group_commit`); returns once it is durable.
pub async fn record_alone(
    store: &crate::store::Store,
    clock: &dyn Clock,
    tenant_id: &str,
    meta: &RequestMeta,
    event: AuditEvent<'_>,
) -> StoreResult<()> {
    store.append_audit(row(clock, tenant_id, meta, event)).await
}

/// Writes `event` for `tenant_id`; pass the transaction of the change it describes.
pub async fn record<'e>(
    db: impl Executor<'e, Database = Any>,
    clock: &dyn Clock,
    tenant_id: &str,
    meta: &RequestMeta,
    event: AuditEvent<'_>,
) -> StoreResult<()> {
    crate::store::audit::insert(db, &row(clock, tenant_id, meta, event)).await
}
