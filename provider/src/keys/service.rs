//! The key service: key transitions (each in one transaction with its audit rows), an in-memory
//! cache per tenant, JWKS, signing and signature verification.
//!
//! Cache bound: a change made through this process is seen at once; one made through another
//! replica is seen within `REFRESH_MS`, when a cached tenant next checks its `keys_version`.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use axum::body::Bytes;
use josekit::{
    jwk::Jwk,
    jws::{JwsHeader, JwsSigner, JwsVerifier},
    jwt::{self, JwtPayload},
};
use serde_json::{Map, Value, json};
use shared::TenantId;

use super::{
    lifecycle::{self, Change, KeyRecord, KeyState, LifecycleError},
    material::{self, Alg},
};
use crate::{
    audit::{self, AuditEvent, RequestMeta},
    clock::Clock,
    crypto::Keyring,
    store::{self, Store, StoreError, Tx, keys as key_store},
};

/// How often a cached tenant asks the database whether its keys changed elsewhere.
pub const REFRESH_MS: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("the tenant has no active signing key")]
    NoActiveKey,
    #[error("key material: {0}")]
    Material(String),
}

impl From<josekit::JoseError> for KeyError {
    fn from(err: josekit::JoseError) -> Self {
        Self::Material(err.to_string())
    }
}

/// Why a signature was not accepted. Callers answer all of these alike (`invalid_token`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("header refused: {0}")]
    UnsafeHeader(&'static str),
    #[error("no verification key with that kid")]
    UnknownKey,
    #[error("signature or algorithm does not match the key")]
    BadSignature,
    #[error("keys unavailable")]
    Unavailable,
}

/// A key as the admin API shows it.
#[derive(Clone, Debug)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

struct LoadedKey {
    record: KeyRecord,
    public_jwk: Jwk,
    verifier: Box<dyn JwsVerifier>,
}

/// One tenant's keys as cached: every key not revoked, and the signer of the active one.
struct TenantKeys {
    version: i64,
    checked_at_ms: AtomicI64,
    keys: Vec<LoadedKey>,
    signer: Option<Box<dyn JwsSigner>>,
    /// The JWK Set as last served, and the second it was rendered for.
    jwks: RwLock<Option<(i64, Bytes)>>,
}

