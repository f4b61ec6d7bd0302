//! redis-sessions as an [actix-session] storage backend.
//!
//! [`ActixSessionStore`] implements actix-session's
//! [`SessionStore`](actix_session::storage::SessionStore) trait, so an actix-web app keeps its
//! `actix_session::Session` extractor and its handlers, and switches stores in one line:
//!
//! ```no_run
//! use actix_session::SessionMiddleware;
//! use actix_web::{cookie::Key, App};
//! use redis_sessions::adapters::actix::ActixSessionStore;
//! use redis_sessions::{Config, SessionStore};
//!
//! # fn demo(key: Key) -> redis_sessions::Result<()> {
//! let store = SessionStore::new(Config::from_url("redis://127.0.0.1:6379"))?;
//! let app = App::new().wrap(
//!     // was: SessionMiddleware::new(RedisSessionStore::new(url).await?, key)
//!     SessionMiddleware::new(ActixSessionStore::new(store), key),
//! );
//! # drop(app);
//! # Ok(()) }
//! ```
//!
//! # How actix-session's operations map to the store
//!
//! - The session key in actix's (signed or encrypted) cookie is a [`Token`](crate::Token) drawn by
//!   [`SessionStore::create`]: 256 random bits, and Redis holds only a hash of it.
//! - Every entry of actix's state (a `String` name and a JSON `String` value) is one attribute,
//!   readable from the native API too with [`Session::get::<String>`](crate::Session::get).
//! - An update writes only the entries that changed and deletes those that were removed (a
//!   delta save), not the whole state. actix hands the update its whole new state, not what
//!   changed, so the update reads the session once more to find the difference (one more
//!   round trip), and an entry another request added since this one loaded is removed with
//!   the others this state lacks: with actix-session, the last update's state wins for every
//!   entry it holds or lacks. The native API ([`SessionStore::save`](crate::SessionStore::save))
//!   has neither cost.
//! - A session that is gone when actix updates it (expired, destroyed, regenerated away by a
//!   concurrent request) is an error and nothing is written (actix answers 500): carrying its
//!   state into a new session would let a client keep the data past the absolute timeout.
//!
//! # Expiry
//!
//! Sessions expire by the store's own [`Config::idle_timeout`](crate::Config::idle_timeout)
//! (slid by loads, at most once per touch window) and
//! [`Config::absolute_timeout`](crate::Config::absolute_timeout). The `ttl` that actix passes to
//! `save`, `update` and `update_ttl` (its `SessionLifecycle`'s state TTL) is not used: configure
//! the timeouts on the [`Config`](crate::Config) instead, and keep a persistent cookie's
//! `max-age` no longer than the absolute timeout.
//!
//! # Limitations
//!
//! - Entry names must be valid attribute names: not empty, not starting with `@` (reserved for
//!   metadata). Saving such an entry fails with `SaveError::Serialization` (or
//!   `UpdateError::Serialization` in an update; an HTTP 500 either way).
//! - The store's [`Limits`](crate::Limits) apply to actix's state as to any session.
//! - An attribute that is not a string (written through the native API) cannot be represented
//!   in actix's state: loading the session reports `LoadError::Deserialization`, and
//!   actix-session then starts the request with an empty state.
//!
//! [actix-session]: https://docs.rs/actix-session

use std::collections::HashMap;

use actix_session::storage::{self, LoadError, SaveError, SessionKey, UpdateError};
use actix_web::cookie::time::Duration;

use crate::error::Error;
use crate::session::Session;
use crate::store::SessionStore;

/// actix-session's session state: entry name to JSON-encoded value.
type State = HashMap<String, String>;

/// A [`SessionStore`] as an actix-session
/// [`SessionStore`](actix_session::storage::SessionStore), for `SessionMiddleware`.
///
/// Cheap to clone: clones share the store's connection pool. See the
/// [module documentation](self) for how actix's operations map to the store.
#[derive(Clone, Debug)]
pub struct ActixSessionStore {
    store: SessionStore,
}

impl ActixSessionStore {
    /// Wraps `store` for actix-session. Sessions expire by the store's configured idle and
    /// absolute timeouts.
    pub fn new(store: SessionStore) -> Self {
        ActixSessionStore { store }
    }

