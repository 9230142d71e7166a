//! Clients known by their metadata document's URL: fetched through the guarded fetcher on
//! first use and cached as the document's `Cache-Control` says, between one minute and a day.
//! A URL that failed is not fetched again for a minute, so requests naming it cannot make this
//! server hammer someone else's.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use crate::{fetch::Fetcher, oauth::metadata_document, store::clients::Client};

const MIN_CACHE: Duration = Duration::from_secs(60);
const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// Past this many documents the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct ClientDocuments {
    fetcher: Fetcher,
    /// Per URL: until when the entry holds, and the client (`None`: the fetch failed).
    cache: Mutex<HashMap<String, (i64, Option<Client>)>>,
}

impl ClientDocuments {
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            cache: Mutex::default(),
        }
    }

    /// The client whose document is at `url`, or `None` when it cannot be fetched or does not
    /// qualify (logged, and remembered for a minute).
    pub async fn client(&self, url: &str, now_ms: i64) -> Option<Client> {
        if let Ok(cache) = self.cache.lock()
            && let Some((expires, client)) = cache.get(url)
            && *expires > now_ms
        {
            return client.clone();
        }
        let client = self.fetch(url, now_ms).await;
        let keep = match &client {
            Some((_, keep)) => *keep,
            None => MIN_CACHE,
        };
        let client = client.map(|(client, _)| client);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            let expires = now_ms + i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            cache.insert(url.to_owned(), (expires, client.clone()));
        }
        client
    }

    /// Fetches and checks the document; the client and how long to keep it.
    async fn fetch(&self, url: &str, now_ms: i64) -> Option<(Client, Duration)> {
        let parsed = url::Url::parse(url).ok()?;
        let fetched = match self.fetcher.json(&parsed).await {
            Ok(fetched) => fetched,
            Err(why) => {
                tracing::info!(client_id = url, why, "client metadata document not fetched");
                return None;
            }
        };
        let client = match metadata_document::client_from(url, fetched.json, now_ms / 1000) {
            Ok(client) => client,
            Err(why) => {
                tracing::info!(client_id = url, why, "client metadata document refused");
                return None;
            }
        };
        let keep = fetched
            .max_age
            .unwrap_or(DEFAULT_CACHE)
            .clamp(MIN_CACHE, MAX_CACHE);
        Some((client, keep))
    }
}
