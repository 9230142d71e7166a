//! Start-up: connect and migrate the database, open the instance secrets, and serve until a
//! shutdown signal, letting in-flight requests finish.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc};

use anyhow::{Context, anyhow};
use base64::{Engine, engine::general_purpose::STANDARD};
use tokio::net::TcpListener;

use crate::{
    clock::Clock,
    config::Config,
    crypto::{Keyring, Sealer, SecretDigester, SecretKind, random_bytes, random_secret},
    keys::KeyService,
    login::mail::Mailer,
    state::{AppState, Services},
    store::{Store, instance},
};

/// Connects to the database named by `DATABASE_URL` and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url).await.map_err(|e| {
        anyhow!(
            "DATABASE_URL: cannot connect to {:?}: {e}",
            config.database_url
        )
    })?;
    store
        .migrate()
        .await
        .map_err(|e| anyhow!("DATABASE_URL: migrations failed: {e}"))?;
    Ok(store)
}

/// Builds the state the router runs on.
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    crate::monitoring::handle();
    let store = open_store(&config).await?;
    let keyring = keyring(&config)?;
    let digester = SecretDigester::new(digest_key(&store, &keyring, clock.unix()).await?);
    let root_admin_digest = root_admin_digest(&config, &store, &digester, clock.unix()).await?;
    let digester = Arc::new(digester);
    store.seal_audit_as_written(digester.clone());
    let redis = config
        .redis_url
        .as_ref()
        .map(|url| redis::Client::open(url.expose().as_str()))
        .transpose()
        .context("REDIS_URL")?;
    let mail = Mailer::from_config(&config, keyring.clone())?;
    let sealer = Arc::new(keyring.clone());
    if let Some(mailer) = &mail {
        mailer.clone().spawn_sender(store.clone(), clock.clone());
    }
    let keys = Arc::new(KeyService::new(
        store.clone(),
        keyring,
        clock.clone(),
        redis.clone(),
    ));
    keys.listen();
    let limits = Arc::new(crate::limits::Limiter::new(
        config.rate_limits.clone(),
        clock.clone(),
        redis.clone(),
    ));
    let extra_roots = match &config.fetch_ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("FETCH_CA_FILE {}", path.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .unwrap_or_default();
            anyhow::ensure!(
                !roots.is_empty(),
                "FETCH_CA_FILE {} holds no PEM certificates",
                path.display()
            );
            roots
        }
        None => Vec::new(),
    };
    let fetcher =
        crate::fetch::Fetcher::new(config.client_metadata_allow_hosts.clone(), extra_roots)
            .context("the HTTP client for client metadata documents")?;
    let documents = Arc::new(crate::client_documents::ClientDocuments::new(fetcher));
    Ok(AppState::new(Services {
        config: Arc::new(config),
        store,
        clock,
        digester,
        keyring: sealer,
        keys,
        root_admin_digest: Arc::new(root_admin_digest),
        redis,
        mail,
        limits,
        documents,
        tenants: Arc::default(),
        clients: Arc::default(),
        metadata: Arc::default(),
    }))
}

/// The sealing keys: `KEY_ENCRYPTION_KEY` and, during its rotation, `KEY_ENCRYPTION_KEY_PREVIOUS`.
pub fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    let current = Sealer::new(&key_encryption_key(config)?);
    let previous = config
        .key_encryption_key_previous
        .as_ref()
        .map(|key| Sealer::new(key.expose()));
    Ok(Keyring::new(current, previous))
}

/// `KEY_ENCRYPTION_KEY`, or in dev mode a key kept in the data folder so restarts keep working.
fn key_encryption_key(config: &Config) -> anyhow::Result<[u8; 32]> {
    if let Some(key) = &config.key_encryption_key {
        return Ok(*key.expose());
    }
    if !config.dev {
        return Err(anyhow!(
            "KEY_ENCRYPTION_KEY: required outside dev mode (32 random bytes in base64, \
             e.g. from `openssl rand -base64 32`)"
        ));
    }
    let path = config.data_dir().join("dev-key-encryption-key");
    load_or_create_dev_key(&path)
        .with_context(|| format!("KEY_ENCRYPTION_KEY: dev key file {}", path.display()))
}

fn load_or_create_dev_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let bytes = STANDARD.decode(text.trim())?;
        return bytes.try_into().map_err(|_| anyhow!("not 32 bytes"));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key: [u8; 32] = random_bytes(32).try_into().map_err(|_| anyhow!("rng"))?;
    write_private(path, &STANDARD.encode(key))?;
    Ok(key)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

pub const DIGEST_KEY_AAD: &[u8] = b"instance:secret-digest-key";

/// The key of the secret digests, created sealed on first start; every replica reads the one
/// that won the insert.
/// The instance's digest key, for commands that check digests without serving.
pub async fn digester(config: &Config, store: &Store, now: i64) -> anyhow::Result<SecretDigester> {
    Ok(SecretDigester::new(
        digest_key(store, &keyring(config)?, now).await?,
    ))
}

async fn digest_key(store: &Store, sealer: &Keyring, now: i64) -> anyhow::Result<[u8; 32]> {
    let stored = match instance::get(store.reader(), instance::DIGEST_KEY).await? {
        Some(sealed) => sealed,
        None => {
            let sealed = sealer.seal(&random_bytes(32), DIGEST_KEY_AAD);
            let mut tx = store.begin().await?;
            instance::insert_if_absent(&mut *tx, instance::DIGEST_KEY, &sealed, now).await?;
            let stored = instance::get(&mut *tx, instance::DIGEST_KEY).await?;
            crate::store::commit(tx).await?;
            stored.ok_or_else(|| anyhow!("digest key vanished"))?
        }
    };
    let key = sealer.open(&stored, DIGEST_KEY_AAD).map_err(|_| {
        anyhow!(
            "KEY_ENCRYPTION_KEY: does not open this database's secrets (they were sealed with \
             key {}, this key is {})",
            Sealer::sealed_key_id(&stored).unwrap_or_default(),
            sealer.current_key_id()
        )
    })?;
    key.try_into()
        .map_err(|_| anyhow!("stored digest key is not 32 bytes"))
}

/// The root admin secret's digest: from `ADMIN_SECRET`, or generated once, printed once and
/// stored only as a digest.
async fn root_admin_digest(
    config: &Config,
    store: &Store,
    digester: &SecretDigester,
    now: i64,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.admin_secret {
        return Ok(digester.digest(SecretKind::RootAdmin, secret.expose()));
    }
    if let Some(digest) = instance::get(store.reader(), instance::ROOT_ADMIN_DIGEST).await? {
        return Ok(digest);
    }
    let secret = random_secret();
    let digest = digester.digest(SecretKind::RootAdmin, &secret);
    let mut tx = store.begin().await?;
    let inserted =
        instance::insert_if_absent(&mut *tx, instance::ROOT_ADMIN_DIGEST, &digest, now).await?;
    let stored = instance::get(&mut *tx, instance::ROOT_ADMIN_DIGEST).await?;
    crate::store::commit(tx).await?;
    if inserted {
        // Printed once, on the console only; it is never logged or stored in the clear.
        println!(
            "Root admin secret (shown once, store it now; set ADMIN_SECRET to choose your own):\n  \
             {secret}"
        );
    }
    stored.ok_or_else(|| anyhow!("root admin digest vanished"))
}

/// Serves `state` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::http::app(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
