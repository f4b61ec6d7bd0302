//! The session store: its construction, create and destroy, and how every operation reaches
//! Redis. Loads are in [`crate::load`], saves, regenerate and flash push in [`crate::writes`],
//! flash pop in [`crate::flash_pop`].

use std::fmt;
use std::sync::Arc;

use redis::{ErrorKind, FromRedisValue, ServerErrorKind, Value};
use tracing::{debug, instrument};

use crate::advice::{self, ServerAdvice};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys;
use crate::pool::Pool;
use crate::scripts::{Call, SCRIPTS};
use crate::server_clock::ServerClock;
use crate::session::{Metadata, Session};
use crate::timeouts::{Timeouts, TimeoutsMs};
use crate::token::Token;

/// How often create and regenerate draw a new token after a collision before giving up. With
/// 256-bit secrets a single collision is already beyond belief; the bound only keeps a broken
/// random source from looping forever.
pub(crate) const TOKEN_ATTEMPTS: usize = 3;

/// Sessions in Redis. Cheap to clone: clones share one pool.
///
/// ```no_run
/// # async fn demo() -> redis_sessions::Result<()> {
/// use redis_sessions::{Config, SessionStore};
///
/// let store = SessionStore::new(Config::from_url("redis://127.0.0.1:6379"))?;
/// let mut session = store.create().await?;
/// session.insert("user_id", &42)?;
/// store.save(&mut session).await?;
/// let cookie = session.token().expose().to_owned();
///
/// let session = store.load(&cookie).await?.expect("still there");
/// assert_eq!(session.get::<u32>("user_id")?, Some(42));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SessionStore {
    pub(crate) pool: Pool,
    pub(crate) config: Arc<Config>,
    /// The server's time as estimated here, which plain loads judge expiry by.
    pub(crate) clock: Arc<ServerClock>,
}

impl SessionStore {
    /// A store for `config`. Opens no connection: the first operation does.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the configuration is invalid or the URL cannot be parsed.
    pub fn new(config: Config) -> Result<Self> {
        config.validate()?;
        let pool = Pool::build(&config)?;
        let clock = Arc::new(ServerClock::new());
        Ok(SessionStore { pool, config: Arc::new(config), clock })
    }

    /// A store for `config`, checked at start-up: connects once, runs a script on a key under
    /// the prefix (so credentials and permissions are checked now, not at the first request),
    /// and reads the server's eviction and persistence settings, logging a warning for each
    /// that can lose sessions (see [`check_server`](Self::check_server)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] as for [`new`](Self::new); [`Error::Auth`] when Redis refuses the
    /// credentials (none given where a password is required, or a wrong one) or denies a
    /// command or key the store needs; [`Error::Tls`] when the TLS handshake fails; connection
    /// errors when Redis cannot be reached. A server that refuses `CONFIG` alone is not an
    /// error.
    pub async fn connect(config: Config) -> Result<Self> {
        let store = SessionStore::new(config)?;
        store.check_server().await?;
        Ok(store)
    }

