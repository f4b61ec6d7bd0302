//! The session store: [`SessionStore`], every operation's public face. Each operation is
//! carried out by a module of its own, on the [`Core`](core::Core) they share:
//!
//! - `core.rs`: the pool, the configuration and the server's clock; how a call reaches Redis
//!   (EVALSHA, EVAL after NOSCRIPT, dropping broken connections).
//! - `create.rs`: create.
//! - `load.rs`: loads, choosing once the way a load reads (`read.rs`: the plain read and the
//!   get-and-touch script); `flash_pop.rs`: the ways that pop flash messages.
//! - `reply.rs`: strict parsing of load replies; `server_clock.rs`: the server's time as
//!   estimated here; `expiry_rule.rs`: when a touch is due, as plain loads judge it.
//! - `save.rs`: delta saves, compaction and flash push; `regenerate.rs`: regenerate-and-migrate.
//! - `users.rs`: sessions bound to a user (login, the user's list, revoke, logout); `rotation.rs`:
//!   rotating a bound session's token, and following or reporting a retired one;
//!   `users_api.rs`: their public face, the store's methods for users and rotation.
//! - `advice.rs`: the start-up check of the server's settings.
//! - `stateless.rs` (feature `stateless`): what stateless sessions keep in Redis, the
//!   revocations and each user's list.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::instrument;

use crate::cache::CacheStats;
use crate::config::Config;
use crate::connection::scripts::SCRIPTS;
use crate::error::{Error, Result};
use crate::format::{codec, keys};
use crate::seal;
use crate::session::Session;
use crate::store::advice::ServerAdvice;
use crate::store::core::Core;
use crate::timeouts::{Timeouts, TimeoutsMs};
use crate::token::Token;

pub(crate) mod advice;
mod cached;
mod core;
mod create;
pub(crate) mod expiry_rule;
mod flash_pop;
mod key_usage;
mod load;
mod read;
mod regenerate;
pub(crate) mod reply;
mod rotation;
mod save;
pub(crate) mod server_clock;
#[cfg(feature = "stateless")]
pub(crate) mod stateless;
mod users;
mod users_api;

#[cfg(feature = "tower-sessions")]
pub(crate) use create::TOKEN_ATTEMPTS;

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
    core: Core,
}

impl SessionStore {
    /// A store for `config`. Opens no connection: the first operation does.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the configuration is invalid or the URL cannot be parsed.
    pub fn new(config: Config) -> Result<Self> {
        Ok(SessionStore { core: Core::new(config)? })
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
    /// error. With the local cache, [`Error::Config`] also when the server refuses RESP3 or
    /// `CLIENT TRACKING`, and connection errors when the tracking connection cannot be opened.
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
        let probe = format!("{}probe", self.core.config.key_prefix);
        let mut call = SCRIPTS.flash_push.call(&[&probe]);
        call.arg(&b""[..]).arg(-1).arg(0); // even a pending message of 0 bytes is over -1
        match self.core.run::<i64>(&call).await {
            Err(Error::Redis(e)) if e.code() == Some("MOVED") && !self.core.pool.is_cluster() => {
                let why = "the server is a Redis Cluster node: set `cluster`";
                return Err(Error::Config(why.into()));
            }
            probed => probed?,
        };
        if let Some(cache) = &self.core.cache {
            cached::check_tracking(cache).await?;
        }
        advice::check(&self.core.pool).await
    }

