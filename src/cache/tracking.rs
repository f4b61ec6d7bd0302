//! The tracking connection: a RESP3 connection with `CLIENT TRACKING` on, over which the reads
//! that fill the cache are sent and Redis' reports of changed keys arrive.
//!
//! Why one connection of its own: in the default mode Redis reports a change only to the
//! connection that read the key, so the reads that fill the cache and the reports must share a
//! connection, and the pool's connections stay RESP2, whose replies the rest of the store
//! parses. Reports are handled as the connection's reader meets them, in order with the replies
//! (the push handler below runs in redis-rs' reader, not in a task of its own), so a report is
//! never queued behind a reply that came after it.
//!
//! Whenever this connection is lost, replaced, or Redis says it forgot what it tracked, the
//! whole cache is dropped: reports may have been missed, so nothing held can be trusted. The
//! reservations in entries.rs make the drop cover reads in flight too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tracing::{debug, warn};

use crate::cache::entries::Entries;
use crate::cache::settings::Tracking;

/// How long a failure to open the connection stands before the next load tries again; within
/// it, loads read over the pool without the cache.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// The open tracking connection and its number, which tells its reports from a former one's.
struct Open {
    id: u64,
    connection: MultiplexedConnection,
}

type Current = Arc<RwLock<Option<Open>>>;

/// Opens the tracking connection on first use and again after it is lost.
pub(crate) struct Tracker {
    client: redis::Client,
    settings: AsyncConnectionConfig,
    tracking: Tracking,
    prefix: String,
    entries: Arc<Entries>,
    current: Current,
    opening: tokio::sync::Mutex<()>,
    failed: RwLock<Option<(Instant, String)>>,
    next_id: AtomicU64,
}

impl Tracker {
    /// `client` speaks RESP3; `settings` hold the timeouts.
    pub(crate) fn new(
        client: redis::Client,
        settings: AsyncConnectionConfig,
        tracking: Tracking,
        prefix: String,
        entries: Arc<Entries>,
    ) -> Self {
        Tracker {
            client,
            settings,
            tracking,
            prefix,
            entries,
            current: Arc::new(RwLock::new(None)),
            opening: tokio::sync::Mutex::new(()),
            failed: RwLock::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// The open tracking connection and its number, opening one when there is none; the
    /// failure when it cannot be opened (remembered for [`RETRY_AFTER`]).
    pub(crate) async fn connection(&self) -> Result<(u64, MultiplexedConnection), String> {
        if let Some(open) = self.open() {
            return Ok(open);
        }
        let _opening = self.opening.lock().await;
        if let Some(open) = self.open() {
            return Ok(open);
        }
        if let Some((at, why)) = read(&self.failed).as_ref() {
            if at.elapsed() < RETRY_AFTER {
                return Err(why.clone());
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        match self.connect(id).await {
            Ok(connection) => {
                // Whatever was held came through a connection that is gone, whose reports
                // may have been missed.
                self.entries.clear();
                *write(&self.current) = Some(Open { id, connection: connection.clone() });
                *write(&self.failed) = None;
                debug!(connection = id, "tracking connection open");
                Ok((id, connection))
            }
            Err(e) => {
                let why = format!("the tracking connection failed: {e}");
                warn!(error = %e, "the tracking connection failed: loads go to Redis");
                *write(&self.failed) = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }

    fn open(&self) -> Option<(u64, MultiplexedConnection)> {
        read(&self.current).as_ref().map(|open| (open.id, open.connection.clone()))
    }

    async fn connect(&self, id: u64) -> redis::RedisResult<MultiplexedConnection> {
        let reports =
            Reports { id, entries: Arc::clone(&self.entries), current: self.current.clone() };
        let settings = self.settings.clone().set_push_sender(reports);
        let mut connection =
            self.client.get_multiplexed_async_connection_with_config(&settings).await?;
        let mut tracking = redis::cmd("CLIENT");
        tracking.arg("TRACKING").arg("ON");
        if self.tracking == Tracking::Broadcast {
            tracking.arg("BCAST");
            if !self.prefix.is_empty() {
                tracking.arg("PREFIX").arg(&self.prefix);
            }
        }
        tracking.query_async::<()>(&mut connection).await?;
        Ok(connection)
    }

    /// Drops connection `id` (a read on it found it broken) and everything held.
    pub(crate) fn lost(&self, id: u64) {
        forget(&self.current, id);
        self.entries.clear();
    }
}

/// Takes Redis' reports from the tracking connection's reader.
struct Reports {
    id: u64,
    entries: Arc<Entries>,
    current: Current,
}

impl AsyncPushSender for Reports {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        match info.kind {
            PushKind::Invalidate => {
                for value in info.data {
                    self.invalidate(value);
                }
            }
            PushKind::Disconnection => {
                forget(&self.current, self.id);
                self.entries.clear();
                debug!(connection = self.id, "tracking connection lost: the cache is dropped");
            }
            _ => {}
        }
        Ok(())
    }
}

impl Reports {
    /// `invalidate` carries the keys that changed, or nil when Redis forgot every key it
    /// tracked (a `FLUSHALL`, a `FLUSHDB`).
    fn invalidate(&self, value: Value) {
        match value {
            Value::Array(keys) => keys.into_iter().for_each(|key| self.invalidate(key)),
            // Every key this store writes is UTF-8: any other is none of its own.
            Value::BulkString(key) => {
                if let Ok(key) = std::str::from_utf8(&key) {
                    self.entries.invalidate(key);
                }
            }
            Value::Nil => self.entries.clear(),
            _ => self.entries.clear(), // a report not understood: drop everything, to be safe
        }
    }
}

/// Clears the current connection if it is `id`, and not one opened since.
fn forget(current: &Current, id: u64) {
    let mut current = write(current);
    if current.as_ref().is_some_and(|open| open.id == id) {
        *current = None;
    }
}

// A poisoned lock only means a panic elsewhere while cloning; the value is still valid.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}
