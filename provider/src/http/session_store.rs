//! Where tower-sessions keeps browser session records: Redis when `REDIS_URL` is set (shared by
//! every replica, expiring by itself), else the `web_sessions` table. Either way a record is
//! found by the keyed digest of the cookie's id, so the store alone cannot forge a cookie.

use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, Result},
};

use crate::{
    clock::Clock,
    crypto::{SecretDigester, SecretKind},
    redis_conn::SharedRedis,
    store::{Store, web_sessions},
};

#[derive(Clone, Debug)]
pub(crate) struct WebSessionStore {
    digester: Arc<SecretDigester>,
    clock: Arc<dyn Clock>,
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Database(Store),
    Redis(SharedRedis),
}

impl WebSessionStore {
    pub(crate) fn new(
        store: Store,
        redis: Option<redis::Client>,
        digester: Arc<SecretDigester>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let backend = match redis {
            Some(client) => Backend::Redis(SharedRedis::new(client)),
            None => Backend::Database(store),
        };
        Self {
            digester,
            clock,
            backend,
        }
    }

    fn key(&self, id: &Id) -> Vec<u8> {
        self.digester
            .digest(SecretKind::WebSession, &id.to_string())
    }

    /// Writes the record; with `only_new`, false when its id is already taken.
    async fn write(&self, record: &Record, only_new: bool) -> Result<bool> {
        let key = self.key(&record.id);
        let expires_at = record.expiry_date.unix_timestamp();
        let stored = Stored {
            data: record.data.clone(),
            expires_at,
        };
        let data = serde_json::to_string(&stored).map_err(|e| Error::Encode(e.to_string()))?;
        match &self.backend {
            Backend::Database(store) => {
                let db = store.writer();
                let written = if only_new {
                    web_sessions::create(db, &key, &data, expires_at).await
                } else {
                    web_sessions::save(db, &key, &data, expires_at)
                        .await
                        .map(|()| true)
                };
                written.map_err(backend_error)
            }
            Backend::Redis(redis) => {
                let ttl = (expires_at - self.clock.unix()).max(1);
                let mut options = redis::SetOptions::default()
                    .with_expiration(redis::SetExpiry::EX(ttl.unsigned_abs()));
                if only_new {
                    options = options.conditional_set(redis::ExistenceCheck::NX);
                }
                let mut connection = redis.connection().await.map_err(backend_error)?;
                let reply: Option<String> = connection
                    .set_options(redis_key(&key), data, options)
                    .await
                    .map_err(backend_error)?;
                Ok(reply.is_some())
            }
        }
    }
}

/// A record as kept: its data and when it expires.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    data: std::collections::HashMap<String, serde_json::Value>,
    expires_at: i64,
}

fn redis_key(digest: &[u8]) -> String {
    format!("web_session:{}", crate::crypto::hex(digest))
}

fn backend_error(err: impl std::fmt::Display) -> Error {
    Error::Backend(err.to_string())
}

#[async_trait]
impl SessionStore for WebSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A 128-bit id collides practically never; draw again if it does.
        while !self.write(record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.write(record, false).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let key = self.key(id);
        let data = match &self.backend {
            Backend::Database(store) => web_sessions::load(store.reader(), &key, self.clock.unix())
                .await
                .map_err(backend_error)?,
            Backend::Redis(redis) => {
                let mut connection = redis.connection().await.map_err(backend_error)?;
                connection
                    .get(redis_key(&key))
                    .await
                    .map_err(backend_error)?
            }
        };
        let Some(data) = data else {
            return Ok(None);
        };
        let stored: Stored =
            serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(stored.expires_at)
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data: stored.data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let key = self.key(id);
        match &self.backend {
            Backend::Database(store) => web_sessions::delete(store.writer(), &key)
                .await
                .map_err(backend_error),
            Backend::Redis(redis) => {
                let mut connection = redis.connection().await.map_err(backend_error)?;
                let _: i64 = connection
                    .del(redis_key(&key))
                    .await
                    .map_err(backend_error)?;
                Ok(())
            }
        }
    }
}
