//! Popping flash messages: a transaction on one server, get-and-touch on a Cluster.
//!
//! On one server a popping load sends its plain read as a transaction that also deletes the
//! messages: `MULTI`, `HGETALL`, `PTTL`, `HDEL @f`, `EXEC`. Nothing runs between the read and
//! the delete, so no other request can read the same messages, and none pushed later is deleted
//! unread; the pop costs neither a second round trip nor a script. (On Redis 7 an `HDEL` that
//! deletes nothing reaches neither the AOF nor replicas; Redis 6.2 still appends an empty
//! `MULTI`/`EXEC`.) [`pop_flash`](SessionStore::pop_flash) sends `HGET @f` + `HDEL @f` the same
//! way.
//!
//! A Redis Cluster gets no transaction: during a slot migration or a failover Redis aborts it
//! (`EXECABORT` after `MOVED` or `ASK`), and redis-rs follows neither inside one. There a popping
//! load reads as a plain load does, and takes pending messages with get-and-touch, whose
//! redirections redis-rs follows. So does a load whose transaction a server refuses: one out of
//! memory under `noeviction` aborts every `MULTI`, the read included, while it still runs plain
//! reads and scripts that only delete or set TTLs; a server that turned read-only or failed to
//! persist between the queueing and `EXEC` refuses the `EXEC` itself.
//!
//! Delivery is at most once, as it is for any pop: messages whose reply is lost with a broken
//! connection or a timeout are gone (the read is retried on a new connection, and the retry
//! finds none). The transaction also deletes `@f` from a hash that the load then refuses as
//! corrupt. (A server whose ACL forbids `MULTI` itself is not supported: redis-rs cannot tell
//! its replies apart.)

use redis::Value;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::reply::{self, Loaded, Snapshot};
use crate::store::SessionStore;

impl SessionStore {
    /// A load that pops: the session at `key` with its pending messages taken. The flag says
    /// whether get-and-touch read it, as in `fetch` (load.rs).
    pub(crate) async fn fetch_popping(&self, key: &str) -> Result<Option<(Loaded, bool)>> {
        if self.pool.is_cluster() {
            return self.fetch_popping_by_script(key).await;
        }
        let replies = match self.run_read(&popping_read(key)).await {
            Err(e) if refused(&e) => {
                debug!(error = %e, "transaction aborted: popping with get-and-touch");
                return self.fetch_popping_by_script(key).await;
            }
            replies => replies?,
        };
        let (idle, touch_after) = (self.config.idle_ms(), self.config.touch_after_ms());
        match reply::snapshot(replies, idle, touch_after)? {
            Snapshot::Missing => Ok(None),
            Snapshot::Fresh(loaded) => Ok(Some((loaded, false))), // its flash: what was popped
            Snapshot::NeedsScript { fields, pttl } => self.touch_popped(key, fields, pttl).await,
        }
    }

    /// The touch a popping read found due. The read has taken the messages, so losing the
    /// session now would lose them: when get-and-touch finds no session (a regenerate or destroy
    /// since the read) or fails, and the read saw a TTL (so the session was within its deadline
    /// then), the load serves the session as read, messages included; the touch waits for the
    /// next load. (A script that timed out may still have run and popped messages pushed since
    /// the read: those are lost, as with any pop whose reply is lost.)
    async fn touch_popped(
        &self,
        key: &str,
        fields: Vec<Value>,
        pttl: i64,
    ) -> Result<Option<(Loaded, bool)>> {
        let popped = reply::flash_field(&fields);
        match self.get_and_touch(key, true).await {
            Ok(Some(mut loaded)) => {
                // Popped by the read, then any pushed since, popped by the script.
                loaded.flash = [popped, loaded.flash].concat();
                Ok(Some((loaded, true)))
            }
            other if popped.is_empty() || pttl < 0 => Ok(other?.map(|loaded| (loaded, true))),
            other => {
                let touch = other.map(|loaded| loaded.is_some());
                warn!(?touch, "the touch after a popping read failed: serving the read");
                Ok(Some((Loaded::from_fields(pttl, fields)?, false)))
            }
        }
    }

    /// A popping load without a transaction: the plain read, then get-and-touch when messages
    /// are pending (or a touch is due).
    async fn fetch_popping_by_script(&self, key: &str) -> Result<Option<(Loaded, bool)>> {
        let replies = self.run_read(&plain_read(key)).await?;
        let (idle, touch_after) = (self.config.idle_ms(), self.config.touch_after_ms());
        match reply::snapshot(replies, idle, touch_after)? {
            Snapshot::Missing => Ok(None),
            Snapshot::Fresh(loaded) if loaded.flash.is_empty() => Ok(Some((loaded, false))),
            _ => Ok(self.get_and_touch(key, true).await?.map(|loaded| (loaded, true))),
        }
    }

    /// Takes the pending flash messages of the session at `key`, still encoded.
    pub(crate) async fn pop_pending(&self, key: &str) -> Result<Vec<u8>> {
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("HGET").arg(key).arg("@f").cmd("HDEL").arg(key).arg("@f").ignore();
        let reply = match self.pool.is_cluster() {
            true => None,
            false => Some(self.run_read(&pipe).await),
        };
        match reply {
            Some(Ok(mut replies)) => match replies.pop() {
                Some(Value::BulkString(bytes)) => Ok(bytes),
                Some(Value::Nil) => Ok(Vec::new()),
                other => Err(Error::Corrupt(format!("unexpected flash pop reply {other:?}"))),
            },
            Some(Err(e)) if !refused(&e) => Err(e),
            _ => Ok(self.get_and_touch(key, true).await?.map(|l| l.flash).unwrap_or_default()),
        }
    }
}

/// True when the server refused a transaction: aborted it (`EXECABORT`: out of memory, a
/// redirection), or refused its `EXEC` alone, which redis-rs reports as a reply of the wrong
/// shape (this crate's [`Error::Corrupt`]; a transaction's reply is otherwise never parsed
/// before it returns).
fn refused(error: &Error) -> bool {
    let abort = redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort);
    match error {
        Error::Redis(e) => e.kind() == abort,
        Error::Corrupt(_) => true,
        _ => false,
    }
}

/// `HGETALL`, `PTTL` and `HDEL @f` as one transaction.
fn popping_read(key: &str) -> redis::Pipeline {
    let mut pipe = plain_read(key);
    pipe.atomic().cmd("HDEL").arg(key).arg("@f").ignore();
    pipe
}

/// `HGETALL` and `PTTL`.
fn plain_read(key: &str) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("HGETALL").arg(key).cmd("PTTL").arg(key);
    pipe
}
