//! Test fixtures: real redis-server processes, started on free ports in temp dirs by the
//! crate's own test helper (`redis_sessions::test_server`).
//!
//! [`own_server`] always starts a private server (for tests that read its stats, flush its
//! scripts or restart it). [`any_server`] uses `REDIS_URL` when it is set (a container in a
//! user's CI, say) and a private server otherwise; each call gets its own key prefix, so tests
//! sharing one Redis never see each other's keys.
#![allow(dead_code, unused_imports, unreachable_pub)]

#[cfg(feature = "axum")]
pub mod browser;
pub mod cluster;
#[cfg(feature = "stateless")]
pub mod stateless;
pub mod tls;
mod workload;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis_sessions::test_server::TestServer;
use redis_sessions::{Config, Session, SessionStore};
use redis_test::utils::TlsFilePaths;
pub use workload::workload;

/// True when `needle` occurs in `haystack` (a secret in a stored value, say).
pub fn contains(haystack: &[u8], needle: impl AsRef<[u8]>) -> bool {
    let needle = needle.as_ref();
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An error's text and its sources', to look for the cause (a TLS refusal, say).
pub fn chain(err: &redis_sessions::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        text.push_str(&format!(" <- {e}"));
        source = e.source();
    }
    text
}

/// A Redis for one test, and the key prefix that test owns on it.
pub struct TestRedis {
    /// The server, when the test owns it (not under `REDIS_URL`).
    pub server: Option<TestServer>,
    pub url: String,
    pub prefix: String,
}

/// A private redis-server, started with `extra` arguments, ready to answer.
pub fn own_server(extra: &[&str]) -> TestRedis {
    let server = with_defaults(TestServer::builder()).args(extra).start();
    let server = server.expect("redis-server must be on PATH (apt-get install redis-server)");
    let url = server.url();
    TestRedis { server: Some(server), url, prefix: unique_prefix() }
}

/// A private redis-server that speaks only TLS (`--port 0`), with `tls-auth-clients` set by
/// `mtls`, on a free port (chosen again when another test's server took it meanwhile).
pub fn tls_server(paths: &TlsFilePaths, mtls: bool) -> TestRedis {
    for _ in 0..6 {
        let port = redis_test::utils::get_random_available_port();
        let started = with_defaults(TestServer::builder())
            .port(port)
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&paths.redis_crt)
            .arg("--tls-key-file")
            .arg(&paths.redis_key)
            .arg("--tls-ca-cert-file")
            .arg(&paths.ca_crt)
            .args(["--tls-auth-clients", if mtls { "yes" } else { "no" }])
            .start();
        match started {
            Ok(server) => {
                let url = format!("rediss://127.0.0.1:{port}");
                return TestRedis { server: Some(server), url, prefix: unique_prefix() };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("TLS redis-server: {e}"),
        }
    }
    panic!("no free port for a TLS redis-server in six tries");
}

/// `DEBUG` (for `DEBUG SLEEP`) on servers that have it switched off by default (Redis 7).
fn with_defaults(
    builder: redis_sessions::test_server::TestServerBuilder,
) -> redis_sessions::test_server::TestServerBuilder {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    let major = *MAJOR.get_or_init(|| {
        let out = std::process::Command::new("redis-server").arg("--version").output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        let version = text.split("v=").nth(1).unwrap_or_default();
        version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
    });
    match major > 6 {
        true => builder.args(["--enable-debug-command", "yes"]),
        false => builder,
    }
}

/// `REDIS_URL` when set, a private server otherwise.
pub fn any_server() -> TestRedis {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => TestRedis { server: None, url, prefix: unique_prefix() },
        _ => own_server(&[]),
    }
}

fn unique_prefix() -> String {
    format!("test:{:016x}:", rand::random::<u64>())
}