    /// Checks that the store can work, then reads the server's `maxmemory-policy`,
    /// `appendonly`, `appendfsync` and `save` settings and warns (through `tracing`, and in the
    /// result) about an eviction policy that can evict live sessions and about persistence
    /// being off. The check runs the flash push script on a key under the prefix that no session
    /// can have (`<prefix>probe`), with a limit no message fits: it writes nothing, yet needs
    /// what every operation needs (the scripts, the key pattern). Where managed Redis blocks
    /// `CONFIG`, the settings it could not read are `None` and nothing is warned.
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect).
    pub async fn check_server(&self) -> Result<ServerAdvice> {
        // Session keys end in 16 base64url characters (keys.rs): a 5-character name is none.
        let probe = format!("{}probe", self.config.key_prefix);
        let mut call = SCRIPTS.flash_push.call(&[&probe]);
        call.arg(&b""[..]).arg(-1).arg(0); // even a pending message of 0 bytes is over -1
        match self.run::<i64>(&call).await {
            Err(Error::Redis(e)) if e.code() == Some("MOVED") && !self.pool.is_cluster() => {
                let why = "the server is a Redis Cluster node: set `cluster`";
                return Err(Error::Config(why.into()));
            }
            probed => probed?,
        };
        advice::check(&self.pool).await
    }

    /// The configuration this store runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates and stores an empty session with a fresh token.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`], [`Error::Redis`], [`Error::Timeout`] or [`Error::PoolTimeout`] when
    /// Redis cannot be reached or refuses for a passing reason ([`Error::is_unavailable`] tells
    /// them apart from the others); [`Error::Auth`] and [`Error::Tls`] when it refuses the
    /// configuration.
    #[instrument(level = "debug", name = "session.create", skip_all)]
    pub async fn create(&self) -> Result<Session> {
        self.create_new(None).await
    }

    /// Creates an empty session with timeouts of its own in place of the store's (see
    /// [`Timeouts`]): "remember me" chosen before the session exists.
    ///
    /// ```no_run
    /// # async fn demo(store: redis_sessions::SessionStore) -> redis_sessions::Result<()> {
    /// use std::time::Duration;
    /// let day = Duration::from_secs(86_400);
    /// let timeouts = redis_sessions::Timeouts::new(7 * day, 30 * day);
    /// let session = store.create_with_timeouts(timeouts).await?;
    /// assert_eq!(session.metadata().idle_timeout_ms, Some(7 * 86_400_000));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for timeouts outside 1 ms to 100 years; otherwise as
    /// [`create`](Self::create).
    #[instrument(level = "debug", name = "session.create", skip_all)]
    #[doc(alias = "remember_me")]
    pub async fn create_with_timeouts(&self, timeouts: Timeouts) -> Result<Session> {
        self.create_new(Some(TimeoutsMs::of(&timeouts, &self.config)?)).await
    }

    /// Creates a session under a fresh token, drawing again on a collision.
    async fn create_new(&self, own: Option<TimeoutsMs>) -> Result<Session> {
        for _ in 0..TOKEN_ATTEMPTS {
            if let Some(session) = self.create_with_token(Token::generate()?, own).await? {
                return Ok(session);
            }
        }
        Err(collided())
    }

    /// Creates an empty session under `token`, with timeouts of its own when `own` (else the
    /// store's); `None` when a session already has that token. (The adapters use it for IDs
    /// their framework draws.)
    pub(crate) async fn create_with_token(
        &self,
        token: Token,
        own: Option<TimeoutsMs>,
    ) -> Result<Option<Session>> {
        let key = keys::session_key(&self.config, &token);
        let mut call = SCRIPTS.create.call(&[&key]);
        let ms = own.unwrap_or_else(|| TimeoutsMs::of_store(&self.config));
        call.arg(ms.idle).arg(ms.absolute);
        if own.is_some() {
            call.arg(ms.touch_after);
        }
        let Some((created_ms, deadline_ms)) = self.run::<Option<(i64, i64)>>(&call).await? else {
            return Ok(None);
        };
        let absolute = i64::try_from(ms.absolute).unwrap_or(i64::MAX);
        let ttl_ms = crate::expiry_rule::next_ttl(-1, true, ms.idle, absolute);
        let meta = Metadata {
            created_ms,
            deadline_ms,
            ttl_ms,
            idle_timeout_ms: own.map(|own| own.idle as i64),
            touch_after_ms: own.map(|own| own.touch_after),
        };
        debug!(session = ?token, "created");
        Ok(Some(Session::new(token, key, meta, self.config.limits)))
    }

    /// Deletes the session; true when it existed.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.destroy", skip_all, fields(session = ?session.token()))]
    #[doc(alias = "purge")]
    pub async fn destroy(&self, session: &Session) -> Result<bool> {
        self.destroy_key(&session.key).await
    }

    /// Deletes the session a cookie names, without loading it first (logout with nothing else
    /// to do, or a framework adapter's delete); true when it existed. A malformed token sends
    /// nothing to Redis and is `Ok(false)`.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.destroy", skip_all)]
    pub async fn destroy_token(&self, token: &str) -> Result<bool> {
        let Some(token) = Token::parse(token) else { return Ok(false) };
        let key = keys::session_key(&self.config, &token);
        self.destroy_key(&key).await
    }

    async fn destroy_key(&self, key: &str) -> Result<bool> {
        Ok(self.run::<i64>(&SCRIPTS.destroy.call(&[key])).await? == 1)
    }

    /// Runs one script on a pooled connection: EVALSHA, and EVAL after a NOSCRIPT.
    pub(crate) async fn run<T: FromRedisValue>(&self, call: &Call) -> Result<T> {
        let mut connection = self.pool.get().await?;
        let reply = match connection.query(call.evalsha()).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                debug!("NOSCRIPT: sending the script body");
                connection.query(&call.eval()).await
            }
            reply => reply,
        };
        self.settle(reply)
    }

    /// Sends a load's pipeline on a pooled connection; when the connection turns out to be
    /// broken (Redis restarted since it was opened), once more on a new one. Safe because the
    /// pipeline writes nothing but, when popping, the deletion of the flash messages it reads,
    /// which a second run cannot repeat (see flash_pop.rs). A timeout is not retried: Redis is slow,
    /// not gone, and a retry would double the wait.
    pub(crate) async fn run_read(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>> {
        let reply = self.pool.get().await?.pipeline(pipe).await;
        match reply {
            Err(e) if is_broken(&e) => {
                self.pool.discard_all();
                let reply = self.pool.get().await?.pipeline(pipe).await;
                self.settle(reply)
            }
            reply => self.settle(reply),
        }
    }

    /// Drops the connections when the reply says they are broken, so the next operation opens
    /// a new one; converts the error.
    fn settle<T>(&self, reply: redis::RedisResult<T>) -> Result<T> {
        match reply {
            Err(e) if is_broken(&e) => {
                self.pool.discard_all();
                Err(e.into())
            }
            reply => Ok(reply?),
        }
    }
}

/// What create and regenerate report when every fresh token they drew was taken.
pub(crate) fn collided() -> Error {
    Error::Corrupt("token collided repeatedly: is the random source broken?".into())
}

/// True when the connection itself failed (closed, reset, refused), as opposed to Redis being
/// slow (a timeout, which redis-rs also counts as an I/O error) or answering with an error.
fn is_broken(e: &redis::RedisError) -> bool {
    !e.is_timeout() && (e.is_io_error() || e.is_connection_dropped())
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.config)
            .field("connections_opened", &self.pool.opened())
            .finish()
    }
}
