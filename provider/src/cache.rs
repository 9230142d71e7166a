//! A read-through cache with a freshness bound, for rows nearly every protocol request reads
//! (tenants, clients). A change made through this process invalidates its entry at once; one
//! made through another replica is seen within `FRESH_MS`. Misses are not cached, so unknown
//! ids cannot fill it.

use std::{collections::HashMap, hash::Hash, sync::RwLock};

/// How long a cached row is trusted before it is read again.
pub const FRESH_MS: i64 = 2_000;
/// Past this many entries the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct Cache<K, V> {
    entries: RwLock<HashMap<K, (i64, V)>>,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// The cached value, if it was loaded less than `FRESH_MS` before `now_ms`.
    pub fn get(&self, key: &K, now_ms: i64) -> Option<V> {
        let entries = self.entries.read().ok()?;
        let (loaded_at, value) = entries.get(key)?;
        (now_ms - loaded_at < FRESH_MS).then(|| value.clone())
    }

    pub fn put(&self, key: K, value: V, now_ms: i64) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (now_ms, value));
        }
    }

    pub fn forget(&self, key: &K) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_bound_and_can_be_forgotten() {
        let cache = Cache::default();
        cache.put("a", 1, 0);
        assert_eq!(cache.get(&"a", FRESH_MS - 1), Some(1));
        assert_eq!(cache.get(&"a", FRESH_MS), None);
        cache.put("a", 2, 10);
        cache.forget(&"a");
        assert_eq!(cache.get(&"a", 11), None);
        assert_eq!(cache.get(&"b", 0), None);
    }
}
