//! The two ways a load reads a session: the plain read (`HVALS`, with `TIME` when the clock is
//! due for a sync), and the get-and-touch script, which reads, checks and writes atomically on
//! the server's clock.

use redis::Value;
use tracing::warn;

use crate::connection::scripts::SCRIPTS;
use crate::error::Result;
use crate::store::core::Core;
use crate::store::reply::{self, Loaded, TouchRule};

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
    let (values, time) = reply::read_replies(core.run_read(&pipe).await?, sent.is_some())?;
    // An unreadable TIME costs the estimate, not the load: a popping read has already
    // taken the flash messages, and without an estimate the script judges the expiry.
    if let Some(Err(e)) = sent.zip(time).map(|(sent, time)| core.clock.sync(sent, time)) {
        warn!(error = %e, "the clock sync failed: the estimate stays as it was");
    }
    let (idle_ms, touch_after_ms) = (core.config.idle_ms(), core.config.touch_after_ms());
    Ok((values, TouchRule { now_ms: core.clock.now_ms(), idle_ms, touch_after_ms }))
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
