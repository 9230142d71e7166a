//! `AppState`: everything a handler needs, cheap to clone (one `Arc`).

use std::sync::Arc;

use axum::body::Bytes;
use shared::TenantId;

use crate::{
    cache::Cache,
    clock::Clock,
    config::Config,
    crypto::{Keyring, SecretDigester, SecretKind},
    keys::KeyService,
    login::mail::Mailer,
    store::{
        Store, StoreResult,
        clients::{self, Client},
        tenants::{self, Tenant},
    },
};

/// What every handler shares, behind one `Arc`: every middleware and extractor clones the
/// state, so a clone is one count, not one per field.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

#[derive(Debug)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub digester: Arc<SecretDigester>,
    /// Seals values kept for a moment at rest (refresh responses held for a retry).
    pub keyring: Arc<Keyring>,
    pub keys: Arc<KeyService>,
    /// Keyed digest of the root admin secret (from `ADMIN_SECRET` or generated at first start).
    pub root_admin_digest: Arc<Vec<u8>>,
    pub redis: Option<redis::Client>,
    /// Queues and sends sign-in mail; `None` when neither SMTP nor dev mode is configured.
    pub mail: Option<Mailer>,
    pub limits: Arc<crate::limits::Limiter>,
    /// Clients known by their metadata document's URL.
    pub documents: Arc<crate::client_documents::ClientDocuments>,
    pub tenants: Arc<Cache<TenantId, Tenant>>,
    pub clients: Arc<Cache<(TenantId, String), Client>>,
    /// Each tenant's discovery document as served, with the two settings it was rendered for
    /// (`require_par`, open registration).
    pub metadata: Arc<Cache<TenantId, (bool, bool, Bytes)>>,
}

impl AppState {
    /// The tenant, from the cache when fresh (protocol endpoints; admin reads the store).
    pub async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let now = self.clock.unix_ms();
        if let Some(tenant) = self.tenants.get(id, now) {
            return Ok(Some(tenant));
        }
        let tenant = tenants::get(self.store.reader(), id).await?;
        if let Some(tenant) = &tenant {
            self.tenants.put(id.clone(), tenant.clone(), now);
        }
        Ok(tenant)
    }

    /// The client, from the cache when fresh (protocol endpoints; admin reads the store).
    pub async fn client(&self, tenant: &TenantId, client_id: &str) -> StoreResult<Option<Client>> {
        let now = self.clock.unix_ms();
        let key = (tenant.clone(), client_id.to_owned());
        if let Some(client) = self.clients.get(&key, now) {
            return Ok(Some(client));
        }
        let client = clients::get(self.store.reader(), tenant, client_id).await?;
        if let Some(client) = &client {
            self.clients.put(key, client.clone(), now);
            return Ok(Some(client.clone()));
        }
        // A URL names a client metadata document, unless the tenant takes no registrations.
        if crate::oauth::metadata_document::is_document_url(client_id)
            && self
                .tenant(tenant)
                .await?
                .is_some_and(|t| t.registration_policy != "closed")
        {
            return Ok(self.documents.client(client_id, now).await);
        }
        Ok(None)
    }

    /// Drops a changed client from this process's cache.
    pub fn forget_client(&self, tenant: &TenantId, client_id: &str) {
        self.clients.forget(&(tenant.clone(), client_id.to_owned()));
    }

    /// Whether `presented` is the root admin secret, compared in constant time.
    pub fn is_root_secret(&self, presented: &str) -> bool {
        self.digester
            .verify(SecretKind::RootAdmin, presented, &self.root_admin_digest)
    }
}
