//! Writing sessions: delta saves, regenerate-and-migrate, and flash messages.

use redis::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, instrument};

use crate::error::{Error, Result};
use crate::scripts::{Call, SCRIPTS};
use crate::session::Session;
use crate::store::{collided, SessionStore, TOKEN_ATTEMPTS};
use crate::timeouts::{Timeouts, TimeoutsMs};
use crate::token::Token;
use crate::{codec, fields, keys};

impl SessionStore {
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

    /// Like [`save`](Self::save), but only if Redis still holds what this session read: after
    /// [`load`](Self::load), the whole session as loaded (or as last saved from here); after
    /// [`load_only`](Self::load_only), the attributes it read. The check compares what is
    /// stored, not a counter, so a change that another request made and undid goes unseen.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when another request changed the session (nothing is written), and
    /// the errors of [`save`](Self::save).
    pub async fn save_checked(&self, session: &mut Session) -> Result<()> {
        self.save_delta(session, true).await
    }

    #[instrument(level = "debug", name = "session.save", skip_all, fields(session = ?session.token()))]
    async fn save_delta(&self, session: &mut Session, checked: bool) -> Result<()> {
        if !session.is_changed() {
            return Ok(());
        }
        if let Some(record) = session.compaction() {
            match self.compact(session, &record).await? {
                true => {
                    session.compacted(record);
                    return Ok(());
                }
                false if checked => return Err(Error::Conflict),
                // Another request saved since: its change stays, and this one goes as a delta.
                false => session.compaction_refused(),
            }
        }
        let script = if checked { &SCRIPTS.save_checked } else { &SCRIPTS.save };
        let mut call = script.call(&[&session.key]);
        if checked {
            call.arg(if session.is_whole() { "all" } else { "read" });
        }
        self.timeouts_and_deadline(&mut call, session);
        call.arg(self.config.limits.max_attributes).arg(self.config.limits.max_session_bytes);
        let (set, deleted) = session.delta();
        let view = if checked { session.view() } else { Vec::new() };
        if checked {
            match session.view_record_id() {
                Some(id) => call.arg(id),
                None => call.arg(""), // the client knows its record is out of date
            };
        }
        call.arg(set.len());
        if checked {
            call.arg(view.len());
        }
        for (name, value) in set {
            call.arg(name).arg(fields::stamped(name, value));
        }
        for (name, value) in view {
            call.arg(name).arg(value);
        }
        call.arg(deleted);
        let (code, number, tombstoned) = self.run::<(i64, i64, Vec<String>)>(&call).await?;
        match code {
            1 => {
                // -1: the save did not read the record (see lua/save.lua).
                session.saved_delta(u32::try_from(number).ok(), &tombstoned);
                Ok(())
            }
            0 => Err(Error::SessionGone),
            -1 => Err(Error::Conflict),
            -2 => Err(over_limit("attributes", number, self.config.limits.max_attributes)),
            -3 => Err(over_limit("session", number, self.config.limits.max_session_bytes)),
            code => Err(Error::Corrupt(format!("unexpected save reply {code}"))),
        }
    }

    /// Folds `session` into `record` if Redis still holds what it read: true when it did.
    ///
    /// # Errors
    ///
    /// [`Error::SessionGone`] when the session is no longer live; connection errors.
    async fn compact(&self, session: &Session, record: &[u8]) -> Result<bool> {
        let mut call = SCRIPTS.compact.call(&[&session.key]);
        self.timeouts_and_deadline(&mut call, session);
        // '' (never a record's id) once a save found the record out of date.
        call.arg(record).arg(session.view_record_id().map_or(String::new(), |id| id.to_string()));
        for (name, value) in session.view() {
            call.arg(name).arg(value);
        }
        match self.run::<(i64, i64, Vec<String>)>(&call).await? {
            (2, _, _) => Ok(true),
            (-1, _, _) => Ok(false),
            (0, _, _) => Err(Error::SessionGone),
            (code, _, _) => Err(Error::Corrupt(format!("unexpected compaction reply {code}"))),
        }
    }

    /// The idle timeout and touch threshold `session` slides by, then the deadline it read:
    /// a session with timeouts of its own slides by those its hash holds (timeouts.rs).
    fn timeouts_and_deadline(&self, call: &mut Call, session: &Session) {
        match (session.meta.idle_timeout_ms, session.meta.touch_after_ms) {
            (Some(idle), Some(touch_after)) => call.arg(idle).arg(touch_after),
            _ => call.arg(self.config.idle_ms()).arg(self.config.touch_after_ms()),
        };
        call.arg(session.meta.deadline_ms);
    }

