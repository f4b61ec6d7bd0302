//! redis-sessions as a [`tower_sessions_core::SessionStore`] (feature `tower-sessions`).
//!
//! Switching an app from another tower-sessions store is one line: wrap a
//! [`SessionStore`] in [`TowerSessionStore`] where the old store was.
//!
//! ```no_run
//! # fn demo() -> redis_sessions::Result<()> {
//! use redis_sessions::adapters::tower_sessions::TowerSessionStore;
//! use redis_sessions::{Config, SessionStore};
//!
//! let store = SessionStore::new(Config::from_url("redis://127.0.0.1:6379"))?;
//! // Instead of `SessionManagerLayer::new(RedisStore::new(pool))`:
//! let layer = tower_sessions::SessionManagerLayer::new(TowerSessionStore::new(store));
//! # let _ = layer;
//! # Ok(()) }
//! ```
//!
//! # Session IDs and keys
//!
//! tower-sessions draws each session's ID (128 random bits) and puts it in the cookie. This
//! adapter derives a [`Token`] from the ID by hashing it, and Redis stores the session under
//! the key derived from that token (another hash), so Redis, its AOF and RDB files and its
//! replicas hold nothing from which the cookie could be rebuilt.
//!
//! # What is written
//!
//! Every entry of the record's data is one attribute of the session, its JSON value encoded
//! with MessagePack. A [`save`](tower_sessions_core::SessionStore::save) writes only the entries
//! that changed and deletes the ones that were removed; entries another request changed in the
//! meantime, and the record leaves untouched, survive. (tower-sessions hands the store the
//! whole record, so an entry this request removed but another request just added is deleted.)
//! Entry names that are empty or start with `@` (reserved by this crate for metadata) or `~`
//! are stored with a `~` in front, and read back without it.
//!
//! [`cycle_id`](https://docs.rs/tower-sessions/0.15/tower_sessions/struct.Session.html#method.cycle_id)
//! is a delete of the old ID followed by a create under the new one, as tower-sessions defines
//! it; the old ID loads nothing afterwards.
//!
//! # Expiry
//!
//! The store enforces its own [`Config`](crate::Config) timeouts inside Redis: the idle timeout
//! ([`idle_timeout`](crate::Config::idle_timeout), slid forward by loads) and the absolute one
//! ([`absolute_timeout`](crate::Config::absolute_timeout)). The `expiry_date` tower-sessions
//! puts in a record (from `SessionManagerLayer::with_expiry`) is **not** used to set the TTL
//! in Redis: it only decides the cookie's lifetime. Give the layer an expiry no longer than
//! the store's timeouts (for example `Expiry::OnInactivity` with the idle timeout, or
//! `Expiry::OnSessionEnd`), or the browser keeps a cookie whose session Redis has already
//! dropped (tower-sessions then starts a new, empty session, as for any unknown ID). A loaded
//! record's `expiry_date` is now plus the key's remaining time to live in Redis.
//!
//! # Errors
//!
//! The crate's [`Error`]s become `tower_sessions_core::session_store::Error`s carrying their
//! text (and their sources' text), which never includes a token or a session ID:
//! [`Error::Encode`], [`Error::TooLarge`] and [`Error::InvalidName`] become `Encode`,
//! [`Error::Decode`] becomes `Decode`, everything else `Backend`.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;

use crate::error::Error;
use crate::session::Session;
use crate::store::{SessionStore, TOKEN_ATTEMPTS};
use crate::token::Token;

/// A [`SessionStore`] that implements tower-sessions'
/// [`SessionStore`](tower_sessions_core::SessionStore) trait. Cheap to clone: clones share the
/// store's connections.
///
/// See the [module documentation](self) for how records map to Redis and how expiry works.
#[derive(Clone, Debug)]
pub struct TowerSessionStore {
    store: SessionStore,
}

impl TowerSessionStore {
    /// Wraps `store` for tower-sessions' `SessionManagerLayer`.
    pub fn new(store: SessionStore) -> Self {
        TowerSessionStore { store }
    }

    /// The wrapped store.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// Creates an empty session under `id`, redrawing `id` on a collision; the new session.
    async fn create_for(&self, id: &mut Id) -> session_store::Result<Session> {
        for _ in 0..TOKEN_ATTEMPTS {
            match self.store.create_with_token(token_for(id), None).await.map_err(store_error)? {
                Some(session) => return Ok(session),
                None => *id = Id::default(),
            }
        }
        Err(session_store::Error::Backend(
            "session ID collided repeatedly: is the random source broken?".into(),
        ))
    }

    /// Brings `session` to `data` and saves it; a session gone meanwhile is an error. When the
    /// session was just created and the save fails otherwise, destroys it (best effort, and not
    /// when Redis is unreachable), so no empty session is left behind.
    async fn write(
        &self,
        session: &mut Session,
        data: &HashMap<String, Value>,
        created: bool,
    ) -> session_store::Result<()> {
        let entries = data.iter().map(|(name, value)| (escape(name), value));
        let result = match super::sync_entries(session, entries) {
            Ok(()) => self.store.save(session).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(Error::SessionGone) => Err(gone()),
            Err(e) => {
                // Not when Redis is unreachable: the destroy would only wait out a timeout.
                if created && !e.is_unavailable() {
                    // Best effort: the session expires on its own otherwise.
                    let _ = self.store.destroy(session).await;
                }
                Err(store_error(e))
            }
        }
    }
}

