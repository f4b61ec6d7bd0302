//! The local cache: sessions held in this process and served without a Redis call, kept exact
//! by Redis' server-assisted invalidation (`CLIENT TRACKING`).
//!
//! - settings.rs: [`LocalCache`] and [`Tracking`], the public settings, and [`CacheStats`].
//! - entries.rs: the sessions held, bounded in entries and bytes, and the claims that keep a
//!   read from filling in a session that changed while it was read.
//! - tracking.rs: the RESP3 connection that carries the filling reads and Redis' reports.
//!
//! What it serves, and when, is the load's call (store/cached.rs): a session held, with no touch
//! due, no flash message pending, and within its idle expiry and absolute deadline by the
//! estimate of the server's clock, while the tracking connection has answered a read within the
//! last second (a connection cut without closing reports nothing). Every write through the store drops the session's entry
//! before it is sent and again once it is acknowledged (store/core.rs), so a load that follows
//! a write in this process never sees what the write replaced; a write elsewhere drops it when
//! Redis' report arrives.
//!
//! Why not redis-rs' `cache-aio`: it caches command replies, so a hit would still parse the
//! reply into a session; it bounds entries but not bytes; it cannot tell a load whether its
//! reply came from memory; and it is experimental. The rules that decide what may be served
//! (the expiry, the deadline, flash) are this crate's either way.

pub(crate) mod entries;
pub(crate) mod settings;
pub(crate) mod tracking;

use std::sync::Arc;

use redis::ProtocolVersion;

use crate::cache::entries::Entries;
use crate::cache::tracking::Tracker;
use crate::config::Config;
use crate::connection::connector;
use crate::error::Result;

pub use settings::{CacheStats, LocalCache, Tracking};

/// The cache of one store: its entries and its tracking connection.
pub(crate) struct Cache {
    pub(crate) entries: Arc<Entries>,
    pub(crate) tracker: Tracker,
}

impl Cache {
    /// The cache `config` asks for, if any. Opens no connection.
    pub(crate) fn new(config: &Config) -> Result<Option<Cache>> {
        let Some(settings) = config.local_cache.as_ref() else { return Ok(None) };
        let entries = Arc::new(Entries::new(settings));
        let client = connector::single_client(config, ProtocolVersion::RESP3)?;
        let tracker = Tracker::new(
            client,
            connector::timeouts(config),
            settings.tracking,
            config.key_prefix.clone(),
            Arc::clone(&entries),
        );
        Ok(Some(Cache { entries, tracker }))
    }
}
