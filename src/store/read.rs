//! The two ways a load reads a session: the plain read (`HVALS`, with `TIME` when the clock is
//! due for a sync), and the get-and-touch script, which reads, checks and writes atomically on
//! the server's clock.

use std::time::Instant;

use redis::Value;
use tracing::warn;

use crate::connection::scripts::SCRIPTS;
use crate::error::Result;
use crate::store::core::Core;
use crate::store::reply::{self, Loaded, Snapshot, TouchRule};

/// `HVALS key`: every value of the session's hash, each of which says which field it is
/// (format/fields.rs), so the names need not cross the network.
pub(crate) fn hvals(key: &str) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("HVALS").arg(key);
    pipe
}

/// Sends a plain read, with `TIME` when the clock is due for a sync (server_clock.rs): the
/// values it read, and the rule to judge their expiry by.
pub(crate) async fn timed_read(
    core: &Core,
    mut pipe: redis::Pipeline,
) -> Result<(Value, TouchRule)> {
    let sent = core.clock.claim_sync();
    if sent.is_some() {
        pipe.cmd("TIME");
    }
    judge(core, core.run_read(&pipe).await?, sent)
}

/// The values a plain read's replies hold, and the rule to judge their expiry by, the clock
/// synced first when the read carried `TIME` (sent at `sent`).
pub(crate) fn judge(
    core: &Core,
    replies: Vec<Value>,
    sent: Option<Instant>,
) -> Result<(Value, TouchRule)> {
    let (values, time) = reply::read_replies(replies, sent.is_some())?;
    // An unreadable TIME costs the estimate, not the load: a popping read has already
    // taken the flash messages, and without an estimate the script judges the expiry.
    if let Some(Err(e)) = sent.zip(time).map(|(sent, time)| core.clock.sync(sent, time)) {
        warn!(error = %e, "the clock sync failed: the estimate stays as it was");
    }
    Ok((values, rule(core)))
}

/// The rule a session read now is judged by: the server's time as estimated here, and the
/// store's idle timeout and touch threshold.
pub(crate) fn rule(core: &Core) -> TouchRule {
    let (idle_ms, touch_after_ms) = (core.config.idle_ms(), core.config.touch_after_ms());
    TouchRule { now_ms: core.clock.now_ms(), idle_ms, touch_after_ms }
}

/// The plain read, then get-and-touch only if something must be written. When the store
/// touches on every read (`touch_threshold` 0), get-and-touch alone: one round trip.
pub(crate) async fn read_then_touch(core: &Core, key: &str) -> Result<Option<Loaded>> {
    if core.config.touch_after_ms() == 0 {
        return get_and_touch(core, key, false).await;
    }
    let (values, rule) = timed_read(core, hvals(key)).await?;
    match reply::snapshot(values, rule)? {
        Snapshot::Missing => Ok(None),
        Snapshot::Fresh(loaded) => Ok(Some(loaded)),
        Snapshot::NeedsScript(_) => get_and_touch(core, key, false).await,
    }
}

/// Runs get-and-touch on `key`, popping the flash messages when `pop_flash`; a load's span
/// records that it ran.
pub(crate) async fn get_and_touch(
    core: &Core,
    key: &str,
    pop_flash: bool,
) -> Result<Option<Loaded>> {
    tracing::Span::current().record("script", true);
    let mut call = SCRIPTS.get_and_touch.call(&[key]);
    call.arg(core.config.idle_ms()).arg(core.config.touch_after_ms());
    call.arg(u8::from(pop_flash));
    reply::loaded(core.run::<Value>(&call).await?)
}
