//! One lazily opened, self-reconnecting Redis connection for the state replicas share (browser
//! sessions, rate limits, replay caches). Connecting waits for nothing at start-up, and every
//! attempt and command is bounded, so a Redis that is down answers quickly with an error.

use std::{sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

const TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct SharedRedis {
    client: redis::Client,
    connection: Arc<OnceCell<ConnectionManager>>,
}

impl std::fmt::Debug for SharedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedRedis")
    }
}

impl SharedRedis {
    pub fn new(client: redis::Client) -> Self {
        Self {
            client,
            connection: Arc::new(OnceCell::new()),
        }
    }

    /// The connection, opened on first use (retried on the next call if that fails).
    pub async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
    }
}
