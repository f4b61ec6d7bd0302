//! The session store: every operation is one script call on one pooled connection.

use std::fmt;
use std::sync::Arc;

use redis::{ErrorKind, FromRedisValue, ServerErrorKind, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, instrument};

use crate::advice::{self, ServerAdvice};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::reply::Snapshot;
use crate::scripts::{Call, SCRIPTS};
use crate::session::{Metadata, Session};
use crate::token::Token;
use crate::{codec, keys, reply};

/// How often create and regenerate draw a new token after a collision before giving up. With
/// 256-bit secrets a single collision is already beyond belief; the bound only keeps a broken
/// random source from looping forever.
const TOKEN_ATTEMPTS: usize = 3;

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
    pool: Pool,
    config: Arc<Config>,
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
        Ok(SessionStore { pool, config: Arc::new(config) })
    }

    /// A store for `config`, checked at start-up: connects once, and reads the server's
    /// eviction and persistence settings, logging a warning for each that can lose sessions
    /// (see [`check_server`](Self::check_server)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] as for [`new`](Self::new); connection errors when Redis cannot be
    /// reached. A server that refuses `CONFIG` is not an error.
    pub async fn connect(config: Config) -> Result<Self> {
        let store = SessionStore::new(config)?;
        store.check_server().await?;
        Ok(store)
    }

    /// Reads the server's `maxmemory-policy`, `appendonly`, `appendfsync` and `save` settings
    /// and warns (through `tracing`, and in the result) about an eviction policy that can evict
    /// live sessions and about persistence being off. Where managed Redis blocks `CONFIG`, the
    /// settings it could not read are `None` and nothing is warned.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create).
    pub async fn check_server(&self) -> Result<ServerAdvice> {
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
    /// [`Error::Pool`], [`Error::Redis`] or [`Error::Timeout`] when Redis cannot be reached.
    #[instrument(level = "debug", name = "session.create", skip_all)]
    pub async fn create(&self) -> Result<Session> {
        for _ in 0..TOKEN_ATTEMPTS {
            let token = Token::generate()?;
            let key = keys::session_key(&self.config.key_prefix, &token);
            let mut call = SCRIPTS.create.call(&[&key]);
            call.arg(self.config.idle_ms()).arg(self.config.absolute_ms());
            if let Some((created_ms, deadline_ms)) = self.run::<Option<(i64, i64)>>(&call).await? {
                let ttl_ms = self.config.idle_ms().min(self.config.absolute_ms());
                let meta = Metadata { created_ms, deadline_ms, version: 0, ttl_ms: ttl_ms as i64 };
                debug!(session = ?token, "created");
                return Ok(Session::new(token, key, meta, self.config.limits));
            }
        }
        Err(Error::Corrupt("token collided repeatedly: is the random source broken?".into()))
    }

    /// Loads the session a cookie names, sliding its idle expiry when due (get-and-touch).
    ///
    /// `Ok(None)` when there is no live session: expired, destroyed, regenerated away, or a
    /// malformed token (which sends nothing to Redis). Pending flash messages stay pending.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create); [`Error::Corrupt`] when the key holds
    /// something that is not a session.
    pub async fn load(&self, token: &str) -> Result<Option<Session>> {
        self.get_and_touch(token, false).await
    }

    /// Like [`load`](Self::load), and in the same round trip takes the pending flash messages,
    /// which [`Session::take_flash`] then returns. No other request will see them.
    ///
    /// # Errors
    ///
    /// As for [`load`](Self::load).
    pub async fn load_and_pop_flash(&self, token: &str) -> Result<Option<Session>> {
        self.get_and_touch(token, true).await
    }

    /// Reads with `HGETALL` and `PTTL` (no script, nothing written) and runs the get-and-touch
    /// script only when something must be written: the expiry is due to slide (once per touch
    /// window), the key has no TTL, or flash messages are to be popped. The TTL is always capped
    /// at the absolute deadline, so a key that still exists with a TTL is within its deadline.
    #[instrument(level = "debug", name = "session.load", skip_all, fields(session))]
    async fn get_and_touch(&self, text: &str, pop_flash: bool) -> Result<Option<Session>> {
        let Some(token) = Token::parse(text) else {
            debug!("malformed token: no session");
            return Ok(None);
        };
        tracing::Span::current().record("session", tracing::field::debug(&token));
        let key = keys::session_key(&self.config.key_prefix, &token);
        let mut read = redis::pipe();
        read.cmd("HGETALL").arg(&key).cmd("PTTL").arg(&key);
        let (idle, touch_after) = (self.config.idle_ms(), self.config.touch_after_ms());
        let loaded =
            match reply::snapshot(self.run_read(&read).await?, idle, touch_after, pop_flash)? {
                Snapshot::Missing => None,
                Snapshot::Fresh(loaded) => Some(loaded),
                Snapshot::NeedsScript => {
                    let mut call = SCRIPTS.get_and_touch.call(&[&key]);
                    call.arg(idle).arg(touch_after).arg(u8::from(pop_flash));
                    reply::loaded(self.run::<Value>(&call).await?)?
                }
            };
        let Some(loaded) = loaded else {
            debug!("no live session");
            return Ok(None);
        };
        let mut session = Session::new(token, key, loaded.meta, self.config.limits);
        session.flash = if pop_flash { loaded.flash } else { Vec::new() };
        Ok(Some(session.with_values(loaded.values)))
    }

    /// Writes the attributes changed since load, and deletes the removed ones; nothing else.
    /// Another request's changes to other attributes survive. Does nothing when nothing changed.
    ///
    /// # Errors
    ///
    /// [`Error::SessionGone`] when the session expired, was destroyed or was regenerated away
    /// (a save never brings it back); [`Error::TooLarge`] when the attribute limit would be
    /// exceeded; connection errors as for [`create`](Self::create). Nothing is written then.
    pub async fn save(&self, session: &mut Session) -> Result<()> {
        self.save_delta(session, false).await
    }

    /// Like [`save`](Self::save), but only if nobody saved the session since it was loaded.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when the stored version is newer (nothing is written), and the
    /// errors of [`save`](Self::save).
    pub async fn save_checked(&self, session: &mut Session) -> Result<()> {
        self.save_delta(session, true).await
    }

    #[instrument(level = "debug", name = "session.save", skip_all, fields(session = ?session.token()))]
    async fn save_delta(&self, session: &mut Session, checked: bool) -> Result<()> {
        if !session.is_changed() {
            return Ok(());
        }
        let expected = session.meta.version;
        let mut call = SCRIPTS.save.call(&[&session.key]);
        call.arg(if checked { expected.to_string() } else { String::new() });
        call.arg(self.config.idle_ms()).arg(self.config.touch_after_ms());
        let (set, deleted) = session.delta();
        call.arg(self.config.limits.max_attributes).arg(set.len());
        for (name, value) in set {
            call.arg(name).arg(value);
        }
        call.arg(deleted);
        match self.run::<(i64, u64)>(&call).await? {
            (1, version) => {
                session.saved(version);
                Ok(())
            }
            (0, _) => Err(Error::SessionGone),
            (-1, actual) => Err(Error::Conflict { expected, actual }),
            (-2, count) => Err(too_many_attributes(count, self.config.limits.max_attributes)),
            (code, _) => Err(Error::Corrupt(format!("unexpected save reply {code}"))),
        }
    }

    /// Moves the session to a fresh token and returns it; the old token loads nothing from now
    /// on. Call it on login, logout and any change of privilege (anti-fixation). Unsaved
    /// changes stay in `session` and go to the new token with the next save.
    ///
    /// # Errors
    ///
    /// [`Error::SessionGone`] when the session no longer exists; connection errors as for
    /// [`create`](Self::create).
    #[instrument(level = "debug", name = "session.regenerate", skip_all, fields(session = ?session.token()))]
    pub async fn regenerate(&self, session: &mut Session) -> Result<Token> {
        for _ in 0..TOKEN_ATTEMPTS {
            let token = Token::generate_with_tag(session.token().tag())?;
            let key = keys::session_key(&self.config.key_prefix, &token);
            match self.run::<i64>(&SCRIPTS.regenerate.call(&[&session.key, &key])).await? {
                1 => {
                    debug!(new_session = ?token, "regenerated");
                    session.rekey(token.clone(), key);
                    return Ok(token);
                }
                0 => return Err(Error::SessionGone),
                _ => continue,
            }
        }
        Err(Error::Corrupt("token collided repeatedly: is the random source broken?".into()))
    }

    /// Queues a flash message for a later request.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`]; [`Error::TooLarge`] when the pending messages would exceed
    /// [`Limits::max_value_bytes`](crate::Limits::max_value_bytes); [`Error::SessionGone`];
    /// connection errors as for [`create`](Self::create). Nothing is written on error.
    #[instrument(level = "debug", name = "session.flash_push", skip_all, fields(session = ?session.token()))]
    pub async fn push_flash<T: Serialize + ?Sized>(
        &self,
        session: &Session,
        message: &T,
    ) -> Result<()> {
        let bytes = codec::encode("@flash", message)?;
        let max = self.config.limits.max_value_bytes;
        self.config.limits.check_value(bytes.len())?;
        match self.run::<i64>(SCRIPTS.flash_push.call(&[&session.key]).arg(bytes).arg(max)).await? {
            0 => Err(Error::SessionGone),
            -1 => Err(Error::TooLarge { limit: "flash", size: max.saturating_add(1), max }),
            _ => Ok(()),
        }
    }

    /// Takes the pending flash messages; no other request will see them.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a message is not a `T`: the messages then stay in `session`, and
    /// [`Session::take_flash`] with the right type still returns them. Connection errors as for
    /// [`create`](Self::create).
    #[instrument(level = "debug", name = "session.flash_pop", skip_all, fields(session = ?session.token()))]
    pub async fn pop_flash<T: DeserializeOwned>(&self, session: &mut Session) -> Result<Vec<T>> {
        let popped = self.run::<Option<Vec<u8>>>(&SCRIPTS.flash_pop.call(&[&session.key])).await?;
        session.flash.extend(popped.unwrap_or_default());
        session.take_flash()
    }

    /// Deletes the session; true when it existed.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.destroy", skip_all, fields(session = ?session.token()))]
    pub async fn destroy(&self, session: &Session) -> Result<bool> {
        Ok(self.run::<i64>(&SCRIPTS.destroy.call(&[&session.key])).await? == 1)
    }

    /// Runs one script on a pooled connection: EVALSHA, and EVAL after a NOSCRIPT.
    async fn run<T: FromRedisValue>(&self, call: &Call) -> Result<T> {
        let mut connection = self.pool.get().await?;
        let reply = match connection.query(call.evalsha()).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                debug!("NOSCRIPT: sending the script body");
                connection.query(&call.eval()).await
            }
            reply => reply,
        };
        self.settle(reply).await
    }

    /// Sends a read-only pipeline on a pooled connection; when the connection turns out to be
    /// broken (Redis restarted since it was opened), once more on a new one. Safe because the
    /// pipeline writes nothing.
    async fn run_read(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>> {
        let reply = self.pool.get().await?.pipeline(pipe).await;
        match reply {
            Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                self.pool.discard_all();
                let reply = self.pool.get().await?.pipeline(pipe).await;
                self.settle(reply).await
            }
            reply => self.settle(reply).await,
        }
    }

    /// Drops the connection when the reply says it is broken, so the next operation opens a
    /// new one; converts the error.
    async fn settle<T>(&self, reply: redis::RedisResult<T>) -> Result<T> {
        match reply {
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                self.pool.discard_all();
                Err(e.into())
            }
            reply => Ok(reply?),
        }
    }
}

fn too_many_attributes(count: u64, max: usize) -> Error {
    Error::TooLarge { limit: "attributes", size: count as usize, max }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.config)
            .field("connections_opened", &self.pool.opened())
            .finish()
    }
}
