//! Redis Cluster fixtures: redis-test's cluster (redis-cli --cluster create over real servers).

use redis::aio::MultiplexedConnection;
use redis_sessions::{Config, Pem, TlsConfig};
use redis_test::cluster::{RedisCluster, RedisClusterConfiguration};

/// A running cluster and this test's key prefix on it.
pub struct TestCluster {
    pub cluster: RedisCluster,
    pub prefix: String,
}

/// Three masters, with one replica each when `replicas`.
pub fn start(replicas: bool) -> TestCluster {
    let configuration = if replicas {
        RedisClusterConfiguration::single_replica_config()
    } else {
        RedisClusterConfiguration::default()
    };
    TestCluster { cluster: RedisCluster::new(configuration), prefix: super::unique_prefix() }
}

impl TestCluster {
    /// Seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        let tls = self.cluster.tls_paths.is_some();
        let scheme = if tls { "rediss" } else { "redis" };
        self.cluster
            .iter_servers()
            .filter_map(|s| s.host_and_port())
            .map(|(host, port)| format!("{scheme}://{host}:{port}"))
            .collect()
    }

    /// Config for this cluster, this test's prefix, and its CA when it speaks TLS.
    pub fn config(&self) -> Config {
        let mut config = Config::for_cluster(self.urls()).with_key_prefix(self.prefix.clone());
        if let Some(paths) = &self.cluster.tls_paths {
            config =
                config.with_tls(TlsConfig::default().with_ca_cert(Pem::File(paths.ca_crt.clone())));
        }
        config
    }

    /// A plain connection to every node that is a master now, with its port.
    pub async fn masters(&self) -> Vec<(u16, MultiplexedConnection)> {
        let mut masters = Vec::new();
        for server in self.cluster.iter_servers() {
            let Some((_, port)) = server.host_and_port() else { continue };
            let client = self.client(port);
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else { continue };
            let role: Vec<redis::Value> =
                redis::cmd("ROLE").query_async(&mut conn).await.expect("role");
            if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
                masters.push((port, conn));
            }
        }
        masters
    }

    /// A plain client for one node, trusting the cluster's CA when it speaks TLS.
    fn client(&self, port: u16) -> redis::Client {
        let Some(paths) = &self.cluster.tls_paths else {
            return redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
        };
        let ca = std::fs::read(&paths.ca_crt).expect("ca");
        let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(ca) };
        redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}"), certs).expect("client")
    }

    /// This test's keys, per master.
    pub async fn keys_by_master(&self) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        for (_, mut conn) in self.masters().await {
            let pattern = format!("{}*", self.prefix);
            all.push(redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.expect("keys"));
        }
        all
    }

    /// How many of this test's keys each master holds.
    pub async fn keys_per_master(&self) -> Vec<usize> {
        self.keys_by_master().await.iter().map(Vec::len).collect()
    }
}
