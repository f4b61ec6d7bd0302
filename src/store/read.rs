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
    let sent = with_time(core, &mut pipe);
    judge(core, core.run_read(&pipe).await?, sent)
}

/// Appends `TIME` to a read when the clock is due for a sync, and returns when the read is sent
/// then, for [`judge`].
pub(crate) fn with_time(core: &Core, pipe: &mut redis::Pipeline) -> Option<Instant> {
    let sent = core.clock.claim_sync();
    if sent.is_some() {
        pipe.cmd("TIME");
    }
    sent
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

/// The plain read, then get-and-touch only if something must be written.
pub(crate) async fn read_then_touch(core: &Core, key: &str) -> Result<Option<Loaded>> {
    let (values, rule) = timed_read(core, hvals(key)).await?;
    match reply::snapshot(values, rule)? {
        Snapshot::Missing => Ok(None),
        Snapshot::Fresh(loaded) => Ok(Some(loaded)),
        Snapshot::NeedsScript(_) => get_and_touch(core, key, false).await,
    }
}

/// `touch_threshold` 0, where every read slides the expiry: `HVALS` and `PEXPIRE key idle` in
/// one pipeline, as plain stores read a blob with `GET` and `PEXPIRE`, and no script. A script
/// costs Redis several times the two commands (docs/performance.md), and here it would run on
/// every load.
///
/// What the script does besides, the load does from what it read, with one more command where
/// the store's idle timeout was not the TTL to give:
/// - where the idle timeout would run past the deadline, or the deadline has passed (on the
///   estimate of the server's clock, never behind it: the session is dead), `PEXPIREAT` the
///   deadline, a time on the server's clock;
/// - a session with timeouts of its own: `PEXPIRE` its own idle timeout.
///
/// Without a clock estimate it goes on to get-and-touch (after the `PEXPIRE` of a session's own
/// idle timeout, which needs no clock: the script never shortens a TTL). When that second
/// command fails, the load fails, and the session keeps the store's idle timeout until its next
/// load. `@t` is left as it was: loads here never read it, and a store that does (a higher
/// threshold) finds it behind the TTL, runs the script, and the script writes it again.
pub(crate) async fn read_and_slide(core: &Core, key: &str) -> Result<Option<Loaded>> {
    let idle = core.config.idle_ms();
    let mut pipe = hvals(key);
    pipe.cmd("PEXPIRE").arg(key).arg(idle).ignore();
    let sent = with_time(core, &mut pipe);
    let (values, _) = judge(core, core.run_read(&pipe).await?, sent)?;
    let Some(mut loaded) = reply::loaded_values(values)? else { return Ok(None) };
    let deadline = loaded.meta.deadline_ms.max(0) as u64;
    let own = loaded.meta.idle_timeout_ms.map(|own| own.max(0) as u64);
    let Some(now) = core.clock.now_ms() else {
        if let Some(own) = own {
            let mut expire = redis::cmd("PEXPIRE");
            expire.arg(key).arg(own);
            core.settle(core.pool.get().await?.query::<()>(&expire).await)?;
        }
        return get_and_touch(core, key, false).await;
    };
    let slide = own.unwrap_or(idle);
    let mut expire = redis::cmd("PEXPIREAT");
    let ttl = if now.saturating_add(slide) >= deadline {
        expire.arg(key).arg(deadline); // at the deadline, on the server's clock
        deadline.saturating_sub(now)
    } else if let Some(own) = own {
        expire = redis::cmd("PEXPIRE"); // from now on the server's clock, as the first one
        expire.arg(key).arg(own);
        own
    } else {
        loaded.meta.ttl_ms = i64::try_from(idle).unwrap_or(i64::MAX);
        return Ok(Some(loaded));
    };
    core.settle(core.pool.get().await?.query::<()>(&expire).await)?;
    if now >= deadline {
        return Ok(None);
    }
    loaded.meta.ttl_ms = i64::try_from(ttl).unwrap_or(i64::MAX);
    Ok(Some(loaded))
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
