//! Popping flash messages: a transaction on one server, get-and-touch on a Cluster.
//!
//! On one server a popping load sends its plain read as a transaction that also deletes the
//! messages: `MULTI`, `HVALS`, `HDEL @f`, `EXEC` (and `TIME` when the read carries it). Nothing
//! runs between the read and the delete, so no other request can read the same messages, and
//! none pushed later is deleted unread; the pop costs neither a second round trip nor a script.
//! (On Redis 7 an `HDEL` that deletes nothing reaches neither the AOF nor replicas; Redis 6.2
//! still appends an empty `MULTI`/`EXEC`.) [`pop_flash`](SessionStore::pop_flash) sends
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
use crate::fields::Field;
use crate::load::{read_pipeline, Read};
use crate::reply::{self, Loaded, Snapshot};
use crate::store::SessionStore;

impl SessionStore {
    /// A load that pops: the session at `key` with its pending messages taken. The flag says
    /// whether get-and-touch read it, as in `fetch` (load.rs).
    pub(crate) async fn fetch_popping(&self, key: &str) -> Result<Option<(Loaded, bool)>> {
        if self.pool.is_cluster() {
            return self.fetch_popping_by_script(key).await;
        }
        let (values, rule) = match self.timed_read(popping_read(key)).await {
            Err(e) if out_of_memory(&e) => {
                debug!(error = %e, "out of memory, transaction aborted: popping with get-and-touch");
                return self.fetch_popping_by_script(key).await;
            }
            read => read?,
        };
        match reply::snapshot(values, rule)? {
            Snapshot::Missing => Ok(None),
            Snapshot::Fresh(loaded) => Ok(Some((loaded, false))), // its flash: what was popped
            Snapshot::NeedsScript(read) => self.touch_popped(key, read).await,
        }
    }

    /// The touch a popping read found due. The read has taken the messages, so losing the
    /// session now would lose them: when get-and-touch finds no session (a regenerate or destroy
    /// since the read) or fails, and the read found the session unexpired (by the expiry the
    /// hash records, so within its deadline then), the load serves the session as read,
    /// messages included; the touch waits for the next load. (A script that timed out may
    /// still have run and popped messages pushed since the read: those are lost, as with any
    /// pop whose reply is lost.)
    async fn touch_popped(&self, key: &str, mut read: Loaded) -> Result<Option<(Loaded, bool)>> {
        // `read`'s flash: what the read popped.
        match self.get_and_touch(key, true).await {
            Ok(Some(mut loaded)) => {
                // Popped by the read, then any pushed since, popped by the script.
                loaded.flash = [std::mem::take(&mut read.flash), loaded.flash].concat();
                Ok(Some((loaded, true)))
            }
            other if read.flash.is_empty() || read.meta.ttl_ms <= 0 => {
                Ok(other?.map(|loaded| (loaded, true)))
            }
            other => {
                let touch = other.map(|loaded| loaded.is_some());
                warn!(?touch, "the touch after a popping read failed: serving the read");
                Ok(Some((read, false)))
            }
        }
    }

    /// A popping load without a transaction: the plain read, then get-and-touch when messages
    /// are pending (or a touch is due).
    async fn fetch_popping_by_script(&self, key: &str) -> Result<Option<(Loaded, bool)>> {
        let (values, rule) = self.timed_read(read_pipeline(key, Read::All)).await?;
        match reply::snapshot(values, rule)? {
            Snapshot::Missing => Ok(None),
            Snapshot::Fresh(loaded) if loaded.flash.is_empty() => Ok(Some((loaded, false))),
            Snapshot::Fresh(_) | Snapshot::NeedsScript(_) => self.pop_by_script(key).await,
        }
    }

    /// Get-and-touch, popping.
    async fn pop_by_script(&self, key: &str) -> Result<Option<(Loaded, bool)>> {
        let loaded = self.get_and_touch(key, true).await?;
        Ok(loaded.map(|loaded| (loaded, true)))
    }

    /// Takes the pending flash messages of the session at `key`, still encoded.
    pub(crate) async fn pop_pending(&self, key: &str) -> Result<Vec<u8>> {
        if !self.pool.is_cluster() {
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("HGET").arg(key).arg("@f").cmd("HDEL").arg(key).arg("@f").ignore();
            match self.run_read(&pipe).await {
                Ok(replies) => return popped(replies),
                Err(e) if !out_of_memory(&e) => return Err(e),
                Err(_) => {}
            }
        }
        let loaded = self.get_and_touch(key, true).await?;
        Ok(loaded.map(|loaded| loaded.flash).unwrap_or_default())
    }
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
    let mut pipe = read_pipeline(key, Read::All);
    pipe.atomic().cmd("HDEL").arg(key).arg("@f").ignore();
    pipe
}
