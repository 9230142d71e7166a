//! `AppState`: everything a handler needs, cheap to clone (`Arc`s and pools inside).

use std::sync::Arc;

use crate::{
    clock::Clock,
    config::Config,
    crypto::{SecretDigester, SecretKind},
    keys::KeyService,
    store::Store,
};

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub digester: Arc<SecretDigester>,
    pub keys: Arc<KeyService>,
    /// Keyed digest of the root admin secret (from `ADMIN_SECRET` or generated at first start).
    pub root_admin_digest: Arc<Vec<u8>>,
    pub redis: Option<redis::Client>,
}

impl AppState {
    /// Whether `presented` is the root admin secret, compared in constant time.
    pub fn is_root_secret(&self, presented: &str) -> bool {
        self.digester
            .verify(SecretKind::RootAdmin, presented, &self.root_admin_digest)
    }
}