pub struct KeyService {
    store: Store,
    sealer: Keyring,
    clock: Arc<dyn Clock>,
    cache: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
    /// Redis, to tell other replicas about key changes at once (see `notify`).
    notifier: Option<redis::Client>,
    /// Whether this replica is subscribed to other replicas' key changes.
    listening: Arc<AtomicBool>,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

/// Associated data binding a sealed private key to its tenant and kid.
pub fn aad(tenant: &TenantId, kid: &str) -> Vec<u8> {
    format!("signing-key:{tenant}:{kid}").into_bytes()
}

fn record_of(key: &key_store::StoredKey) -> Result<KeyRecord, KeyError> {
    Ok(KeyRecord {
        kid: key.kid.clone(),
        state: KeyState::parse(&key.state)
            .ok_or_else(|| StoreError::Corrupt(format!("key state {}", key.state)))?,
        created_at: key.created_at,
        activated_at: key.activated_at,
        retired_at: key.retired_at,
    })
}

fn alg_of(key: &key_store::StoredKey) -> Result<Alg, KeyError> {
    Alg::parse(&key.alg).ok_or_else(|| StoreError::Corrupt(format!("key alg {}", key.alg)).into())
}

impl KeyService {
    pub fn new(
        store: Store,
        sealer: Keyring,
        clock: Arc<dyn Clock>,
        notifier: Option<redis::Client>,
    ) -> Self {
        Self {
            store,
            sealer,
            clock,
            cache: RwLock::new(HashMap::new()),
            notifier,
            listening: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts listening for other replicas' key changes, when Redis is configured.
    pub fn listen(self: &Arc<Self>) {
        if let Some(client) = &self.notifier {
            super::notify::spawn_listener(client.clone(), self.clone(), self.listening.clone());
        }
    }

    /// Whether key changes made elsewhere reach this replica at once (subscribed over Redis).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// After a committed change: drop the local cache entry and tell the other replicas.
    async fn changed(&self, tenant: &TenantId) {
        self.invalidate(tenant);
        if let Some(client) = &self.notifier {
            super::notify::publish(client, tenant).await;
        }
    }

    fn new_stored_key(
        &self,
        tenant: &TenantId,
        alg: Alg,
        state: KeyState,
    ) -> Result<key_store::StoredKey, KeyError> {
        let key = material::generate(alg)?;
        let now = self.clock.unix();
        Ok(key_store::StoredKey {
            private_key: self.sealer.seal(&key.private_der, &aad(tenant, &key.kid)),
            public_jwk: key.public_jwk.to_string(),
            kid: key.kid,
            alg: alg.as_str().to_owned(),
            state: state.as_str().to_owned(),
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
            revoked_at: None,
        })
    }

    /// A new tenant's keys, inside the transaction that creates it: one active, one staged.
    pub async fn create_initial(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        meta: &RequestMeta,
    ) -> Result<(), KeyError> {
        for state in [KeyState::Active, KeyState::Staged] {
            let key = self.new_stored_key(tenant, Alg::Es256, state)?;
            key_store::insert(&mut **tx, tenant, &key).await?;
            let event = if state == KeyState::Active {
                "key.activated"
            } else {
                "key.staged"
            };
            let details = json!({ "kid": key.kid, "alg": key.alg, "reason": "tenant_created" });
            audit::record(
                &mut **tx,
                self.clock.as_ref(),
                tenant.as_str(),
                meta,
                AuditEvent::new(event).details(details),
            )
            .await?;
        }
        Ok(())
    }

    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<KeyView>, KeyError> {
        key_store::list(self.store.reader(), tenant)
            .await?
            .iter()
            .map(|k| {
                Ok(KeyView {
                    state: record_of(k)?.state,
                    kid: k.kid.clone(),
                    alg: k.alg.clone(),
                    created_at: k.created_at,
                    activated_at: k.activated_at,
                    retired_at: k.retired_at,
                    revoked_at: k.revoked_at,
                })
            })
            .collect()
    }

    /// Stages a new key: published in JWKS at once, signing only once activated.
    pub async fn stage(
        &self,
        tenant: &TenantId,
        alg: Alg,
        meta: &RequestMeta,
    ) -> Result<String, KeyError> {
        let key = self.new_stored_key(tenant, alg, KeyState::Staged)?;
        let mut tx = self.store.begin().await?;
        key_store::lock_and_bump(&mut *tx, tenant).await?;
        key_store::insert(&mut *tx, tenant, &key).await?;
        let details = json!({ "kid": key.kid, "alg": key.alg });
        audit::record(
            &mut *tx,
            self.clock.as_ref(),
            tenant.as_str(),
            meta,
            AuditEvent::new("key.staged").details(details),
        )
        .await?;
        store::commit(tx).await?;
        self.changed(tenant).await;
        Ok(key.kid)
    }

    /// Activates a staged key; the active key retires. `force` skips the publish-window check
    /// and is recorded in the audit row.
    pub async fn activate(
        &self,
        tenant: &TenantId,
        kid: &str,
        force: bool,
        meta: &RequestMeta,
    ) -> Result<(), KeyError> {
        let now = self.clock.unix();
        self.transition(tenant, meta, json!({ "forced": force }), |keys| {
            lifecycle::activate(keys, kid, now, force)
        })
        .await?;
        Ok(())
    }

    /// Revokes one key, or every active key when `kid` is `None`. Returns the revoked kids.
    pub async fn revoke(
        &self,
        tenant: &TenantId,
        kid: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, KeyError> {
        let applied = self
            .transition(tenant, meta, json!({}), |keys| {
                let kids: Vec<String> = match kid {
                    Some(kid) => vec![kid.to_owned()],
                    None => keys
                        .iter()
                        .filter(|k| k.state == KeyState::Active)
                        .map(|k| k.kid.clone())
                        .collect(),
                };
                lifecycle::revoke(keys, &kids)
            })
            .await?;
        Ok(applied
            .into_iter()
            .filter(|(_, state)| *state == KeyState::Revoked)
            .map(|(kid, _)| kid)
            .collect())
    }

    /// Runs one lifecycle decision under the tenant's key lock and applies its changes, each
    /// with an audit row, in one transaction. Returns each changed kid with its new state.
    async fn transition(
        &self,
        tenant: &TenantId,
        meta: &RequestMeta,
        extra: Value,
        decide: impl FnOnce(&[KeyRecord]) -> Result<Vec<Change>, LifecycleError>,
    ) -> Result<Vec<(String, KeyState)>, KeyError> {
        let now = self.clock.unix();
        let mut tx = self.store.begin().await?;
        key_store::lock_and_bump(&mut *tx, tenant).await?;
        let stored = key_store::list(&mut *tx, tenant).await?;
        let records = stored
            .iter()
            .map(record_of)
            .collect::<Result<Vec<_>, _>>()?;
        let mut applied = Vec::new();
        for change in decide(&records)? {
            let (kid, state) = match change {
                Change::Set { kid, to } => {
                    key_store::set_state(&mut *tx, tenant, &kid, to.as_str(), now).await?;
                    (kid, Some(to))
                }
                Change::Create { state } => {
                    let key = self.new_stored_key(tenant, Alg::Es256, state)?;
                    key_store::insert(&mut *tx, tenant, &key).await?;
                    (key.kid, Some(state))
                }
                Change::Purge { kid } => {
                    key_store::delete(&mut *tx, tenant, &kid).await?;
                    (kid, None)
                }
            };
            let event = match state {
                Some(KeyState::Staged) => "key.staged",
                Some(KeyState::Active) => "key.activated",
                Some(KeyState::Retired) => "key.retired",
                Some(KeyState::Revoked) => "key.revoked",
                None => "key.purged",
            };
            let mut details = json!({ "kid": kid });
            if state == Some(KeyState::Active)
                && let (Some(target), Some(extra)) = (details.as_object_mut(), extra.as_object())
            {
                target.extend(extra.clone());
            }
            audit::record(
                &mut *tx,
                self.clock.as_ref(),
                tenant.as_str(),
                meta,
                AuditEvent::new(event).details(details),
            )
            .await?;
            if let Some(state) = state {
                applied.push((kid, state));
            }
        }
        store::commit(tx).await?;
        self.changed(tenant).await;
        for (kid, _) in applied.iter().filter(|(_, s)| *s == KeyState::Revoked) {
            crate::reporting::security_event(
                "signing key revoked",
                &[
                    ("event", "key.revoked"),
                    ("tenant", tenant.as_str()),
                    ("kid", kid),
                ],
            );
        }
        Ok(applied)
    }

    /// One step of scheduled rotation for `tenant` (see `lifecycle::scheduled`). Decided first
    /// without the lock, so idle tenants cost one read; decided again under the lock, so any
    /// number of replicas running this at once apply it once. Returns the changes applied.
    pub async fn rotate_if_due(&self, tenant: &TenantId, period: i64) -> Result<usize, KeyError> {
        let stored = key_store::list(self.store.reader(), tenant).await?;
        let records = stored
            .iter()
            .map(record_of)
            .collect::<Result<Vec<_>, _>>()?;
        if lifecycle::scheduled(&records, self.clock.unix(), period).is_empty() {
            return Ok(0);
        }
        let now = self.clock.unix();
        let meta = RequestMeta::default();
        let reason = json!({ "reason": "scheduled" });
        let mut changed = 0;
        self.transition(tenant, &meta, reason, |keys| {
            let changes = lifecycle::scheduled(keys, now, period);
            changed = changes.len();
            Ok(changes)
        })
        .await?;
        Ok(changed)
    }

    pub fn invalidate(&self, tenant: &TenantId) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(tenant);
        }
    }

    async fn load(&self, tenant: &TenantId) -> Result<Arc<TenantKeys>, KeyError> {
        let now_ms = self.clock.unix_ms();
        let cached = self.cache.read().ok().and_then(|c| c.get(tenant).cloned());
        if let Some(keys) = &cached {
            if now_ms - keys.checked_at_ms.load(Ordering::Relaxed) < REFRESH_MS {
                return Ok(keys.clone());
            }
            let version = key_store::version(self.store.reader(), tenant).await?;
            if version == Some(keys.version) {
                keys.checked_at_ms.store(now_ms, Ordering::Relaxed);
                return Ok(keys.clone());
            }
        }
        let version = key_store::version(self.store.reader(), tenant)
            .await?
            .ok_or(StoreError::NotFound)?;
        let stored = key_store::list(self.store.reader(), tenant).await?;
        let mut keys = Vec::new();
        let mut signer = None;
        for key in &stored {
            let record = record_of(key)?;
            if record.state == KeyState::Revoked {
                continue;
            }
            let alg = alg_of(key)?;
            let public_jwk = Jwk::from_bytes(key.public_jwk.as_bytes())?;
            if record.state == KeyState::Active {
                let der = self
                    .sealer
                    .open(&key.private_key, &aad(tenant, &key.kid))
                    .map_err(|e| KeyError::Material(e.to_string()))?;
                signer = Some(material::signer(alg, &der, &key.kid)?);
            }
            let verifier = material::verifier(alg, &public_jwk)?;
            keys.push(LoadedKey {
                record,
                public_jwk,
                verifier,
            });
        }
        let loaded = Arc::new(TenantKeys {
            version,
            checked_at_ms: AtomicI64::new(now_ms),
            keys,
            signer,
            jwks: RwLock::new(None),
        });
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(tenant.clone(), loaded.clone());
        }
        Ok(loaded)
    }

