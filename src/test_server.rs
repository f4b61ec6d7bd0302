//! [`TestServer`]: a throwaway `redis-server` for tests, examples and benchmarks.
//!
//! Sessions are tested against a real Redis here, never a mock: a mock would agree with any
//! script. A `TestServer` is a `redis-server` from `PATH`, started on a free port of 127.0.0.1
//! in a temp dir of its own, persisting nothing unless told to, and stopped (and its dir
//! removed) when dropped.
//!
//! ```no_run
//! use redis_sessions::test_server::TestServer;
//! use redis_sessions::SessionStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = TestServer::start()?;
//! let store = SessionStore::connect(redis.config()).await?;
//! let mut session = store.create().await?;
//! session.insert("user", "ada")?;
//! store.save(&mut session).await?;
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Config;

/// How long a server may take to say it is ready (loading a large AOF included).
const READY_WITHIN: Duration = Duration::from_secs(10);
/// Starts tried before giving up when other processes keep taking the chosen port.
const PORT_TRIES: usize = 6;

/// The stored format's bytes, for tests that read or write a session's hash directly. Each is
/// the crate's own constant, not a copy: a test that uses them follows the format.
pub mod stored {
    /// The first byte of every metadata value (`@f`, `@t`, `@i`): never valid MessagePack, so
    /// no attribute value can start with it.
    pub const META: u8 = crate::format::META;
    /// After [`META`]: the pending flash messages (`@f`).
    pub const FLASH: u8 = crate::format::FLASH;
    /// After [`META`]: the key's expiry (`@t`), a big-endian u64 of ms on the server's clock.
    pub const EXPIRY: u8 = crate::format::EXPIRY;
    /// After [`META`]: a session's own idle timeout and touch threshold (`@i`).
    pub const OWN_TIMEOUTS: u8 = crate::format::OWN_TIMEOUTS;
    /// Where the absolute deadline (a big-endian u64 of ms) sits in the packed record's header.
    pub const DEADLINE_AT: usize = crate::format::DEADLINE_AT;
    /// Where the attribute count (a big-endian u16) sits in the packed record's header.
    pub const COUNT_AT: usize = crate::format::COUNT_AT;
    /// Where the record's id (a big-endian u32) sits in the packed record's header.
    pub const ID_AT: usize = crate::format::ID_AT;
    /// The packed record's header length: the first entry starts here.
    pub const HEADER_LEN: usize = crate::format::HEADER_LEN;

    /// The Redis key of the session `token` names under `config`; `None` for a malformed
    /// token.
    ///
    /// ```
    /// use redis_sessions::{test_server::stored::session_key, Config};
    /// let config = Config::default().with_key_prefix("app:");
    /// assert!(session_key(&config, "not a token").is_none());
    /// ```
    pub fn session_key(config: &crate::Config, token: &str) -> Option<String> {
        let token = crate::token::Token::parse(token)?;
        Some(crate::format::keys::session_key(config, &token))
    }
}

/// The Lua source of the store's script `name` (a file of `lua/`: `get_and_touch`, `save`,
/// `compact`, ...) as the store sends it with `EVAL`, the helpers it needs in front; or, for
/// `"helpers"`, the helpers of every script (all but the saves' own). `None` for any other
/// name. For tests and benchmarks that run a script, or Lua of their own, directly.
///
/// ```
/// let source = redis_sessions::test_server::lua_source("get_and_touch").expect("a script");
/// assert!(source.contains("server_ms"), "the helpers come in front");
/// assert!(redis_sessions::test_server::lua_source("nonesuch").is_none());
/// ```
pub fn lua_source(name: &str) -> Option<&'static str> {
    crate::connection::scripts::source(name)
}

/// A `redis-server` of its own, on 127.0.0.1, stopped when dropped. See the
/// [module docs](self).
///
/// It is stopped by `Drop`: a test process killed outright (SIGKILL, a harness's timeout
/// without unwinding, `panic = "abort"`) leaves it running, with its temp dir.
pub struct TestServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    remove_dir: bool,
    program: OsString,
    args: Vec<OsString>,
}

/// Settings for a [`TestServer`]: extra `redis-server` arguments, a port, a directory.
#[derive(Clone)]
#[must_use]
pub struct TestServerBuilder {
    program: OsString,
    args: Vec<OsString>,
    port: Option<u16>,
    dir: Option<PathBuf>,
}