    /// Moves the session to a fresh token and returns it; the old token loads nothing from now
    /// on. Call it on login, logout and any change of privilege (anti-fixation). Unsaved
    /// changes stay in `session` and go to the new token with the next save. The session keeps
    /// its timeouts and deadline ([`regenerate_with_timeouts`](Self::regenerate_with_timeouts)
    /// sets new ones).
    ///
    /// # Errors
    ///
    /// [`Error::SessionGone`] when the session no longer exists; connection errors as for
    /// [`create`](Self::create).
    #[instrument(level = "debug", name = "session.regenerate", skip_all, fields(session = ?session.token()))]
    #[doc(alias = "cycle_id")]
    #[doc(alias = "renew")]
    pub async fn regenerate(&self, session: &mut Session) -> Result<Token> {
        self.move_to_new_token(session, None).await
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
            Some(timeouts) => (TimeoutsMs::of(&timeouts, &self.config)?, true),
            None => (TimeoutsMs::of_store(&self.config), false),
        };
        self.move_to_new_token(session, Some(new)).await
    }

    /// Moves `session` to a new token under its hash tag; with `timeouts`, gives it those from
    /// now on (its own when the flag is set, else the store's).
    async fn move_to_new_token(
        &self,
        session: &mut Session,
        timeouts: Option<(TimeoutsMs, bool)>,
    ) -> Result<Token> {
        for _ in 0..TOKEN_ATTEMPTS {
            let token = Token::generate_with_tag(session.token().tag())?;
            let key = keys::session_key(&self.config, &token);
            let mut call = SCRIPTS.regenerate.call(&[&session.key, &key]);
            call.arg(session.meta.deadline_ms);
            if let Some((ms, own)) = timeouts {
                call.arg(ms.idle).arg(ms.absolute);
                match own {
                    true => call.arg(ms.touch_after),
                    false => call.arg(""),
                };
            }
            let reply = self.run::<Value>(&call).await?;
            match (timeouts, reply) {
                (_, Value::Int(0)) => return Err(Error::SessionGone),
                (_, Value::Int(-1)) => continue, // the new token's key is taken: draw again
                (None, Value::Int(1)) => {}
                (Some((ms, own)), Value::Array(moved)) => match <[Value; 3]>::try_from(moved) {
                    Ok([Value::Int(1), Value::Int(deadline), Value::Int(ttl)]) => {
                        session.meta.deadline_ms = deadline;
                        session.meta.ttl_ms = ttl;
                        session.meta.idle_timeout_ms = own.then_some(ms.idle as i64);
                        session.meta.touch_after_ms = own.then_some(ms.touch_after);
                    }
                    _ => return Err(unexpected_regenerate_reply()),
                },
                _ => return Err(unexpected_regenerate_reply()),
            }
            debug!(new_session = ?token, "regenerated");
            session.rekey(token.clone(), key);
            return Ok(token);
        }
        Err(collided())
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

    /// Queues a message already encoded with MessagePack.
    pub(crate) async fn push_flash_encoded(&self, session: &Session, bytes: Vec<u8>) -> Result<()> {
        let max = self.config.limits.max_value_bytes;
        self.config.limits.check_value(bytes.len())?;
        let mut call = SCRIPTS.flash_push.call(&[&session.key]);
        call.arg(bytes).arg(max).arg(session.meta.deadline_ms);
        match self.run::<i64>(&call).await? {
            0 => Err(Error::SessionGone),
            over @ ..0 => {
                let size = usize::try_from(over.unsigned_abs()).unwrap_or(usize::MAX);
                Err(Error::TooLarge { limit: "flash", size, max })
            }
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
        let popped = self.pop_flash_encoded(session).await?;
        session.flash.extend(popped);
        session.take_flash()
    }

    /// Takes the pending flash messages, still encoded (concatenated MessagePack values); see
    /// flash_pop.rs.
    pub(crate) async fn pop_flash_encoded(&self, session: &mut Session) -> Result<Vec<u8>> {
        let popped = self.pop_pending(&session.key).await?;
        session.flash_pending = false;
        Ok(popped)
    }
}

/// What a save reports when the script found it would take the session over a limit: the
/// session as stored, which other requests may have grown since this one read it.
fn over_limit(limit: &'static str, size: i64, max: usize) -> Error {
    Error::TooLarge { limit, size: usize::try_from(size).unwrap_or(0), max }
}

fn unexpected_regenerate_reply() -> Error {
    Error::Corrupt("regenerate answered neither 1, 0, -1 nor {1, deadline, ttl}".into())
}