    /// The tenant's JWK Set, as JSON: staged, active and still-published retired keys. What is
    /// published changes only with the keys and with time, so it is rendered once a second at
    /// most rather than for every request.
    pub async fn jwks(&self, tenant: &TenantId) -> Result<Bytes, KeyError> {
        let keys = self.load(tenant).await?;
        let now = self.clock.unix();
        let rendered = keys.jwks.read().ok().and_then(|jwks| jwks.clone());
        if let Some((at, body)) = rendered
            && at == now
        {
            return Ok(body);
        }
        let published: Vec<Value> = keys
            .keys
            .iter()
            .filter(|k| k.record.is_published(now))
            .map(|k| Value::Object(k.public_jwk.as_ref().clone()))
            .collect();
        let body = Bytes::from(json!({ "keys": published }).to_string());
        if let Ok(mut jwks) = keys.jwks.write() {
            *jwks = Some((now, body.clone()));
        }
        Ok(body)
    }

    /// The algorithm of the tenant's active key (it picks the `at_hash` hash of ID tokens).
    pub async fn active_alg(&self, tenant: &TenantId) -> Result<Alg, KeyError> {
        let keys = self.load(tenant).await?;
        let signer = keys.signer.as_ref().ok_or(KeyError::NoActiveKey)?;
        Alg::parse(signer.algorithm().name()).ok_or(KeyError::NoActiveKey)
    }

