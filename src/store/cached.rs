//! Loads through the local cache (cache/): a session held is served without a Redis call when
//! nothing is due; otherwise the read goes over the tracking connection and fills the cache.
//!
//! A held session is served when it has no flash message pending, its touch is not due and it
//! is within its idle expiry and absolute deadline, judged by the same rule as a plain read
//! (reply.rs) on the estimate of the server's clock, which is never behind it; and only while
//! the tracking connection has answered a read within the last second (tracking.rs). So once a
//! second a load that could be served reads instead, over that connection: it shows the
//! connection alive, and carries `TIME` when the clock is due for a sync.
//!
//! A held session whose touch is due goes straight to get-and-touch: one round trip, as the
//! cache already showed what a read would. Its reply fills nothing: the script writes the
//! key, and Redis reports that, so the next load reads it anew over the tracking connection.

use tracing::debug;

use crate::cache::entries::{Entries, Ticket};
use crate::cache::tracking::{Unavailable, ANSWERED_WITHIN};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::store::core::Core;
use crate::store::flash_pop;
use crate::store::read::{self, get_and_touch, hvals};
use crate::store::reply::{self, Loaded, Snapshot};

/// What a load found in the cache.
enum Lookup {
    /// A session to serve as it is.
    Hit(Box<Loaded>),
    /// A session held whose touch is due (or whose expiry the estimate cannot judge).
    TouchDue,
    /// Nothing to serve: the load reads Redis.
    Miss,
}

fn lookup(core: &Core, cache: &Cache, key: &str) -> Lookup {
    let Some(held) = cache.entries.get(key) else { return Lookup::Miss };
    if !held.flash.is_empty() || !cache.tracker.answered_within(ANSWERED_WITHIN) {
        return Lookup::Miss;
    }
    let Some(ttl_ms) = read::rule(core).fresh_ttl(&held) else { return Lookup::TouchDue };
    let mut loaded = Loaded::clone(&held);
    loaded.meta.ttl_ms = ttl_ms;
    Lookup::Hit(Box::new(loaded))
}

/// A load that pops no flash messages.
pub(crate) async fn read(core: &Core, cache: &Cache, key: &str) -> Result<Option<Loaded>> {
    let span = tracing::Span::current();
    match lookup(core, cache, key) {
        Lookup::Hit(loaded) => {
            cache.entries.count_hit();
            span.record("cached", true);
            // A hit awaits nothing, so a task serving hits back to back would never yield, and
            // the connections' readers and the tasks their replies wake would wait behind it
            // (a load's p99 tripled in the benchmark): a hit yields once, as a Redis call does.
            tokio::task::yield_now().await;
            Ok(Some(*loaded))
        }
        Lookup::TouchDue => {
            cache.entries.count_miss();
            get_and_touch(core, key, false).await
        }
        Lookup::Miss => {
            cache.entries.count_miss();
            fill(core, cache, key).await
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
        return Ok(Some(*loaded));
    }
    cache.entries.count_miss();
    flash_pop::transaction(core, key).await
}

/// Reads `key` over the tracking connection (with `TIME` when the clock is due for a sync) and
/// holds what it read, if nothing changed it meanwhile. Without a tracking connection, the read
/// goes over the pool and fills nothing.
async fn fill(core: &Core, cache: &Cache, key: &str) -> Result<Option<Loaded>> {
    let (id, mut connection) = match cache.tracker.connection().await {
        Ok(open) => open,
        Err(_) => return read::read_then_touch(core, key).await,
    };
    // Claimed before the read is sent, so that a change reported after it voids the fill; the
    // claim goes when this returns or is dropped without filling.
    let claim = Claim { entries: &cache.entries, key, ticket: cache.entries.reserve(key, id) };
    let mut pipe = hvals(key);
    let sent = read::with_time(core, &mut pipe);
    // The connection is known alive as of when the read went out, not when its reply is
    // handled, which may be much later on a busy machine.
    let asked = std::time::Instant::now();
    let replies = match pipe.query_async::<Vec<redis::Value>>(&mut connection).await {
        Ok(replies) => replies,
        Err(e) => {
            if !(e.is_timeout() || e.is_io_error() || e.is_connection_dropped()) {
                return Err(e.into()); // the server refused the read: the connection is fine
            }
            // Broken, or silent past the command timeout (a cut that closed nothing): reports
            // may be lost either way, so nothing held stands. A timeout fails the load, as over
            // the pool: Redis is slow or cut off, and a second read would double the wait.
            cache.tracker.lost(id);
            if e.is_timeout() {
                return Err(e.into());
            }
            debug!(error = %e, "the tracking connection failed: reading over the pool");
            return read::read_then_touch(core, key).await;
        }
    };
    cache.tracker.answered(id, asked);
    let (values, rule) = read::judge(core, replies, sent)?;
    match reply::snapshot(values, rule)? {
        Snapshot::Fresh(loaded) if loaded.flash.is_empty() && loaded.retired.is_none() => {
            claim.fill(loaded.clone());
            Ok(Some(loaded))
        }
        Snapshot::Fresh(loaded) => Ok(Some(loaded)),
        Snapshot::Missing => Ok(None),
        Snapshot::NeedsScript(_) => get_and_touch(core, key, false).await,
    }
}

/// A read's claim on a key, released unless the read fills the cache.
struct Claim<'a> {
    entries: &'a Entries,
    key: &'a str,
    ticket: Ticket,
}

impl Claim<'_> {
    fn fill(self, loaded: Loaded) {
        self.entries.fill(self.key, self.ticket, loaded); // the claim is used up either way
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.entries.release(self.key, self.ticket);
    }
}

/// At start-up: the tracking connection opens, or why not. A server that answers `HELLO 3` or
/// `CLIENT TRACKING` with an error (before Redis 6, or under an ACL that denies them) is a
/// configuration error; one that cannot be reached, a connection error.
pub(crate) async fn check_tracking(cache: &Cache) -> Result<()> {
    match cache.tracker.connection().await {
        Ok(_) | Err(Unavailable::Opening) => Ok(()),
        Err(Unavailable::Failed(e))
            if !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped()) =>
        {
            let why =
                format!("local_cache needs RESP3 and CLIENT TRACKING (Redis 6 or later): {e}");
            Err(Error::Config(why))
        }
        Err(Unavailable::Failed(e)) => Err(Error::connecting(e)),
    }
}
