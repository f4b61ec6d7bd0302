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
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, IntoConnectionInfo, Pipeline, ProtocolVersion,
    RedisResult, Value,
};

use crate::config::Config;
use crate::connection::tls;
use crate::error::{Error, Result};

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
        let client = single_client(config, ProtocolVersion::RESP2)?;
        Ok(Connector::Single(client, timeouts(config)))
    }

    /// True for a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Connector::Cluster(_))
    }

    /// Opens a connection (bounded by the connect timeout, and the `PING` by the command
    /// timeout). A single server's is checked with a `PING` before it is handed out, so that
    /// one the server refuses as it opens (at its `maxclients`, or for want of a password)
    /// fails here, with the server's reason, and never joins the pool, where its first failure
    /// would drop the good connections too.
    pub(crate) async fn connect(&self) -> RedisResult<Connection> {
        match self {
            Connector::Single(client, timeouts) => {
                let opened = async {
                    let mut connection =
                        client.get_multiplexed_async_connection_with_config(timeouts).await?;
                    redis::cmd("PING").query_async::<()>(&mut connection).await?;
                    RedisResult::Ok(Connection::Single(connection))
                };
                match opened.await {
                    Err(e) if e.is_connection_dropped() && !e.is_connection_refusal() => {
                        Err(refusal(client).await.unwrap_or(e))
                    }
                    opened => opened,
                }
            }
            Connector::Cluster(client) => {
                client.get_async_connection().await.map(Connection::Cluster)
            }
        }
    }
}

/// A client for one server, speaking `protocol`, with the TLS certificates of `config`.
pub(crate) fn single_client(config: &Config, protocol: ProtocolVersion) -> Result<redis::Client> {
    let bad_url = |e: redis::RedisError| Error::Config(format!("bad Redis URL: {}", e.category()));
    // No `CLIENT SETINFO` on connecting: redis-rs ignores its replies, so a server that
    // refuses the connection (at its `maxclients`) would have its reason swallowed there,
    // and the connection fail later with a bare "connection reset". Without it, the `PING`
    // that `connect` sends first reads the server's reason.
    let info = config.url.as_str().into_connection_info().map_err(bad_url)?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name().set_protocol(protocol);
    let info = info.set_redis_settings(settings);
    let client = if config.is_tls() && config.tls.is_custom() {
        redis::Client::build_with_tls(info, config.tls.certificates()?)
    } else {
        redis::Client::open(info)
    };
    client.map_err(bad_url)
}

/// The connect and response timeouts of a connection to one server.
pub(crate) fn timeouts(config: &Config) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout))
}

fn cluster_client(config: &Config) -> Result<ClusterClient> {
    let mut builder = ClusterClientBuilder::new(config.seed_urls().collect::<Vec<_>>())
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.command_timeout)
        .overall_response_timeout(Some(config.command_timeout * 2))
        .retries(CLUSTER_RETRIES)
        // The waits before a retry (after CLUSTERDOWN, TRYAGAIN, or a node that cannot be
        // reached): redis-rs waits at least 1,280 ms by default, longer than the overall
        // timeout, so a request that had to wait once timed out instead of retrying or failing
        // fast. These fit every retry within the overall timeout.
        .min_retry_wait(whole_ms(config.command_timeout / 10))
        .max_retry_wait(whole_ms(config.command_timeout / 2));
    if config.is_tls() {
        builder = builder.certs(config.tls.certificates()?);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("bad cluster configuration: {}", e.category())))
}

/// How long [`refusal`] waits for a server's line.
const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Why the server closed a new connection, when it said why. At its `maxclients`, Redis writes
/// `-ERR max number of clients reached` to a new connection and closes it; redis-rs reads the
/// line as a reply to nothing and reports only the closed connection. So a second connection
/// reads the line itself. Plain TCP only: over TLS the line comes before any handshake.
async fn refusal(client: &redis::Client) -> Option<redis::RedisError> {
    use tokio::io::AsyncReadExt;
    let redis::ConnectionAddr::Tcp(host, port) = client.get_connection_info().addr() else {
        return None;
    };
    let first_line = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await.ok()?;
        let mut line = [0u8; 128];
        let read = stream.read(&mut line).await.ok()?;
        Some(line[..read].to_vec())
    };
    let line = tokio::time::timeout(REFUSAL_WAIT, first_line).await.ok()??;
    let line = std::str::from_utf8(&line).ok()?.strip_prefix("-ERR ")?;
    let reason = line.lines().next()?.to_owned();
    let kind = redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError);
    Some(redis::RedisError::from((kind, "the server refused the connection", reason)))
}

/// A duration in whole milliseconds, at least 1, as redis-rs' retry settings take it.
fn whole_ms(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
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
