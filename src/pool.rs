//! The connection pool: deadpool-redis over redis-rs multiplexed connections.
//!
//! The pool bounds how many connections a service opens, replaces dead ones after a Redis
//! restart, and enforces the wait and connect timeouts. The command timeout is set on each
//! connection (redis-rs' response timeout), so a stalled Redis fails a request in milliseconds
//! instead of hanging it.

use deadpool_redis::{Manager, Pool, Runtime};
use redis::AsyncConnectionConfig;

use crate::config::Config;
use crate::error::{Error, Result};

/// Builds the pool. Opens no connection yet: the first operation does.
pub(crate) fn build(config: &Config) -> Result<Pool> {
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout));
    let manager = Manager::new_with_config(config.url.as_str(), connection)
        .map_err(|e| Error::Config(format!("bad Redis URL: {}", e.category())))?;
    Pool::builder(manager)
        .max_size(config.pool_max_size)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.command_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Config(e.to_string()))
}
