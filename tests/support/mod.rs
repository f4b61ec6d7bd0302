//! Test fixtures: real redis-server processes, started by redis-test on free ports in temp dirs.
//!
//! [`own_server`] always starts a private server (for tests that read its stats, flush its
//! scripts or restart it). [`any_server`] uses `REDIS_URL` when it is set (a container in a
//! user's CI, say) and a private server otherwise; each call gets its own key prefix, so tests
//! sharing one Redis never see each other's keys.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod cluster;
pub mod tls;
mod workload;

use std::path::Path;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis_sessions::{Config, Session, SessionStore};
use redis_test::server::RedisServer;
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
    pub server: Option<RedisServer>,
    /// The server's working directory (AOF and RDB files), when the test owns the server.
    pub dir: Option<tempfile::TempDir>,
    /// How the server was started, to start it again on the same port and directory.
    pub spec: Option<ServerSpec>,
    pub url: String,
    pub prefix: String,
}

/// What a private server is started with.
#[derive(Clone)]
pub struct ServerSpec {
    pub port: u16,
    pub tls: Option<TlsFilePaths>,
    pub mtls: bool,
    pub extra: Vec<String>,
}

/// A private redis-server, started with `extra` arguments, ready to answer.
pub fn own_server(extra: &[&str]) -> TestRedis {
    let port = redis_test::utils::get_random_available_port();
    let extra = extra.iter().map(|s| s.to_string()).collect();
    start(ServerSpec { port, tls: None, mtls: false, extra })
}

/// Starts `spec` in a new temp dir. When another test's server took the port between its
/// choice and the start (tests run in parallel), starts again on a new one.
pub fn start(mut spec: ServerSpec) -> TestRedis {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = spawn(&spec, dir.path());
    for _ in 0..5 {
        if server.is_some() {
            break;
        }
        spec.port = redis_test::utils::get_random_available_port();
        server = spawn(&spec, dir.path());
    }
    let server = server.expect("a free port in six tries");
    let scheme = if spec.tls.is_some() { "rediss" } else { "redis" };
    let url = format!("{scheme}://127.0.0.1:{}", spec.port);
    TestRedis {
        server: Some(server),
        dir: Some(dir),
        spec: Some(spec),
        url,
        prefix: unique_prefix(),
    }
}

/// Starts redis-server for `spec`; `None` when it could not listen on the port.
fn spawn(spec: &ServerSpec, dir: &Path) -> Option<RedisServer> {
    let addr = match spec.tls {
        None => redis::ConnectionAddr::Tcp("127.0.0.1".into(), spec.port),
        Some(_) => redis::ConnectionAddr::TcpTls {
            host: "127.0.0.1".into(),
            port: spec.port,
            insecure: false,
            tls_params: None,
        },
    };
    let server = RedisServer::new_with_addr_tls_modules_and_spawner(
        addr,
        None,
        spec.tls.clone(),
        spec.mtls,
        None,
        &[],
        |cmd| {
            cmd.arg("--dir").arg(dir).args(&spec.extra);
            cmd.spawn().expect("redis-server must be on PATH (apt-get install redis-server)")
        },
    );
    ready(server)
}

/// The server once its log says it is ready; `None` when it exited because its port was taken
/// (a connection to the port would not tell: it may be another test's server). Any other exit
/// fails the test with the server's log.
fn ready(mut server: RedisServer) -> Option<RedisServer> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if server.log_file_contents().unwrap_or_default().contains("Ready to accept connections") {
            return Some(server);
        }
        if matches!(server.process.try_wait(), Ok(Some(_))) {
            let log = server.log_file_contents().unwrap_or_default();
            assert!(log.contains("Address already in use"), "redis-server exited:\n{log}");
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("redis-server did not start within 10 s");
}

/// `REDIS_URL` when set, a private server otherwise.
pub fn any_server() -> TestRedis {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            TestRedis { server: None, dir: None, spec: None, url, prefix: unique_prefix() }
        }
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
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }

    /// Starts the server again on the same port, in the same directory.
    pub fn restart(&mut self) {
        self.kill();
        let spec = self.spec.as_ref().expect("an own server");
        let dir = self.dir.as_ref().expect("an own server").path();
        self.server = Some(spawn(spec, dir).expect("the port was free again after the kill"));
    }

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
