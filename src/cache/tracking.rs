//! The tracking connection: a RESP3 connection with `CLIENT TRACKING` on, over which the reads
//! that fill the cache are sent and Redis' reports of changed keys arrive.
//!
//! Why one connection of its own: with `Tracking::Reads` Redis reports a change only to the
//! connection that read the key, so the reads that fill the cache and the reports must share a
//! connection (in broadcast mode they need not, but sharing it keeps the reply to a read ahead of
//! the report of any change after it, and shows the connection alive); and the pool's
//! connections stay RESP2, whose replies the rest of the store parses. Reports are handled as
//! the connection's reader meets them, in order with the replies (the push handler below runs in
//! redis-rs' reader, not in a task of its own), so a report is never queued behind a reply that
//! came after it.
//!
//! Whenever this connection is lost, replaced, or Redis says it forgot what it tracked, the
//! whole cache is dropped: reports may have been missed, so nothing held can be trusted. The
//! claims in entries.rs, and the number of the connection each read went over, make the drop
//! cover reads in flight too. A connection that stays silent (a network cut that closed nothing)
//! reports nothing either: so a session is served from memory only while the connection has
//! answered a read within the last [`ANSWERED_WITHIN`], and loads that cannot be served read
//! over it, which finds it silent after the command timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tracing::{debug, warn};

use crate::cache::entries::Entries;
use crate::cache::settings::Tracking;

/// How long a failure to open the connection stands before the next load tries again (doubled
/// after each failure in a row, up to [`RETRY_AT_MOST`]); within it, loads read over the pool
/// without the cache.
const RETRY_AFTER: Duration = Duration::from_millis(100);
const RETRY_AT_MOST: Duration = Duration::from_secs(10);

/// How recently the tracking connection must have answered for a held session to be served.
pub(crate) const ANSWERED_WITHIN: Duration = Duration::from_secs(1);

/// Why the tracking connection could not be opened, when, and how many times in a row.
struct Failed {
    at: Instant,
    error: redis::RedisError,
    times: u32,
}

/// Why a load gets no tracking connection.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// Another load is opening it.
    Opening,
    /// It could not be opened, now or a moment ago.
    Failed(redis::RedisError),
}

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
    failed: RwLock<Option<Failed>>,
    next_id: AtomicU64,
    /// When the current connection last answered, in ms since `origin`.
    answered_ms: AtomicU64,
    origin: Instant,
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
            answered_ms: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// True when a connection is open and answered within `within`: only then do its reports
    /// keep what is held exact.
    pub(crate) fn answered_within(&self, within: Duration) -> bool {
        let answered = self.answered_ms.load(Ordering::Relaxed);
        let now = self.origin.elapsed().as_millis() as u64;
        read(&self.current).is_some() && now.saturating_sub(answered) < within.as_millis() as u64
    }

    /// Connection `id` answered a read sent at `asked`.
    pub(crate) fn answered(&self, id: u64, asked: Instant) {
        if read(&self.current).as_ref().is_some_and(|open| open.id == id) {
            let at = asked.saturating_duration_since(self.origin).as_millis() as u64;
            self.answered_ms.fetch_max(at, Ordering::Relaxed);
        }
    }

    /// The open tracking connection and its number, opening one when there is none; the
    /// failure when it cannot be opened (remembered for a while, see [`RETRY_AFTER`]), or when
    /// another load is opening it: loads do not queue behind a connect.
    pub(crate) async fn connection(&self) -> Result<(u64, MultiplexedConnection), Unavailable> {
        if let Some(open) = self.open() {
            return Ok(open);
        }
        let Ok(_opening) = self.opening.try_lock() else { return Err(Unavailable::Opening) };
        if let Some(open) = self.open() {
            return Ok(open);
        }
        let times = match read(&self.failed).as_ref() {
            Some(failed) if failed.at.elapsed() < retry_after(failed.times) => {
                return Err(Unavailable::Failed(failed.error.clone()))
            }
            Some(failed) => failed.times,
            None => 0,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let asked = Instant::now();
        match self.connect(id).await {
            Ok(connection) => {
                // Whatever was held came through a connection that is gone, whose reports
                // may have been missed.
                self.entries.follow(id);
                *write(&self.current) = Some(Open { id, connection: connection.clone() });
                self.answered(id, asked);
                *write(&self.failed) = None;
                debug!(connection = id, "tracking connection open");
                Ok((id, connection))
            }
            Err(e) => {
                // Once per run of failures: a server that refuses tracking refuses it again.
                if times == 0 {
                    warn!(error = %e, "the tracking connection failed: loads go to Redis");
                } else {
                    debug!(error = %e, times, "the tracking connection failed again");
                }
                let failed = Failed { at: Instant::now(), error: e.clone(), times: times + 1 };
                *write(&self.failed) = Some(failed);
                Err(Unavailable::Failed(e))
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

    /// Drops connection `id` (a read on it failed, or found it silent) and everything held.
    pub(crate) fn lost(&self, id: u64) {
        forget(&self.current, id);
        self.entries.unfollow(id);
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
                self.entries.unfollow(self.id);
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

/// How long a run of `times` failures to open stands before the next try.
fn retry_after(times: u32) -> Duration {
    RETRY_AFTER.saturating_mul(1 << times.saturating_sub(1).min(7)).min(RETRY_AT_MOST)
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
