//! What every operation shares: the pool, the configuration and the server's clock, and the way
//! a call reaches Redis (a script, or a read's pipeline), dropping the connections a failure
//! shows are broken.

use std::sync::Arc;

use redis::{ErrorKind, FromRedisValue, ServerErrorKind, Value};
use tracing::debug;

use crate::cache::Cache;
use crate::config::Config;
use crate::connection::pool::Pool;
use crate::connection::scripts::Call;
use crate::error::Result;
use crate::seal::binding::Binding;
use crate::seal::sealer::Sealer;
use crate::store::server_clock::ServerClock;

/// The parts of a store every operation uses. Cheap to clone: the parts are shared.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) pool: Pool,
    pub(crate) config: Arc<Config>,
    /// The server's time as estimated here, which plain loads judge expiry by.
    pub(crate) clock: Arc<ServerClock>,
    /// The key ring, when values are sealed.
    pub(crate) sealer: Option<Arc<Sealer>>,
    /// The local cache, when it is on.
    pub(crate) cache: Option<Arc<Cache>>,
}

impl Core {
    /// The parts for `config`, validated. Opens no connection.
    pub(crate) fn new(config: Config) -> Result<Self> {
        config.validate()?;
        let pool = Pool::build(&config)?;
        let clock = Arc::new(ServerClock::new());
        let sealer = config.encryption.as_ref().map(Sealer::new).transpose()?.map(Arc::new);
        let cache = Cache::new(&config)?.map(Arc::new);
        Ok(Core { pool, config: Arc::new(config), clock, sealer, cache })
    }

    /// The seals of the session under `key`; `None` without encryption.
    pub(crate) fn binding(&self, key: &str) -> Option<Binding> {
        let sealer = self.sealer.as_ref()?;
        Some(Binding::new(Arc::clone(sealer), key))
    }

    /// Runs one script on a pooled connection: EVALSHA, and EVAL after a NOSCRIPT. Every
    /// script may write its keys, so their cached sessions are dropped before it is sent and
    /// again once it is answered: a read that raced it cannot fill in what it replaced.
    pub(crate) async fn run<T: FromRedisValue>(&self, call: &Call) -> Result<T> {
        self.drop_cached(call.keys());
        let reply = self.run_script(call).await;
        self.drop_cached(call.keys());
        reply
    }

    /// Drops the cached sessions under `keys`.
    pub(crate) fn drop_cached<'a>(&self, keys: impl Iterator<Item = &'a str>) {
        if let Some(cache) = &self.cache {
            keys.for_each(|key| cache.entries.invalidate(key));
        }
    }

    async fn run_script<T: FromRedisValue>(&self, call: &Call) -> Result<T> {
        let mut connection = self.pool.get().await?;
        let reply = match connection.query(call.evalsha()).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                debug!("NOSCRIPT: sending the script body");
                connection.query(&call.eval()).await
            }
            reply => reply,
        };
        self.settle(reply)
    }

    /// Sends a load's pipeline on a pooled connection; when the connection turns out to be
    /// broken (Redis restarted since it was opened), once more on a new one. Safe because the
    /// pipeline writes nothing but, when popping, the deletion of the flash messages it reads,
    /// which a second run cannot repeat (see flash_pop.rs), and at `touch_threshold` 0 the
    /// `PEXPIRE` of its read, which a second run repeats to the same effect. A timeout is not
    /// retried: Redis is slow, not gone, and a retry would double the wait.
    pub(crate) async fn run_read(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>> {
        let reply = self.pool.get().await?.pipeline(pipe).await;
        match reply {
            Err(e) if is_broken(&e) => {
                self.pool.discard_all();
                let reply = self.pool.get().await?.pipeline(pipe).await;
                self.settle(reply)
            }
            reply => self.settle(reply),
        }
    }

    /// The reply to one command that only reads (`HGET`, `HGETALL`), sent as [`run_read`]
    /// sends a pipeline; `Nil` when none came back.
    ///
    /// [`run_read`]: Self::run_read
    pub(crate) async fn read_one(&self, command: &redis::Cmd) -> Result<Value> {
        let mut pipe = redis::pipe();
        pipe.add_command(command.clone());
        Ok(self.run_read(&pipe).await?.into_iter().next().unwrap_or(Value::Nil))
    }

    /// Drops the connections when the reply says they are broken, so the next operation opens
    /// a new one; converts the error.
    pub(crate) fn settle<T>(&self, reply: redis::RedisResult<T>) -> Result<T> {
        match reply {
            Err(e) if is_broken(&e) => {
                self.pool.discard_all();
                Err(e.into())
            }
            reply => Ok(reply?),
        }
    }
}

/// True when the connection itself failed (closed, reset, refused), as opposed to Redis being
/// slow (a timeout, which redis-rs also counts as an I/O error) or answering with an error.
fn is_broken(e: &redis::RedisError) -> bool {
    !e.is_timeout() && (e.is_io_error() || e.is_connection_dropped())
}
