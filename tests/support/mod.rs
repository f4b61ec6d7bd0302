//! Test fixtures: real redis-server processes, started by redis-test on free ports in temp dirs.
//!
//! [`own_server`] always starts a private server (for tests that read its stats, flush its
//! scripts or restart it). [`any_server`] uses `REDIS_URL` when it is set (a container in a
//! user's CI, say) and a private server otherwise; each call gets its own key prefix, so tests
//! sharing one Redis never see each other's keys.
#![allow(dead_code, unused_imports, unreachable_pub)]

mod workload;

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis_sessions::{Config, SessionStore};
use redis_test::server::RedisServer;
pub use workload::workload;

/// A Redis for one test, and the key prefix that test owns on it.
pub struct TestRedis {
    pub server: Option<RedisServer>,
    /// The server's working directory (AOF and RDB files), when the test owns the server.
    pub dir: Option<tempfile::TempDir>,
    pub url: String,
    pub prefix: String,
}

/// A private redis-server, started with `extra` arguments, ready to answer.
pub fn own_server(extra: &[&str]) -> TestRedis {
    let port = redis_test::utils::get_random_available_port();
    let addr = redis::ConnectionAddr::Tcp("127.0.0.1".into(), port);
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_arg = dir.path().to_str().expect("utf-8 temp dir").to_owned();
    let server = RedisServer::new_with_addr_tls_modules_and_spawner(
        addr,
        None,
        None,
        false,
        None,
        &[],
        |cmd| {
            cmd.arg("--dir").arg(&dir_arg).args(extra);
            cmd.spawn().expect("redis-server must be on PATH (apt-get install redis-server)")
        },
    );
    let url = format!("redis://127.0.0.1:{port}");
    wait_until_ready(&url);
    TestRedis { server: Some(server), dir: Some(dir), url, prefix: unique_prefix() }
}

/// `REDIS_URL` when set, a private server otherwise.
pub fn any_server() -> TestRedis {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            TestRedis { server: None, dir: None, url, prefix: unique_prefix() }
        }
        _ => own_server(&[]),
    }
}

fn unique_prefix() -> String {
    format!("test:{:016x}:", rand::random::<u64>())
}

fn wait_until_ready(url: &str) {
    let client = redis::Client::open(url).expect("valid url");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(mut conn) = client.get_connection() {
            if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server at {url} did not start within 10 s");
}

impl TestRedis {
    /// Defaults for this server and this test's prefix.
    pub fn config(&self) -> Config {
        Config::from_url(self.url.clone()).with_key_prefix(self.prefix.clone())
    }

    pub fn store(&self) -> SessionStore {
        self.store_with(|c| c)
    }

    pub fn store_with(&self, adjust: impl FnOnce(Config) -> Config) -> SessionStore {
        SessionStore::new(adjust(self.config())).expect("valid config")
    }

    /// A plain connection, to look at what the store wrote.
    pub async fn conn(&self) -> MultiplexedConnection {
        let client = redis::Client::open(self.url.as_str()).expect("valid url");
        client.get_multiplexed_async_connection().await.expect("connect")
    }

    /// Every file the server wrote in its directory, concatenated (AOF, RDB).
    pub fn files_written(&self) -> Vec<u8> {
        let dir = self.dir.as_ref().expect("an own server").path();
        let mut bytes = Vec::new();
        for entry in walk(dir) {
            bytes.extend(std::fs::read(entry).unwrap_or_default());
        }
        bytes
    }

    /// Every key under this test's prefix.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.conn().await;
        let pattern = format!("{}*", self.prefix);
        let mut iter: redis::AsyncIter<String> = conn.scan_match(&pattern).await.expect("scan");
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key.expect("key"));
        }
        keys
    }

    /// One `INFO` field as an integer (0 when absent).
    pub async fn info_field(&self, section: &str, field: &str) -> i64 {
        let mut conn = self.conn().await;
        let info: String =
            redis::cmd("INFO").arg(section).query_async(&mut conn).await.expect("info");
        info_value(&info, field)
    }

    /// How often `command` ran since the last `CONFIG RESETSTAT` (scripts' calls included).
    pub async fn command_calls(&self, command: &str) -> i64 {
        let mut conn = self.conn().await;
        let info: String =
            redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.expect("info");
        let line = info.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:")));
        line.and_then(|l| l.split("calls=").nth(1))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().expect("calls is a number"))
    }

    pub async fn reset_stats(&self) {
        let mut conn = self.conn().await;
        let _: () =
            redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.expect("resetstat");
    }
}

fn info_value(info: &str, field: &str) -> i64 {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map_or(0, |v| v.trim().parse().expect("numeric info field"))
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