    /// The wrapped store, to use the native API (regenerate, flash messages, partial loads) on
    /// the same sessions: the session key in actix's cookie is the store's token.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// Creates a session holding `state` and returns its key.
    async fn save_new(&self, state: &State) -> Result<SessionKey, SaveError> {
        let mut session = self.store.create().await.map_err(save_error)?;
        if let Err(e) = self.fill_and_save(&mut session, state).await {
            if !e.is_unavailable() {
                // Best effort, so a rejected state leaves no empty session behind (it would
                // expire at the idle timeout anyway); the error that matters is `e`.
                let _ = self.store.destroy(&session).await;
            }
            return Err(save_error(e));
        }
        session_key(&session).map_err(SaveError::Other)
    }

    async fn fill_and_save(&self, session: &mut Session, state: &State) -> crate::Result<()> {
        super::sync_entries(session, entries(state))?;
        self.store.save(session).await
    }
}

impl storage::SessionStore for ActixSessionStore {
    /// Loads the session with get-and-touch (its idle expiry slides when due). A key that is
    /// not a well-formed token is no session, and costs no round trip.
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let Some(session) = self.store.load(session_key.as_ref()).await.map_err(load_error)? else {
            return Ok(None);
        };
        let mut state = HashMap::new();
        for name in session.names() {
            if let Some(value) = session.get::<String>(name).map_err(load_error)? {
                state.insert(name.to_owned(), value);
            }
        }
        Ok(Some(state))
    }

    /// Creates a session with a fresh token holding `session_state`. `ttl` is not used: the
    /// store's idle and absolute timeouts apply.
    async fn save(&self, session_state: State, _ttl: &Duration) -> Result<SessionKey, SaveError> {
        self.save_new(&session_state).await
    }

    /// Writes the entries that changed and deletes those no longer in `session_state`, under
    /// the same key. When the session is gone (expired, destroyed or regenerated away, before
    /// or during the update), it is an error and nothing is written.
    /// `ttl` is not used: the store's idle and absolute timeouts apply.
    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        _ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let loaded = self.store.load(session_key.as_ref()).await.map_err(update_error)?;
        let Some(mut session) = loaded else { return Err(gone()) };
        super::sync_entries(&mut session, entries(&session_state)).map_err(update_error)?;
        match self.store.save(&mut session).await {
            Ok(()) => Ok(session_key),
            Err(Error::SessionGone) => Err(gone()),
            Err(e) => Err(update_error(e)),
        }
    }

    /// Does nothing, and sends nothing to Redis. actix calls it for a request that changed
    /// nothing, after its own [`load`](storage::SessionStore::load) of the same request, and
    /// that load already slid the idle expiry when due (get-and-touch); loading again would
    /// only cost a round trip. `ttl` is not used: the store governs expiry by its own idle
    /// timeout and absolute timeout, which no request can extend.
    async fn update_ttl(&self, _session_key: &SessionKey, _ttl: &Duration) -> anyhow::Result<()> {
        Ok(())
    }

    /// Deletes the session; a session that is already gone, or a malformed key, is not an
    /// error.
    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.store.destroy_token(session_key.as_ref()).await?;
        Ok(())
    }
}

/// The error of an update whose session is gone (expired, purged or renewed by another
/// request meanwhile). Nothing is written: carrying the state over to a new session would let a
/// client keep a session's data past its absolute timeout.
fn gone() -> UpdateError {
    UpdateError::Other(anyhow::anyhow!(super::GONE))
}

/// actix's entries as attribute names and values (names are used as they are).
fn entries(state: &State) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, &String)> {
    state.iter().map(|(name, value)| (name.as_str().into(), value))
}

/// The session's token as actix's session key.
fn session_key(session: &Session) -> anyhow::Result<SessionKey> {
    Ok(SessionKey::try_from(session.token().expose().to_owned())?)
}

fn load_error(e: Error) -> LoadError {
    match e {
        Error::Decode { .. } => LoadError::Deserialization(anyhow::Error::new(e)),
        e => LoadError::Other(anyhow::Error::new(e)),
    }
}

/// Errors about the state itself (an entry that cannot be encoded or is not a valid attribute
/// name) are serialization errors; the rest (Redis, limits) are other errors.
fn is_serialization(e: &Error) -> bool {
    matches!(e, Error::Encode { .. } | Error::InvalidName(_))
}

fn save_error(e: Error) -> SaveError {
    if is_serialization(&e) {
        SaveError::Serialization(anyhow::Error::new(e))
    } else {
        SaveError::Other(anyhow::Error::new(e))
    }
}

fn update_error(e: Error) -> UpdateError {
    if is_serialization(&e) {
        UpdateError::Serialization(anyhow::Error::new(e))
    } else {
        UpdateError::Other(anyhow::Error::new(e))
    }
}