    /// Signs `claims` with the tenant's active key, with `typ` in the header.
    pub async fn sign(
        &self,
        tenant: &TenantId,
        claims: Map<String, Value>,
        typ: &str,
    ) -> Result<String, KeyError> {
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        self.sign_with_header(tenant, claims, header).await
    }

    /// Signs with the tenant's active key under `header` (alg and kid are set from the key).
    pub async fn sign_with_header(
        &self,
        tenant: &TenantId,
        claims: Map<String, Value>,
        header: JwsHeader,
    ) -> Result<String, KeyError> {
        let keys = self.load(tenant).await?;
        let signer = keys.signer.as_ref().ok_or(KeyError::NoActiveKey)?;
        let payload = JwtPayload::from_map(claims)?;
        Ok(jwt::encode_with_signer(&payload, &header, signer.as_ref())?)
    }

    /// Checks a compact JWS against the tenant's keys: the key is chosen by kid among keys that
    /// may still verify, the header alg must be the key's, and headers that point elsewhere for
    /// keys are refused. Claims are the caller's to check.
    pub async fn verify(
        &self,
        tenant: &TenantId,
        token: &str,
    ) -> Result<(Map<String, Value>, JwsHeader), SignatureError> {
        let header = jwt::decode_header(token).map_err(|_| SignatureError::Malformed)?;
        for refused in ["jku", "x5u", "jwk", "x5c", "crit"] {
            if header.claim(refused).is_some() {
                return Err(SignatureError::UnsafeHeader(refused));
            }
        }
        let alg = header
            .claim("alg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if alg == "none" || alg.starts_with("HS") {
            return Err(SignatureError::UnsafeHeader("alg"));
        }
        let kid = header
            .claim("kid")
            .and_then(Value::as_str)
            .ok_or(SignatureError::UnknownKey)?;
        let keys = self.load(tenant).await.map_err(|err| match err {
            KeyError::Store(StoreError::NotFound) => SignatureError::UnknownKey,
            _ => SignatureError::Unavailable,
        })?;
        let now = self.clock.unix();
        let key = keys
            .keys
            .iter()
            .find(|k| k.record.kid == kid && k.record.may_verify(now))
            .ok_or(SignatureError::UnknownKey)?;
        let (payload, header) = jwt::decode_with_verifier(token, key.verifier.as_ref())
            .map_err(|_| SignatureError::BadSignature)?;
        Ok((payload.claims_set().clone(), header))
    }
}
