//! Popping flash messages: a transaction on one server, get-and-touch on a Cluster. A popping
//! load takes the way [`Way`](crate::store::load::Way) names; `pop_flash` the same ways.
//!
//! On one server a popping load sends its plain read as a transaction that also deletes the
//! messages: `MULTI`, `HVALS`, `HDEL @f`, `EXEC` (and `TIME` when the read carries it). Nothing
//! runs between the read and the delete, so no other request can read the same messages, and
//! none pushed later is deleted unread; the pop costs neither a second round trip nor a script.
//! (On Redis 7 an `HDEL` that deletes nothing reaches neither the AOF nor replicas; Redis 6.2
//! still appends an empty `MULTI`/`EXEC`.) [`pop_flash`](crate::SessionStore::pop_flash) sends
//! `HGET @f` + `HDEL @f` the same way.
//!
//! A Redis Cluster gets no transaction: during a slot migration or a failover Redis aborts it
//! (`EXECABORT` after `MOVED` or `ASK`), and redis-rs follows neither inside one. There a popping
//! load reads as a plain load does, and takes pending messages with get-and-touch, whose
//! redirections redis-rs follows. So does a load whose transaction a server out of memory
//! aborted: under `noeviction` it refuses every command queued in a `MULTI`, the read included,
//! while it still runs plain reads and scripts that only delete or set TTLs (get-and-touch's
//! repair of a missing `@t` is an `HSET`, which it then skips). Other refusals reach the
//! caller.
//!
//! Delivery is at most once, as it is for any pop: messages whose reply is lost with a broken
//! connection or a timeout are gone (the read is retried on a new connection, and the retry
//! finds none). The transaction also deletes `@f` from a hash that the load then refuses as
//! corrupt. (A server or proxy that refuses `MULTI` itself is not supported: the commands after
//! it run on their own, the `HDEL` included, and the load fails with the refusal.)

use redis::Value;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::format::fields::Field;
use crate::store::core::Core;
use crate::store::read::{get_and_touch, hvals, timed_read};
use crate::store::reply::{self, Loaded, Snapshot};

/// A popping load on one server: the read and the deletion of the messages as one transaction,
/// then get-and-touch only if a touch is due. A server out of memory refuses the transaction:
/// the load then goes [`read_then_pop`]'s way. A store that touches on every read
/// (`touch_threshold` 0) runs get-and-touch alone: one round trip.
pub(crate) async fn transaction(core: &Core, key: &str) -> Result<Option<Loaded>> {
    core.drop_cached(std::iter::once(key));
    if core.config.touch_after_ms() == 0 {
        return get_and_touch(core, key, true).await;
    }
    let (values, rule) = match timed_read(core, popping_read(key)).await {
        Err(e) if out_of_memory(&e) => {
            debug!(error = %e, "out of memory, transaction aborted: popping with get-and-touch");
            tracing::Span::current().record("way", "read_then_pop");
            return read_then_pop(core, key).await;
        }
        read => read?,
    };
    match reply::snapshot(values, rule)? {
        Snapshot::Missing => Ok(None),
        Snapshot::Fresh(loaded) => Ok(Some(loaded)), // its flash: what was popped
        Snapshot::NeedsScript(read) => touch_popped(core, key, read).await,
    }
}

/// The touch a popping read found due. The read has taken the messages, so losing the session
/// now would lose them: when get-and-touch finds no session (a regenerate or destroy since the
/// read) or fails, and the read found the session unexpired (by the expiry the hash records, so
/// within its deadline then), the load serves the session as read, messages included; the touch
/// waits for the next load. (A script that timed out may still have run and popped messages
/// pushed since the read: those are lost, as with any pop whose reply is lost.)
async fn touch_popped(core: &Core, key: &str, mut read: Loaded) -> Result<Option<Loaded>> {
    // `read`'s flash: what the read popped.
    match get_and_touch(core, key, true).await {
        Ok(Some(mut loaded)) => {
            // Popped by the read, then any pushed since, popped by the script.
            loaded.flash = [std::mem::take(&mut read.flash), loaded.flash].concat();
            Ok(Some(loaded))
        }
        other if read.flash.is_empty() || read.meta.ttl_ms <= 0 => other,
        other => {
            let touch = other.map(|loaded| loaded.is_some());
            warn!(?touch, "the touch after a popping read failed: serving the read");
            Ok(Some(read))
        }
    }
}

/// A popping load without a transaction: the plain read, then get-and-touch when messages are
/// pending (or a touch is due).
pub(crate) async fn read_then_pop(core: &Core, key: &str) -> Result<Option<Loaded>> {
    let (values, rule) = timed_read(core, hvals(key)).await?;
    match reply::snapshot(values, rule)? {
        Snapshot::Missing => Ok(None),
        Snapshot::Fresh(loaded) if loaded.flash.is_empty() => Ok(Some(loaded)),
        Snapshot::Fresh(_) | Snapshot::NeedsScript(_) => get_and_touch(core, key, true).await,
    }
}

/// Takes the pending flash messages of the session at `key`, still encoded (`pop_flash`).
pub(crate) async fn pop_pending(core: &Core, key: &str) -> Result<Vec<u8>> {
    core.drop_cached(std::iter::once(key));
    if !core.pool.is_cluster() {
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("HGET").arg(key).arg("@f").cmd("HDEL").arg(key).arg("@f").ignore();
        match core.run_read(&pipe).await {
            Ok(replies) => return popped(replies),
            Err(e) if !out_of_memory(&e) => return Err(e),
            Err(_) => {}
        }
    }
    let loaded = get_and_touch(core, key, true).await?;
    Ok(loaded.map(|loaded| loaded.flash).unwrap_or_default())
}
/// The messages in the reply to `HGET @f` (+ the ignored `HDEL`): `[value]` or `[nil]`.
fn popped(replies: Vec<Value>) -> Result<Vec<u8>> {
    let corrupt = |why: &str| Err(Error::Corrupt(format!("the flash pop's reply {why}")));
    match <[Value; 1]>::try_from(replies) {
        Ok([Value::BulkString(bytes)]) => match Field::parse(bytes)? {
            Field::Flash(messages) => Ok(messages),
            _ => corrupt("is not flash messages"),
        },
        Ok([Value::Nil]) => Ok(Vec::new()),
        _ => corrupt("is not one value"),
    }
}

/// True when the server aborted a transaction for want of memory: under `noeviction` it refuses
/// every command queued in a `MULTI`, reads included, but still runs plain reads and scripts
/// that only delete or set TTLs. Any other refusal reaches the caller.
fn out_of_memory(error: &Error) -> bool {
    let Error::Redis(e) = error else { return false };
    let errors = e.clone().into_server_errors().unwrap_or_else(|| Vec::new().into());
    !errors.is_empty() && errors.iter().all(|(_, error)| error.code() == "OOM")
}

/// `HVALS` and `HDEL @f` as one transaction (and `TIME`, when the read carries it).
fn popping_read(key: &str) -> redis::Pipeline {
    let mut pipe = hvals(key);
    pipe.atomic().cmd("HDEL").arg(key).arg("@f").ignore();
    pipe
}