impl TestServer {
    /// Starts a server with the defaults of [`TestServer::builder`].
    ///
    /// # Errors
    ///
    /// As [`TestServerBuilder::start`].
    pub fn start() -> io::Result<TestServer> {
        TestServer::builder().start()
    }

    /// Settings to start a server with: `redis-server` from `PATH`, a free port, a new temp
    /// dir, and nothing saved to disk (`--save ""`, no AOF), unless arguments say otherwise.
    ///
    /// ```no_run
    /// # use redis_sessions::test_server::TestServer;
    /// # fn demo() -> std::io::Result<()> {
    /// let redis = TestServer::builder().args(["--appendonly", "yes"]).start()?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            program: "redis-server".into(),
            args: Vec::new(),
            port: None,
            dir: None,
        }
    }

    /// `None` when something answers at `url` within half a second (any reply to `PING`
    /// counts: a server that wants a password is still there); a new server when nothing
    /// does. A `rediss://` or Unix socket URL is trusted without a check. For examples that use
    /// a Redis the user runs, and one of their own when none runs.
    ///
    /// # Errors
    ///
    /// As [`TestServerBuilder::start`].
    pub fn unless_answering(url: &str) -> io::Result<Option<TestServer>> {
        if answers(url) {
            return Ok(None);
        }
        TestServer::start().map(Some)
    }

    /// `redis://127.0.0.1:<port>`, without a password: with `--requirepass` among the
    /// arguments, put it in the URL yourself.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// [`Config::from_url`] of this server.
    pub fn config(&self) -> Config {
        Config::from_url(self.url())
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its working directory: where an AOF or RDB file goes, and its log (`redis.log`, and
    /// `stderr.log` for what it says before the log opens).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the server logged so far (empty when the log cannot be read).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Kills the server at once (SIGKILL: nothing is saved on the way out), as a crash would.
    /// Nothing happens when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    /// Starts the server again (after [`kill`](Self::kill), or killing it first) on the same
    /// port, in the same directory, with the same arguments: it loads what it had persisted.
    ///
    /// # Errors
    ///
    /// As [`TestServerBuilder::start`]; the port may have been taken meanwhile.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.child = Some(spawn(&self.program, &self.args, self.port, &self.dir)?);
        Ok(())
    }
}

/// Shows where the server is, not its arguments: they may hold a password.
impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = self.child.is_some();
        f.debug_struct("TestServer")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .field("running", &running)
            .finish_non_exhaustive()
    }
}

