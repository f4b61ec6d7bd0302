//! The local cache's settings: how much it may hold, and how Redis tells it what changed.

use serde::Deserialize;

/// How Redis reports the changes that drop cached sessions (`CLIENT TRACKING`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Tracking {
    /// Redis reports every change to a key under the store's prefix, whoever read it (`BCAST
    /// PREFIX`). The default: it keeps no table in Redis, and it measured faster than
    /// [`Reads`](Tracking::Reads) with one app instance and with four (docs/performance.md),
    /// though every instance hears of every save, touch and destroy, held or not.
    #[default]
    Broadcast,
    /// Redis remembers which sessions this store read and reports the next change to each
    /// (Redis' default mode). An instance hears only of the sessions it read, but Redis keeps a
    /// table of the keys read, about 100 bytes each, up to `tracking-table-max-keys`.
    Reads,
}

/// A cache of sessions in this process, kept exact by Redis' server-assisted invalidation.
///
/// A load that finds its session here, with no touch due, no flash message pending and the
/// session within its idle expiry and absolute deadline, makes no Redis call, as long as the
/// tracking connection answered within the last second. A single server only, and not at
/// `touch_threshold` 0 (where every load writes): [`Config::validate`](crate::Config::validate)
/// refuses both.
///
/// ```
/// use redis_sessions::{Config, LocalCache};
/// let config = Config::default().with_local_cache(LocalCache::default());
/// assert_eq!(config.local_cache.map(|c| c.max_entries), Some(10_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LocalCache {
    /// Sessions held at most. Default 10,000.
    pub max_entries: usize,
    /// Bytes held at most: each session's values as Redis sent them, its key, 160 bytes for the
    /// entry and 96 for each loose field. Default 64 MiB. Both bounds are split evenly over up
    /// to 16 shards, so a session larger than a shard's share is never held.
    pub max_bytes: usize,
    /// How Redis reports changes. Default [`Tracking::Broadcast`].
    pub tracking: Tracking,
}

impl Default for LocalCache {
    fn default() -> Self {
        LocalCache { max_entries: 10_000, max_bytes: 64 << 20, tracking: Tracking::Broadcast }
    }
}

impl LocalCache {
    /// Sets the most sessions held. Default 10,000.
    ///
    /// ```
    /// let cache = redis_sessions::LocalCache::default().with_max_entries(50_000);
    /// assert_eq!(cache.max_entries, 50_000);
    /// ```
    pub fn with_max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// Sets the most bytes held. Default 64 MiB.
    ///
    /// ```
    /// let cache = redis_sessions::LocalCache::default().with_max_bytes(8 << 20);
    /// assert_eq!(cache.max_bytes, 8 << 20);
    /// ```
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets how Redis reports changes. Default [`Tracking::Broadcast`].
    ///
    /// ```
    /// use redis_sessions::{LocalCache, Tracking};
    /// let cache = LocalCache::default().with_tracking(Tracking::Reads);
    /// assert_eq!(cache.tracking, Tracking::Reads);
    /// ```
    pub fn with_tracking(mut self, tracking: Tracking) -> Self {
        self.tracking = tracking;
        self
    }
}

/// What the cache has done since the store was built, for metrics and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads served from memory.
    pub hits: u64,
    /// Loads that went to Redis with the cache on: not held, touch due, flash pending, or the
    /// read that shows the tracking connection alive, once a second.
    pub misses: u64,
    /// Sessions held now.
    pub entries: usize,
    /// Bytes held now, as counted against `max_bytes`.
    pub bytes: usize,
    /// Sessions dropped because Redis reported a change, or this store wrote them.
    pub invalidations: u64,
    /// Times the whole cache was dropped: a tracking connection lost or opened, or Redis
    /// reporting that it forgot what it tracked (a `FLUSHALL`, say).
    pub clears: u64,
    /// Sessions dropped to stay within the bounds.
    pub evictions: u64,
}
