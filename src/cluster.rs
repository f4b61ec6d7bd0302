//! Pooling Redis Cluster connections, certificates included.
//!
//! deadpool-redis' cluster manager builds its client from URLs alone and so drops a custom CA
//! and client certificate. This manager keeps a [`ClusterClient`] built with them, and hands
//! the pool redis-rs cluster connections, which route each script call to the node that owns
//! its keys' slot and follow MOVED/ASK redirections during resharding and failover.

use std::sync::atomic::{AtomicUsize, Ordering};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::RedisError;

use crate::config::Config;
use crate::error::{Error, Result};

/// Redirections and reconnections one cluster request may make before it fails.
const CLUSTER_RETRIES: u32 = 3;

/// Creates and checks cluster connections for the pool.
pub(crate) struct ClusterManager {
    client: ClusterClient,
    pings: AtomicUsize,
}

impl std::fmt::Debug for ClusterManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterManager").finish_non_exhaustive()
    }
}

impl ClusterManager {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let mut builder = ClusterClientBuilder::new(config.seed_urls().collect::<Vec<_>>())
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.command_timeout)
            .overall_response_timeout(Some(config.command_timeout * 2))
            .retries(CLUSTER_RETRIES);
        if config.is_tls() {
            builder = builder.certs(config.tls.certificates()?);
        }
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("bad cluster configuration: {}", e.category())))?;
        Ok(ClusterManager { client, pings: AtomicUsize::new(0) })
    }
}

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<ClusterConnection, RedisError> {
        self.client.get_async_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        let token = self.pings.fetch_add(1, Ordering::Relaxed).to_string();
        let echo: String = redis::cmd("PING").arg(&token).query_async(conn).await?;
        if echo == token {
            Ok(())
        } else {
            Err(RecycleError::message("unexpected PING reply"))
        }
    }
}