    /// The configuration this store runs with.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// What the local cache has done so far; `None` when it is off.
    ///
    /// ```
    /// # fn demo(store: redis_sessions::SessionStore) {
    /// if let Some(stats) = store.cache_stats() {
    ///     let served = stats.hits as f64 / (stats.hits + stats.misses).max(1) as f64;
    ///     println!("{:.0}% from memory, {} sessions held", served * 100.0, stats.entries);
    /// }
    /// # }
    /// ```
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.core.cache.as_ref().map(|cache| cache.entries.stats())
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
        create::create(&self.core, None).await
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
        create::create(&self.core, Some(TimeoutsMs::of(&timeouts, &self.core.config)?)).await
    }

    /// Creates an empty session under `token` (see create.rs); `None` when a session already
    /// has that token. The tower-sessions adapter uses it for IDs its framework draws.
    #[cfg(feature = "tower-sessions")]
    pub(crate) async fn create_with_token(
        &self,
        token: Token,
        own: Option<TimeoutsMs>,
    ) -> Result<Option<Session>> {
        create::create_with_token(&self.core, token, own).await
    }

    /// Deletes the session; true when it existed.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.destroy", skip_all, fields(session = ?session.token()))]
    #[doc(alias = "purge")]
    pub async fn destroy(&self, session: &Session) -> Result<bool> {
        users::destroy(&self.core, &session.key, session.bound.as_ref()).await
    }

    /// Deletes the session a cookie names, without loading it first (logout with nothing else
    /// to do, or a framework adapter's delete); true when it existed. A malformed token sends
    /// nothing to Redis and is `Ok(false)`. One round trip reads whether a login bound the
    /// session (`HGET`), so that its entry in the user's list goes with it, and one deletes.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.destroy", skip_all)]
    pub async fn destroy_token(&self, token: &str) -> Result<bool> {
        let Some(token) = Token::parse(token) else { return Ok(false) };
        users::destroy_unloaded(&self.core, &keys::session_key(&self.core.config, &token)).await
    }

    /// Loads the session a cookie names, sliding its idle expiry when due (get-and-touch).
    ///
    /// `Ok(None)` when there is no live session: expired, destroyed, regenerated away, or a
    /// malformed token (which sends nothing to Redis). Pending flash messages stay pending. A
    /// token that a rotation retired loads, within its grace window, the session it was rotated
    /// to, which holds the new token.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create); [`Error::Corrupt`](crate::Error::Corrupt)
    /// when the key holds something that is not a session; [`Error::TokenReused`] for a token
    /// that a rotation retired, presented after its grace window (see [`Rotation`](crate::Rotation)).
    #[instrument(
        level = "debug",
        name = "session.load",
        skip_all,
        fields(session, way, script, cached)
    )]
    pub async fn load(&self, token: &str) -> Result<Option<Session>> {
        load::load(&self.core, token, None, false).await
    }

    /// Like [`load`](Self::load), and takes the pending flash messages, which
    /// [`Session::take_flash`] then returns. No other request will see them. On one server the
    /// read deletes them in the same transaction: one round trip when no touch is due, two
    /// otherwise; on a Redis Cluster, two when messages are pending (docs/design.md says why).
    /// A message is shown at most once: one whose reply is lost with the connection is gone, and
    /// so is one read from a hash that the load then refuses as corrupt.
    ///
    /// # Errors
    ///
    /// As for [`load`](Self::load).
    #[instrument(
        level = "debug",
        name = "session.load",
        skip_all,
        fields(session, way, script, cached)
    )]
    pub async fn load_and_pop_flash(&self, token: &str) -> Result<Option<Session>> {
        load::load(&self.core, token, None, true).await
    }

    /// Like [`load`](Self::load), but the session answers for `names` alone: [`Session::get`]
    /// of any other attribute is an [`Error::NotLoaded`](crate::Error::NotLoaded), and
    /// [`save_checked`](Self::save_checked) checks only that `names` still hold what was read,
    /// so changes to other attributes made meanwhile are no conflict. It reads as `load` does
    /// (one `HVALS`: the attributes sit in one packed field, so reading fewer saves nothing;
    /// docs/performance.md has the figures). Saving works as usual (it writes only what
    /// changed), but never compacts, since the session is not known whole.
    ///
    /// ```no_run
    /// # async fn demo(store: redis_sessions::SessionStore, cookie: &str) -> redis_sessions::Result<()> {
    /// if let Some(session) = store.load_only(cookie, &["user_id"]).await? {
    ///     let user: Option<u64> = session.get("user_id")?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`load`](Self::load).
    #[instrument(
        level = "debug",
        name = "session.load",
        skip_all,
        fields(session, way, script, cached)
    )]
    pub async fn load_only(&self, token: &str, names: &[&str]) -> Result<Option<Session>> {
        load::load(&self.core, token, Some(names), false).await
    }

    /// Writes the attributes changed since load, and deletes the removed ones; nothing else.
    /// Another request's changes to other attributes survive. Does nothing when nothing changed.
    ///
    /// A bound session whose token another request rotated since it was loaded (see
    /// [`Rotation`](crate::Rotation)) is saved to the session the rotation moved it to, while
    /// the grace window is open, and then holds the new token.
    ///
    /// # Errors
    ///
    /// [`Error::SessionGone`] when the session expired, was destroyed or was regenerated away
    /// (a save never brings it back); [`Error::TooLarge`] when the attribute limit would be
    /// exceeded; connection errors as for [`create`](Self::create). Nothing is written then.
    #[instrument(level = "debug", name = "session.save", skip_all, fields(session = ?session.token()))]
    pub async fn save(&self, session: &mut Session) -> Result<()> {
        match save::save(&self.core, session, false).await {
            // Another request rotated the token since this one loaded the session: within the
            // grace window, the changes go to the session it moved to.
            Err(Error::SessionGone) if self.follow_rotation(session).await? => {
                save::save(&self.core, session, false).await
            }
            saved => saved,
        }
    }

    /// Like [`save`](Self::save), but only if Redis still holds what this session read: after
    /// [`load`](Self::load), the whole session as loaded (or as last saved from here); after
    /// [`load_only`](Self::load_only), the attributes it read. The check compares what is
    /// stored, not a counter, so a change that another request made and undid goes unseen.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when another request changed the session (nothing is written), and
    /// the errors of [`save`](Self::save).
    #[instrument(level = "debug", name = "session.save", skip_all, fields(session = ?session.token()))]
    pub async fn save_checked(&self, session: &mut Session) -> Result<()> {
        save::save(&self.core, session, true).await
    }

    /// Moves the session to a fresh token and returns it; the old token loads nothing from now
    /// on. Call it on login, logout and any change of privilege (anti-fixation). Unsaved
    /// changes stay in `session` and go to the new token with the next save. The session keeps
    /// its timeouts and deadline ([`regenerate_with_timeouts`](Self::regenerate_with_timeouts)
    /// sets new ones).
    ///
    /// # Errors
    ///
    /// [`Error::SessionGone`] when the session no longer exists; under encryption, which seals
    /// every value anew for the new token, [`Error::Conflict`] when other requests kept
    /// changing the session while it was sealed (five times), and [`Error::Unseal`] when the
    /// random source fails; connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.regenerate", skip_all, fields(session = ?session.token()))]
    #[doc(alias = "cycle_id")]
    #[doc(alias = "renew")]
    pub async fn regenerate(&self, session: &mut Session) -> Result<Token> {
        regenerate::move_to_new_token(&self.core, session, None).await
    }

    /// Regenerates the session (see [`regenerate`](Self::regenerate)) and gives it new timeouts
    /// from now on: with `Some`, timeouts of its own in place of the store's ("remember me" at
    /// login); with `None`, the store's again (a login without "remember me" after one with).
    /// The idle timeout applies from now, and the deadline becomes now + the absolute timeout:
    /// a login starts the session's life again. (A plain `regenerate` keeps the session's
    /// timeouts and deadline, its own or the store's.) Unsaved changes stay in `session`.
    ///
    /// ```no_run
    /// # async fn login(store: redis_sessions::SessionStore, mut session: redis_sessions::Session)
    /// # -> redis_sessions::Result<()> {
    /// use std::time::Duration;
    /// let day = Duration::from_secs(86_400);
    /// let remember_me = redis_sessions::Timeouts::new(7 * day, 30 * day);
    /// let token = store.regenerate_with_timeouts(&mut session, Some(remember_me)).await?;
    /// assert_eq!(session.metadata().idle_timeout_ms, Some(7 * 86_400_000));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for timeouts outside 1 ms to 100 years; otherwise as
    /// [`regenerate`](Self::regenerate). Nothing is written on error.
    #[instrument(level = "debug", name = "session.regenerate", skip_all, fields(session = ?session.token()))]
    #[doc(alias = "remember_me")]
    #[doc(alias = "set_expiry")]
    pub async fn regenerate_with_timeouts(
        &self,
        session: &mut Session,
        timeouts: Option<Timeouts>,
    ) -> Result<Token> {
        let new = match timeouts {
            Some(timeouts) => (TimeoutsMs::of(&timeouts, &self.core.config)?, true),
            None => (TimeoutsMs::of_store(&self.core.config), false),
        };
        regenerate::move_to_new_token(&self.core, session, Some(new)).await
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
        self.push_flash_encoded(session, codec::encode("@flash", message)?).await
    }

    /// Queues messages already encoded with MessagePack (sealed here under encryption).
    pub(crate) async fn push_flash_encoded(&self, session: &Session, bytes: Vec<u8>) -> Result<()> {
        let bytes = seal::seal_flash(session.seal.as_ref(), bytes)?;
        save::push_flash(&self.core, session, bytes).await
    }

    /// Takes the pending flash messages; no other request will see them.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a message is not a `T`: the messages then stay in `session`, and
    /// [`Session::take_flash`] with the right type still returns them. [`Error::Unseal`] when
    /// some did not open: the others stay in `session` for `take_flash`. Connection errors as
    /// for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.flash_pop", skip_all, fields(session = ?session.token()))]
    pub async fn pop_flash<T: DeserializeOwned>(&self, session: &mut Session) -> Result<Vec<T>> {
        let popped = self.pop_flash_encoded(session).await?;
        session.flash.extend(popped);
        session.take_flash()
    }

    /// Counts, over every session in the store, the stored values each encryption key seals
    /// (and those stored unsealed), so that a key is retired only once nothing needs it. It
    /// reads key ids only, so it runs under any key ring, or none; it writes nothing, and
    /// calls `progress` with the counts so far and the keys seen after each batch of 100.
    ///
    /// ```no_run
    /// # async fn demo(store: redis_sessions::SessionStore) -> redis_sessions::Result<()> {
    /// let usage = store.key_usage(|_, seen| eprint!("\r{seen} keys")).await?;
    /// if usage.uses(1) == 0 && usage.unsealed == 0 {
    ///     println!("key 1 can be retired");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] on a Redis Cluster (scan each primary with its own URL instead);
    /// connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.key_usage", skip_all)]
    pub async fn key_usage(
        &self,
        progress: impl FnMut(&crate::KeyUsage, u64),
    ) -> Result<crate::KeyUsage> {
        key_usage::scan(&self.core, progress).await
    }

    /// Takes the pending flash messages, opened but still encoded (concatenated MessagePack
    /// values); see store/flash_pop.rs. Why some did not open goes to `session.flash_unopened`.
    pub(crate) async fn pop_flash_encoded(&self, session: &mut Session) -> Result<Vec<u8>> {
        let popped = flash_pop::pop_pending(&self.core, &session.key).await?;
        session.flash_pending = false;
        let (messages, unopened) = seal::open_flash(session.seal.as_ref(), popped);
        session.flash_unopened = session.flash_unopened.or(unopened);
        Ok(messages)
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.core.config)
            .field("connections_opened", &self.core.pool.opened())
            .finish()
    }
}