impl TestRedis {
    /// Sets `maxmemory` (1: out of memory at once, under the default `noeviction`; 0: no limit).
    pub async fn set_maxmemory(&self, bytes: u64) {
        self.assert_own("CONFIG SET maxmemory");
        let mut conn = self.conn().await;
        let set = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(bytes).clone();
        let _: () = set.query_async(&mut conn).await.expect("config");
    }

    /// Server-wide counters are this test's own only on its own server: on a shared one (under
    /// `REDIS_URL`) every other test moves them too.
    fn assert_own(&self, what: &str) {
        assert!(self.server.is_some(), "{what} counts the whole server: use own_server()");
    }

    /// Kills the server (SIGKILL: no shutdown save).
    pub fn kill(&mut self) {
        self.server.as_mut().expect("an own server").kill();
    }

    /// Starts the server again on the same port, in the same directory.
    pub fn restart(&mut self) {
        let server = self.server.as_mut().expect("an own server");
        server.restart().expect("the port was free again after the kill");
    }

    /// The port of the test's own server.
    pub fn port(&self) -> u16 {
        self.server.as_ref().expect("an own server").port()
    }

    /// Defaults for this server and this test's prefix.
    pub fn config(&self) -> Config {
        Config::from_url(self.url.clone()).with_key_prefix(self.prefix.clone())
    }

    pub fn store(&self) -> SessionStore {
        self.store_with(|c| c)
    }

    /// A store that seals values under one key (id 1): encryption at rest.
    pub fn encrypted_store(&self) -> SessionStore {
        let key = redis_sessions::EncryptionKey::from_bytes(1, [0x42; 32]);
        self.store_with(|config| config.with_encryption(redis_sessions::Encryption::new(key)))
    }

    /// Asserts that every value this test's sessions hold is sealed.
    pub async fn assert_all_sealed(&self, store: &SessionStore) {
        let usage = store.key_usage(|_, _| {}).await.expect("key usage scan");
        assert!(usage.sessions > 0 && usage.uses(1) > 0, "values sealed under key 1: {usage:?}");
        assert_eq!((usage.unsealed, usage.unreadable), (0, 0), "{usage:?}");
    }

    pub fn store_with(&self, adjust: impl FnOnce(Config) -> Config) -> SessionStore {
        SessionStore::new(adjust(self.config())).expect("valid config")
    }

