//! The connection pool: deadpool over redis-rs multiplexed (or cluster) connections.
//!
//! The pool bounds how many connections a service opens, replaces dead ones after a Redis
//! restart (each checkout is checked with a PING), and enforces the wait and connect timeouts.
//! The command timeout is set on each connection (redis-rs' response timeout), so a stalled
//! Redis fails a request in milliseconds instead of hanging it.

use deadpool::managed::{Object, Pool as ManagedPool, PoolError};
use deadpool_redis::{Manager, Runtime};
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, RedisResult};

use crate::cluster::ClusterManager;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::tls;

/// A pool of connections to one server, or to a cluster.
#[derive(Clone)]
pub(crate) enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(ManagedPool<ClusterManager>),
}

/// A connection taken from the pool; it goes back when dropped.
pub(crate) enum Connection {
    Single(deadpool_redis::Connection),
    Cluster(Object<ClusterManager>),
}

impl Pool {
    /// Builds the pool. Opens no connection yet: the first operation does.
    pub(crate) fn build(config: &Config) -> Result<Self> {
        if config.is_tls() {
            tls::install_crypto_provider();
        }
        if config.cluster {
            let manager = ClusterManager::new(config)?;
            return configure(ManagedPool::builder(manager), config).map(Pool::Cluster);
        }
        let manager = Manager::new_with_config(connection_info(config)?, connection_config(config))
            .map_err(|e| Error::Config(format!("bad Redis URL: {}", e.category())))?;
        configure(deadpool_redis::Pool::builder(manager), config).map(Pool::Single)
    }

    /// A connection, waiting at most the configured wait timeout for one.
    pub(crate) async fn get(&self) -> Result<Connection> {
        match self {
            Pool::Single(pool) => Ok(Connection::Single(pool.get().await?)),
            Pool::Cluster(pool) => pool.get().await.map(Connection::Cluster).map_err(cluster_error),
        }
    }

    /// Size and idle connections, for Debug output.
    pub(crate) fn status(&self) -> deadpool::Status {
        match self {
            Pool::Single(pool) => pool.status(),
            Pool::Cluster(pool) => pool.status(),
        }
    }
}

impl Connection {
    /// Sends one command and reads its reply.
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Connection::Single(conn) => cmd.query_async(conn).await,
            Connection::Cluster(conn) => cmd.query_async(&mut **conn).await,
        }
    }
}

/// The connection info, with custom TLS certificates attached (which deadpool's own config
/// would drop).
fn connection_info(config: &Config) -> Result<redis::ConnectionInfo> {
    let bad_url = |e: redis::RedisError| Error::Config(format!("bad Redis URL: {}", e.category()));
    let client = if config.is_tls() && config.tls.is_custom() {
        redis::Client::build_with_tls(config.url.as_str(), config.tls.certificates()?)
    } else {
        redis::Client::open(config.url.as_str())
    };
    Ok(client.map_err(bad_url)?.get_connection_info().clone())
}

fn connection_config(config: &Config) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout))
}

fn configure<M, W>(
    builder: deadpool::managed::PoolBuilder<M, W>,
    config: &Config,
) -> Result<ManagedPool<M, W>>
where
    M: deadpool::managed::Manager,
    W: From<Object<M>>,
{
    builder
        .max_size(config.pool_max_size)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.command_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Config(e.to_string()))
}

/// Cluster pool errors in the same shape as deadpool-redis' ones.
fn cluster_error(e: PoolError<redis::RedisError>) -> Error {
    Error::Pool(match e {
        PoolError::Timeout(t) => PoolError::Timeout(t),
        PoolError::Backend(e) => PoolError::Backend(e),
        PoolError::Closed => PoolError::Closed,
        PoolError::NoRuntimeSpecified => PoolError::NoRuntimeSpecified,
        PoolError::PostCreateHook(e) => PoolError::PostCreateHook(e),
    })
}
