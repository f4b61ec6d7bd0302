//! Opening connections: to one server (TLS certificates kept) or to a Redis Cluster.
//!
//! Clients built from URLs alone would drop a custom CA and client certificate, so the clients
//! here are built with them:
//! [`redis::Client::build_with_tls`] for one server, [`ClusterClientBuilder::certs`] for a
//! cluster, whose connections route each call to the node that owns its key's slot and follow
//! MOVED/ASK redirections during resharding and failover.

use redis::aio::MultiplexedConnection;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisResult, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::tls;

/// Redirections and reconnections one cluster request may make before it fails.
const CLUSTER_RETRIES: u32 = 3;

/// Knows how to open a connection.
pub(crate) enum Connector {
    Single(redis::Client, AsyncConnectionConfig),
    Cluster(ClusterClient),
}

/// An open connection. Both kinds are multiplexed: clones share one socket (per node), and
/// many requests can be in flight on it at once.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connector {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        if config.is_tls() {
            tls::install_crypto_provider();
        }
        if config.cluster {
            return cluster_client(config).map(Connector::Cluster);
        }
        let bad_url =
            |e: redis::RedisError| Error::Config(format!("bad Redis URL: {}", e.category()));
        let client = if config.is_tls() && config.tls.is_custom() {
            redis::Client::build_with_tls(config.url.as_str(), config.tls.certificates()?)
        } else {
            redis::Client::open(config.url.as_str())
        };
        let timeouts = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout));
        Ok(Connector::Single(client.map_err(bad_url)?, timeouts))
    }

    /// True for a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Connector::Cluster(_))
    }

    /// Opens a connection (bounded by the connect timeout).
    pub(crate) async fn connect(&self) -> RedisResult<Connection> {
        match self {
            Connector::Single(client, timeouts) => client
                .get_multiplexed_async_connection_with_config(timeouts)
                .await
                .map(Connection::Single),
            Connector::Cluster(client) => {
                client.get_async_connection().await.map(Connection::Cluster)
            }
        }
    }
}

fn cluster_client(config: &Config) -> Result<ClusterClient> {
    let mut builder = ClusterClientBuilder::new(config.seed_urls().collect::<Vec<_>>())
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.command_timeout)
        .overall_response_timeout(Some(config.command_timeout * 2))
        .retries(CLUSTER_RETRIES);
    if config.is_tls() {
        builder = builder.certs(config.tls.certificates()?);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("bad cluster configuration: {}", e.category())))
}

impl Connection {
    /// Sends one command and reads its reply.
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Connection::Single(conn) => cmd.query_async(conn).await,
            Connection::Cluster(conn) => cmd.query_async(conn).await,
        }
    }

    /// Sends a pipeline (all its commands on one key) and reads the replies.
    pub(crate) async fn pipeline(&mut self, pipe: &Pipeline) -> RedisResult<Vec<Value>> {
        match self {
            Connection::Single(conn) => pipe.query_async(conn).await,
            Connection::Cluster(conn) => pipe.query_async(conn).await,
        }
    }
}