/// Shows the program, port and directory, not the arguments: they may hold a password.
impl std::fmt::Debug for TestServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServerBuilder")
            .field("program", &self.program)
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl TestServerBuilder {
    /// Adds one `redis-server` argument, after the defaults (so it can override them; not
    /// `--logfile`, since readiness is read from the log, and `--loglevel` must stay at
    /// `notice` or `verbose` for the same reason). Default none.
    ///
    /// ```no_run
    /// # use redis_sessions::test_server::TestServer;
    /// # fn demo() -> std::io::Result<()> {
    /// let redis = TestServer::builder().arg("--maxmemory").arg("10mb").start()?;
    /// # Ok(()) }
    /// ```
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds `redis-server` arguments, after the defaults. Default none.
    ///
    /// ```no_run
    /// # use redis_sessions::test_server::TestServer;
    /// # fn demo() -> std::io::Result<()> {
    /// let redis = TestServer::builder().args(["--appendonly", "yes"]).start()?;
    /// # Ok(()) }
    /// ```
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Listens on `port`. Default: a free port, chosen again when another process takes it
    /// before the server binds it.
    ///
    /// ```no_run
    /// # use redis_sessions::test_server::TestServer;
    /// # fn demo() -> std::io::Result<()> {
    /// let redis = TestServer::builder().port(7777).start()?;
    /// assert_eq!(redis.url(), "redis://127.0.0.1:7777");
    /// # Ok(()) }
    /// ```
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Works in `dir`, which is kept afterwards. Default: a new temp dir that only this user can
    /// read (the AOF holds session data), removed on drop.
    ///
    /// ```no_run
    /// # use redis_sessions::test_server::TestServer;
    /// # fn demo() -> std::io::Result<()> {
    /// let redis = TestServer::builder().dir("/tmp/redis-for-this-test").start()?;
    /// # Ok(()) }
    /// ```
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Runs `program` instead of `redis-server` from `PATH` (another version's, say).
    /// Default `redis-server`.
    ///
    /// ```no_run
    /// # use redis_sessions::test_server::TestServer;
    /// # fn demo() -> std::io::Result<()> {
    /// let redis = TestServer::builder().program("/opt/redis-6.2/bin/redis-server").start()?;
    /// # Ok(()) }
    /// ```
    pub fn program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// Starts the server and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] when the program is not on `PATH`; an error with the
    /// server's last log lines when it exits (bad arguments, the port taken) or is not ready
    /// within 10 seconds; errors creating the directory.
    pub fn start(self) -> io::Result<TestServer> {
        let (dir, remove_dir) = match self.dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                (dir, false)
            }
            None => (new_temp_dir()?, true),
        };
        let mut server = TestServer {
            child: None,
            port: 0,
            dir,
            remove_dir,
            program: self.program,
            args: self.args,
        };
        let mut tries = if self.port.is_some() { 1 } else { PORT_TRIES };
        loop {
            server.port = match self.port {
                Some(port) => port,
                None => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
            };
            match spawn(&server.program, &server.args, server.port, &server.dir) {
                Ok(child) => {
                    server.child = Some(child);
                    return Ok(server);
                }
                // Another process bound the port between its choice and the server's start.
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries > 1 => tries -= 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Starts `program` on `port` in `dir` and waits for it to be ready.
fn spawn(program: &OsString, args: &[OsString], port: u16, dir: &Path) -> io::Result<Child> {
    let name = Path::new(program).display().to_string();
    let (log, stderr_log) = (dir.join("redis.log"), dir.join("stderr.log"));
    // A restart appends to the log: only what follows this offset tells about this start.
    let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
    // A file, not a pipe: nobody reads a pipe once the server runs, and a full one would
    // block it.
    let stderr = std::fs::File::create(&stderr_log)?;
    let mut child = Command::new(program)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(args)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| {
            let hint = match e.kind() {
                io::ErrorKind::NotFound => " (is it installed? apt-get install redis-server)",
                _ => "",
            };
            io::Error::new(e.kind(), format!("cannot run {name}{hint}: {e}"))
        })?;
    let said = |from: usize| {
        let text = std::fs::read(&log).unwrap_or_default();
        let text = String::from_utf8_lossy(text.get(from..).unwrap_or_default()).into_owned();
        text + &std::fs::read_to_string(&stderr_log).unwrap_or_default()
    };
    let started = Instant::now();
    loop {
        if said(from).contains("Ready to accept connections") {
            return Ok(child);
        }
        let exited = match child.try_wait() {
            Ok(status) => status,
            Err(e) => {
                stop(&mut child);
                return Err(e);
            }
        };
        if let Some(status) = exited {
            let said = last_lines(&said(from));
            let kind = match said.contains("Address already in use") {
                true => io::ErrorKind::AddrInUse,
                false => io::ErrorKind::Other,
            };
            return Err(io::Error::new(kind, format!("{name} exited ({status}): {said}")));
        }
        if started.elapsed() > READY_WITHIN {
            stop(&mut child);
            let said = last_lines(&said(from));
            let message = format!("{name} not ready within {READY_WITHIN:?}: {said}");
            return Err(io::Error::new(io::ErrorKind::TimedOut, message));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last few lines of a log, for an error message.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// A new directory under the system's temp dir, named so that no two servers share one.
fn new_temp_dir() -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("redis-sessions-test-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        match create_private_dir(&dir) {
            Ok(()) => return Ok(dir),
            // Left behind by an earlier process of the same id that was killed.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Creates `dir`, readable by this user alone where permissions say so.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// True when a Redis answers `PING` at `url` (any reply but a refused connection counts: a
/// server that wants a password is still there).
fn answers(url: &str) -> bool {
    let Ok(info) = redis::IntoConnectionInfo::into_connection_info(url) else { return false };
    let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
        // TLS or a Unix socket: trust the URL rather than start a plain server in its place.
        return true;
    };
    let half_second = Duration::from_millis(500);
    let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port)) else {
        return false;
    };
    addrs.into_iter().any(|addr| {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, half_second) else { return false };
        let _ = stream.set_read_timeout(Some(half_second));
        let mut reply = [0u8; 1];
        stream.write_all(b"PING\r\n").is_ok() && stream.read(&mut reply).is_ok_and(|n| n == 1)
    })
}
