//! Loads through the local cache (cache/): a session held is served without a Redis call when
//! nothing is due; otherwise the read goes over the tracking connection and fills the cache.
//!
//! A held session is served when it has no flash message pending, its touch is not due and it
//! is within its idle expiry and absolute deadline, judged by the same rule as a plain read
//! (reply.rs) on the estimate of the server's clock, which is never behind it. The estimate is
//! kept by reads, and a store whose loads all hit would read none: so once a second (when the
//! clock is due for a sync) a load that could be served reads instead, carrying `TIME`.
//!
//! A held session whose touch is due goes straight to get-and-touch: one round trip, as the
//! cache already showed what a read would. Its reply fills nothing: the script writes the
//! key, and Redis reports that, so the next load reads it anew over the tracking connection.

use std::time::Instant;

use tracing::debug;

use crate::cache::Cache;
use crate::error::Result;
use crate::store::core::Core;
use crate::store::flash_pop;
use crate::store::read::{self, hvals};
use crate::store::reply::{self, Loaded, Snapshot};

/// What a load found in the cache.
enum Lookup {
    /// A session to serve as it is.
    Hit(Loaded),
    /// A session held whose touch is due (or whose expiry the estimate cannot judge).
    TouchDue,
    /// Nothing to serve: the read goes to Redis, with `TIME` when it claimed the clock's sync.
    Miss(Option<Instant>),
}

fn lookup(core: &Core, cache: &Cache, key: &str) -> Lookup {
    let Some(held) = cache.entries.get(key) else { return Lookup::Miss(None) };
    if !held.flash.is_empty() {
        return Lookup::Miss(None);
    }
    let rule = read::rule(core);
    let Some(ttl_ms) = rule.fresh_ttl(&held) else { return Lookup::TouchDue };
    if let Some(sent) = core.clock.claim_sync() {
        return Lookup::Miss(Some(sent));
    }
    let mut loaded = Loaded::clone(&held);
    loaded.meta.ttl_ms = ttl_ms;
    Lookup::Hit(loaded)
}

/// A load that pops no flash messages.
pub(crate) async fn read(core: &Core, cache: &Cache, key: &str) -> Result<Option<Loaded>> {
    if core.config.touch_after_ms() == 0 {
        return read::read_then_touch(core, key).await; // every load writes: nothing to hold
    }
    let span = tracing::Span::current();
    match lookup(core, cache, key) {
        Lookup::Hit(loaded) => {
            cache.entries.count_hit();
            span.record("cached", true);
            // A hit awaits nothing, so a task serving hits back to back would never yield, and
            // the connections' readers and the tasks their replies wake would wait behind it
            // (a load's p99 tripled in the benchmark): a hit yields once, as a Redis call does.
            tokio::task::yield_now().await;
            Ok(Some(loaded))
        }
        Lookup::TouchDue => {
            cache.entries.count_miss();
            read::touch_due(core, key).await
        }
        Lookup::Miss(sent) => {
            cache.entries.count_miss();
            fill(core, cache, key, sent).await
        }
    }
}

/// A popping load: a session held has no messages to pop, so it is served as a read would be;
/// otherwise the popping transaction runs, as without the cache.
pub(crate) async fn popping_read(core: &Core, cache: &Cache, key: &str) -> Result<Option<Loaded>> {
    if let Lookup::Hit(loaded) = lookup(core, cache, key) {
        cache.entries.count_hit();
        tracing::Span::current().record("cached", true);
        tokio::task::yield_now().await;
        return Ok(Some(loaded));
    }
    cache.entries.count_miss();
    flash_pop::transaction(core, key).await
}

/// Reads `key` over the tracking connection (with `TIME` when `sent`) and holds what it read,
/// if nothing changed it meanwhile. Without a tracking connection, the read goes over the pool
/// and fills nothing.
async fn fill(
    core: &Core,
    cache: &Cache,
    key: &str,
    sent: Option<Instant>,
) -> Result<Option<Loaded>> {
    let (id, mut connection) = match cache.tracker.connection().await {
        Ok(open) => open,
        Err(_) => return read::read_then_touch(core, key).await,
    };
    // Claimed before the read is sent, so that a change reported after it voids the fill.
    let ticket = cache.entries.reserve(key);
    let sent = sent.or_else(|| core.clock.claim_sync());
    let mut pipe = hvals(key);
    if sent.is_some() {
        pipe.cmd("TIME");
    }
    let replies = match pipe.query_async::<Vec<redis::Value>>(&mut connection).await {
        Ok(replies) => replies,
        Err(e) => {
            cache.entries.invalidate(key);
            if !(e.is_timeout() || e.is_io_error() || e.is_connection_dropped()) {
                return Err(e.into()); // the server refused the read: the connection is fine
            }
            // Broken, or silent past the command timeout (a cut that closed nothing): reports
            // may be lost either way, so nothing held stands. The clock's sync, once a second,
            // is such a read, so a silent connection is found within a second and the timeout.
            cache.tracker.lost(id);
            if e.is_timeout() {
                return Err(e.into());
            }
            debug!(error = %e, "the tracking connection failed: reading over the pool");
            return read::read_then_touch(core, key).await;
        }
    };
    let (values, rule) = read::judge(core, replies, sent)?;
    match reply::snapshot(values, rule)? {
        Snapshot::Fresh(loaded) => {
            if loaded.flash.is_empty() {
                cache.entries.fill(key, ticket, loaded.clone());
            } else {
                cache.entries.invalidate(key);
            }
            Ok(Some(loaded))
        }
        Snapshot::Missing => {
            cache.entries.invalidate(key);
            Ok(None)
        }
        Snapshot::NeedsScript(_) => {
            cache.entries.invalidate(key);
            read::touch_due(core, key).await
        }
    }
}