    /// Every field name and value of every key under the test's prefix, with the key.
    pub async fn contents(&self) -> Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)> {
        let mut conn = self.conn().await;
        let mut all = Vec::new();
        for key in self.keys().await {
            let fields: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await.expect("hgetall");
            all.push((key, fields));
        }
        all
    }

    /// A plain connection, to look at what the store wrote.
    pub async fn conn(&self) -> MultiplexedConnection {
        let client = redis::Client::open(self.url.as_str()).expect("valid url");
        client.get_multiplexed_async_connection().await.expect("connect")
    }

    /// Waits until the server has finished loading its AOF or RDB after a start.
    pub async fn wait_loaded(&self) {
        for _ in 0..500 {
            let mut conn = match redis::Client::open(self.url.as_str()) {
                Ok(client) => match client.get_multiplexed_async_connection().await {
                    Ok(conn) => conn,
                    Err(_) => continue,
                },
                Err(e) => panic!("bad url: {e}"),
            };
            let info: redis::RedisResult<String> =
                redis::cmd("INFO").arg("persistence").query_async(&mut conn).await;
            if info.is_ok_and(|i| i.lines().any(|line| line.trim() == "loading:0")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server did not finish loading");
    }

    /// Every data file the server wrote in its directory, concatenated (AOF, RDB; not its log).
    pub fn files_written(&self) -> Vec<u8> {
        let dir = self.server.as_ref().expect("an own server").dir();
        let mut bytes = Vec::new();
        for entry in walk(dir).into_iter().filter(|path| !path.ends_with("redis.log")) {
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
        let text = self.info_text(section, field).await;
        if text.is_empty() {
            0
        } else {
            text.parse().expect("numeric info field")
        }
    }

    /// One `INFO` field as text (empty when absent).
    pub async fn info_text(&self, section: &str, field: &str) -> String {
        self.assert_own("INFO");
        let mut conn = self.conn().await;
        let info: String =
            redis::cmd("INFO").arg(section).query_async(&mut conn).await.expect("info");
        let prefix = format!("{field}:");
        info.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_default().trim().to_owned()
    }

    /// How often `command` ran since the last `CONFIG RESETSTAT` (scripts' calls included).
    pub async fn command_calls(&self, command: &str) -> i64 {
        self.assert_own("INFO commandstats");
        let mut conn = self.conn().await;
        let info: String =
            redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.expect("info");
        let line = info.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:")));
        line.and_then(|l| l.split("calls=").nth(1))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().expect("calls is a number"))
    }

    /// How many scripts ran since the last `CONFIG RESETSTAT` (`EVALSHA` and `EVAL`).
    pub async fn script_calls(&self) -> i64 {
        self.command_calls("evalsha").await + self.command_calls("eval").await
    }

    pub async fn reset_stats(&self) {
        self.assert_own("CONFIG RESETSTAT");
        let mut conn = self.conn().await;
        let _: () =
            redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.expect("resetstat");
    }
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

/// Waits until every replica of the primary behind `conn` has acknowledged everything it was
/// sent (the offsets `ROLE` reports); false after `timeout`. `WAIT` on a fresh connection would
/// not do: it counts only that connection's own writes, so it returns at once.
pub async fn replicas_caught_up(conn: &mut MultiplexedConnection, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, offset, replicas): (String, i64, Vec<(String, String, String)>) =
            redis::cmd("ROLE").query_async(conn).await.expect("role");
        let acked = |replica: &(String, String, String)| replica.2.parse() == Ok(offset);
        if !replicas.is_empty() && replicas.iter().all(acked) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A saved session holding `a0` .. `a{n-1}`, each set to its index (more than four are folded
/// into the packed record by that first save).
pub async fn saved_with(store: &SessionStore, n: usize) -> Session {
    let mut session = store.create().await.expect("create");
    insert_numbered(&mut session, "a", n);
    store.save(&mut session).await.expect("save");
    session
}

/// Inserts `{prefix}0` .. `{prefix}{n-1}`, each set to its index.
pub fn insert_numbered(session: &mut Session, prefix: &str, n: usize) {
    for i in 0..n {
        session.insert(&format!("{prefix}{i}"), &i).expect("insert");
    }
}

/// Saves a session, then loads every token that differs from its token in one character (and is
/// still well-formed): none of them opens it, or anything else. Tags included: a cookie's every
/// character counts.
pub async fn assert_altered_tokens_open_nothing(store: &SessionStore) {
    const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut session = store.create().await.expect("create");
    session.insert("user", &"ada").expect("insert");
    store.save(&mut session).await.expect("save");
    let token = session.token().expose().to_owned();
    let mut tried_in_tag = 0;
    for at in 0..token.len() {
        for &other in BASE64URL.iter().filter(|&&c| c != token.as_bytes()[at]) {
            let mut altered = token.clone().into_bytes();
            altered[at] = other;
            let altered = String::from_utf8(altered).expect("ASCII");
            if redis_sessions::Token::parse(&altered).is_none() {
                continue; // not a token this crate could have made (the secret's trailing bits)
            }
            tried_in_tag += usize::from(at < 4);
            let loaded = store.load(&altered).await.expect("load");
            assert!(loaded.is_none(), "a token altered at character {at} opened a session");
        }
    }
    assert_eq!(tried_in_tag, 4 * 63, "every alteration of the tag was tried");
    let loaded = store.load(&token).await.expect("load").expect("the real token still opens it");
    assert_eq!(loaded.get::<String>("user").expect("decode").as_deref(), Some("ada"));
}
