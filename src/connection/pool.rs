//! Shared multiplexed connections: many requests in flight on few sockets.
//!
//! A redis-rs multiplexed connection is built to be shared: clones send on one socket, and
//! requests from many tasks are written and read in batches, so Redis serves them with few
//! system calls. A pool that checks a connection out per operation (deadpool-redis) costs more:
//! it recycles each checkout with an `UNWATCH` + `PING` round trip (two round trips per
//! operation instead of one), and a checked-out connection carries one request at a time
//! (docs/performance.md has the figures). This pool keeps `pool_max_size` connections and hands
//! each operation a clone of the next one, round robin.
//!
//! Failure handling stays what a pool gives: when a connection breaks (closed, reset, refused),
//! all of them are dropped, and the next operation on each slot opens a new one, bounded by the
//! connect timeout. A timeout drops nothing: Redis is slow, and the connection is fine. Nothing
//! retries in the background and nothing waits for a dead server: when a slot cannot open its
//! connection, the failure is remembered for [`RETRY_AFTER`], and within that time operations
//! that land on the slot use another slot's open connection, or fail at once with that failure
//! when none is open, instead of queueing to connect again. So a server that is down fails
//! operations fast, and one that refuses some connections (at its `maxclients`) leaves the
//! others serving every operation. Reads (a load's, or a flash pop's) are retried once on a new
//! connection, so the first read after a restart does not fail (they write nothing but, when
//! popping, the deletion of the messages they read, which a retry cannot repeat). (A cluster
//! connection handles a failed node itself and is never dropped.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::config::Config;
use crate::connection::connector::{Connection, Connector};
use crate::error::{Error, Result};

/// How long a slot that failed to open its connection leaves it closed: operations on it use
/// another slot's connection or fail at once. Short, so that a server back from a restart is
/// found soon; long enough that a server that is down costs a refused connect per slot a few
/// times a second, not one per operation.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// One shared connection: read (cloned) by every operation, written when it is (re)opened.
struct Slot {
    current: RwLock<Option<Connection>>,
    /// Held while opening, so that one operation opens and the others wait for it.
    opening: Mutex<()>,
    /// When the last attempt to open failed, and why, until an attempt succeeds.
    failed: RwLock<Option<(Instant, redis::RedisError)>>,
}

/// `pool_max_size` shared connections, opened on first use.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    connector: Connector,
    slots: Vec<Slot>,
    next: AtomicUsize,
    opened: AtomicUsize,
    wait_timeout: std::time::Duration,
}

impl Pool {
    /// Builds the pool. Opens no connection yet: the first operation does.
    pub(crate) fn build(config: &Config) -> Result<Self> {
        let slots = (0..config.pool_max_size)
            .map(|_| Slot {
                current: RwLock::new(None),
                opening: Mutex::new(()),
                failed: RwLock::new(None),
            })
            .collect();
        let inner = Inner {
            connector: Connector::new(config)?,
            slots,
            next: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
            wait_timeout: config.wait_timeout,
        };
        Ok(Pool { inner: Arc::new(inner) })
    }

    /// A connection for one operation: a clone of the next slot's, opened if need be. The
    /// common case takes a read lock and clones; no timer, no await. A slot that cannot open
    /// its connection lends another slot's (see the module's doc).
    pub(crate) async fn get(&self) -> Result<Connection> {
        let slot = &self.inner.slots
            [self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.slots.len()];
        if let Some(connection) = slot.connection() {
            return Ok(connection);
        }
        if let Some(failure) = slot.recent_failure() {
            return self.lend(failure);
        }
        let opening = tokio::time::timeout(self.inner.wait_timeout, slot.opening.lock());
        let _opening = opening.await.map_err(|_| Error::PoolTimeout)?;
        if let Some(connection) = slot.connection() {
            return Ok(connection); // another operation opened it while we waited
        }
        if let Some(failure) = slot.recent_failure() {
            return self.lend(failure); // or failed to
        }
        match self.inner.connector.connect().await {
            Ok(connection) => {
                self.inner.opened.fetch_add(1, Ordering::Relaxed);
                slot.set(Some(connection.clone()));
                *write(&slot.failed) = None;
                Ok(connection)
            }
            Err(e) => {
                *write(&slot.failed) = Some((Instant::now(), e.clone()));
                self.lend(e)
            }
        }
    }

    /// For a slot that cannot open its connection: any other slot's open one, or `failure`.
    fn lend(&self, failure: redis::RedisError) -> Result<Connection> {
        let open = self.inner.slots.iter().find_map(Slot::connection);
        open.ok_or_else(|| Error::connecting(failure))
    }

    /// Drops every connection, after one broke: they all reach the same server, so when one
    /// breaks (a restart, a failover, a network cut) the others most likely broke too, and each
    /// would otherwise fail one more operation to find out. Opening them again costs a connect
    /// each, once. Cluster connections are kept: they reconnect to a failed node by themselves,
    /// and dropping them would reconnect to every node of the cluster.
    pub(crate) fn discard_all(&self) {
        if self.inner.connector.is_cluster() {
            return;
        }
        for slot in &self.inner.slots {
            slot.set(None);
        }
    }

    /// True for a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.inner.connector.is_cluster()
    }

    /// Connections opened so far (reconnections included), for Debug output.
    pub(crate) fn opened(&self) -> usize {
        self.inner.opened.load(Ordering::Relaxed)
    }
}

impl Slot {
    fn connection(&self) -> Option<Connection> {
        read(&self.current).clone()
    }

    fn set(&self, connection: Option<Connection>) {
        *write(&self.current) = connection;
    }

    /// Why the last attempt to open failed, when it failed less than [`RETRY_AFTER`] ago.
    fn recent_failure(&self) -> Option<redis::RedisError> {
        let failed = read(&self.failed);
        let (at, error) = failed.as_ref()?;
        (at.elapsed() < RETRY_AFTER).then(|| error.clone())
    }
}

// A poisoned lock only means a panic elsewhere while cloning; the value is still valid.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}