#[async_trait]
impl tower_sessions_core::SessionStore for TowerSessionStore {
    /// Creates the session under `record.id`, drawing a new ID on the (astronomically unlikely)
    /// collision with an existing session, and writes `record.data`. A session gone before its
    /// first save (only a delete of an ID nobody has been told yet could do that) is an error.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut session = self.create_for(&mut record.id).await?;
        self.write(&mut session, &record.data, true).await
    }

    /// Writes the entries of `record.data` that differ from Redis and deletes those it no
    /// longer has. A session that no longer exists (it expired, or another request deleted it
    /// or cycled its ID) is an error, and nothing is written: a save never brings a session
    /// back, which would let a client holding a request open keep a session past its
    /// absolute timeout.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let token = token_for(&record.id);
        let Some(mut session) = self.store.load(token.expose()).await.map_err(store_error)? else {
            return Err(gone());
        };
        self.write(&mut session, &record.data, false).await
    }

    /// The session's entries; `None` when it does not exist, expired or was deleted. Loading
    /// slides the idle expiry (when due).
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let token = token_for(id);
        let Some(session) = self.store.load(token.expose()).await.map_err(store_error)? else {
            return Ok(None);
        };
        let mut data = HashMap::new();
        for name in session.names() {
            if let Some(value) = session.get::<Value>(name).map_err(store_error)? {
                data.insert(unescape(name).to_owned(), value);
            }
        }
        let ttl = Duration::milliseconds(session.metadata().ttl_ms.max(0));
        let expiry_date = OffsetDateTime::now_utc().saturating_add(ttl);
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    /// Deletes the session; a session that does not exist is not an error.
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.destroy_token(token_for(id).expose()).await.map_err(store_error)?;
        Ok(())
    }
}

/// The error of a save whose session is gone.
fn gone() -> session_store::Error {
    session_store::Error::Backend(super::GONE.to_owned())
}

/// The token a tower-sessions ID maps to.
fn token_for(id: &Id) -> Token {
    Token::derive(&id.0.to_le_bytes())
}

/// Prefix marking an escaped entry name.
const ESCAPE: char = '~';

/// The attribute name for entry `name`: `~` in front of names the store would reject (empty,
/// or starting with `@`) and of names starting with `~`, so that [`unescape`] is exact.
fn escape(name: &str) -> std::borrow::Cow<'_, str> {
    if name.is_empty() || name.starts_with('@') || name.starts_with(ESCAPE) {
        format!("{ESCAPE}{name}").into()
    } else {
        name.into()
    }
}

/// The entry name for attribute `name`.
fn unescape(name: &str) -> &str {
    name.strip_prefix(ESCAPE).unwrap_or(name)
}

/// The tower-sessions error for `e`: its text and its sources' (none holds a token).
fn store_error(e: Error) -> session_store::Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    match e {
        Error::Encode { .. } | Error::TooLarge { .. } | Error::InvalidName(_) => {
            session_store::Error::Encode(text)
        }
        Error::Decode { .. } => session_store::Error::Decode(text),
        _ => session_store::Error::Backend(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_exactly() {
        for name in ["", "@", "@c", "~", "~x", "~~", "plain", "a@b", "a~"] {
            let escaped = escape(name);
            assert!(!escaped.is_empty() && !escaped.starts_with('@'), "{name:?} -> {escaped:?}");
            assert_eq!(unescape(&escaped), name);
        }
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn json_values_round_trip_through_messagepack() {
        let values = [
            serde_json::json!(null),
            serde_json::json!(true),
            serde_json::json!(0),
            serde_json::json!(-1),
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(1.0),
            serde_json::json!(-2.5e-300),
            serde_json::json!(""),
            serde_json::json!("héllo"),
            serde_json::json!([1, "two", [3.5], {"four": null}]),
            serde_json::json!({"a": {"b": [true, false]}, "": 1, "@c": "x"}),
        ];
        for value in values {
            let bytes = crate::format::codec::encode("v", &value).expect("encode");
            let back: Value = crate::format::codec::decode("v", &bytes).expect("decode");
            assert_eq!(back, value);
            // Equal values encode to equal bytes, so re-inserting them writes nothing.
            assert_eq!(crate::format::codec::encode("v", &back).expect("encode"), bytes);
        }
    }

    #[test]
    fn error_kinds_map() {
        let too_large = Error::TooLarge { limit: "value", size: 2, max: 1 };
        assert!(matches!(store_error(too_large), session_store::Error::Encode(_)));
        assert!(matches!(store_error(Error::SessionGone), session_store::Error::Backend(_)));
        let decode = crate::format::codec::decode::<Value>("x", &[crate::format::META])
            .expect_err("garbage");
        match store_error(decode) {
            session_store::Error::Decode(text) => assert!(text.contains("\"x\""), "{text}"),
            other => panic!("{other:?}"),
        }
    }
}
