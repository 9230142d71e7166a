//! Key-change notifications over Redis, when `REDIS_URL` is set: the replica that changes a
//! tenant's keys publishes the tenant id, and every replica drops that tenant from its key cache
//! at once. Without Redis (or while it is down) the 2 s `keys_version` poll still bounds
//! staleness, so a lost message costs at most that.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use shared::TenantId;

use super::KeyService;

const CHANNEL: &str = "provider:keys-changed";
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Publishes that `tenant`'s keys changed; failures are logged, never returned.
pub async fn publish(client: &redis::Client, tenant: &TenantId) {
    let send = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(tenant.as_str())
            .query_async::<i64>(&mut connection)
            .await
    };
    match tokio::time::timeout(PUBLISH_TIMEOUT, send).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "could not publish a key change"),
        Err(_) => tracing::warn!("publishing a key change timed out"),
    }
}

/// Listens for key changes until the process stops, reconnecting after failures. `listening`
/// is true while subscribed.
pub fn spawn_listener(
    client: redis::Client,
    keys: Arc<KeyService>,
    listening: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                    Ok(()) => {
                        listening.store(true, Ordering::SeqCst);
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let tenant = message.get_payload::<String>().ok();
                            if let Some(tenant) = tenant.and_then(|t| TenantId::parse(&t).ok()) {
                                keys.invalidate(&tenant);
                            }
                        }
                        listening.store(false, Ordering::SeqCst);
                        tracing::warn!("key-change subscription ended; reconnecting");
                    }
                    Err(err) => tracing::warn!(error = %err, "could not subscribe to key changes"),
                },
                Err(err) => tracing::warn!(error = %err, "could not connect for key changes"),
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    })
}
