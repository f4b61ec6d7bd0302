//! The store's methods for sessions bound to users: login, a user's list, revoke, rotation, and
//! following a rotation that a concurrent request made (users.rs and rotation.rs carry them out).

use tracing::instrument;

use crate::error::{Error, Result};
use crate::seal;
use crate::session::Session;
use crate::store::{load, rotation, users, SessionStore};
use crate::token::Token;

impl SessionStore {
    /// Logs the session in as a user: moves it to a fresh token (as
    /// [`regenerate_with_timeouts`](Self::regenerate_with_timeouts) does, with the login's
    /// timeouts from now on) and binds it to `login.user`, entering it in the user's index, in
    /// one script. The new token carries the user's hash tag, so on a Redis Cluster all of a
    /// user's sessions and their index share one slot; there the old key, in another slot, is
    /// deleted by a second script once the first has copied it. Logging in again as the same
    /// user keeps the session's id in the user's list.
    ///
    /// ```no_run
    /// # async fn login(store: redis_sessions::SessionStore, mut session: redis_sessions::Session)
    /// # -> redis_sessions::Result<()> {
    /// use redis_sessions::Login;
    /// store.login(&mut session, &Login::new("user-42").with_label("Firefox on Linux")).await?;
    /// assert_eq!(session.user_id(), Some("user-42"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a user id that is empty or over 1024 bytes, or timeouts outside
    /// 1 ms to 100 years; [`Error::Conflict`] when other requests kept changing the session
    /// while it moved (five times); otherwise as [`regenerate`](Self::regenerate). Nothing is
    /// written on error, but on a Cluster when the connection fails between the copy and the
    /// deletion of the old key: the copy then stays, listed, until its idle timeout, and no
    /// token opens it.
    #[instrument(level = "debug", name = "session.login", skip_all, fields(session = ?session.token()))]
    pub async fn login(&self, session: &mut Session, login: &crate::Login) -> Result<Token> {
        users::login(&self.core, session, login).await
    }

    /// The live sessions of `user`, oldest first, each with an opaque id to
    /// [`revoke`](Self::revoke) it by, and no token. Entries of sessions that ended (expired,
    /// destroyed) are removed from the index on the way.
    ///
    /// ```no_run
    /// # async fn demo(store: redis_sessions::SessionStore) -> redis_sessions::Result<()> {
    /// for device in store.user_sessions("user-42").await? {
    ///     println!("{} ({}): last seen {:?}", device.label, device.id, device.last_seen_ms);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when logins and revokes kept changing the index meanwhile (five
    /// times); connection errors as for [`create`](Self::create).
    #[instrument(level = "debug", name = "session.user_sessions", skip_all)]
    pub async fn user_sessions(&self, user: &str) -> Result<Vec<crate::UserSession>> {
        users::list(&self.core, user).await
    }

    /// Ends the session of `user` whose [`id`](crate::UserSession::id) is `id` ("log out that
    /// device"); true when it was live. An id no list could have shown is `Ok(false)`.
    ///
    /// # Errors
    ///
    /// As for [`user_sessions`](Self::user_sessions).
    #[instrument(level = "debug", name = "session.revoke", skip_all)]
    pub async fn revoke(&self, user: &str, id: &str) -> Result<bool> {
        let Some(device) = crate::format::bound::parse_device(id) else { return Ok(false) };
        let ended = users::revoke(&self.core, user, users::Scope::One(device), None).await?;
        Ok(ended.unwrap_or(0) > 0)
    }

    /// Ends every session of `user` ("log out everywhere", after a password change, say), in
    /// one script that checks it names every session the user's index holds; returns how many
    /// were live. A login that completes before it is among them; one that binds its session
    /// after it survives (docs/design.md). Sessions in Redis only: a user's stateless sessions
    /// (feature `stateless`) are revoked by `StatelessSessions::revoke_all`.
    ///
    /// # Errors
    ///
    /// As for [`user_sessions`](Self::user_sessions).
    #[instrument(level = "debug", name = "session.revoke_all", skip_all)]
    pub async fn revoke_all(&self, user: &str) -> Result<usize> {
        Ok(users::revoke(&self.core, user, users::Scope::All, None).await?.unwrap_or(0))
    }

    /// Ends every session of the user `session` is bound to but `session` itself ("log out
    /// everywhere else"); returns how many were live. A session no login bound has none.
    ///
    /// # Errors
    ///
    /// As for [`revoke_all`](Self::revoke_all).
    #[instrument(level = "debug", name = "session.revoke_others", skip_all, fields(session = ?session.token()))]
    pub async fn revoke_others(&self, session: &Session) -> Result<usize> {
        let Some(bound) = &session.bound else { return Ok(0) };
        let scope = users::Scope::AllBut(bound.device);
        Ok(users::revoke(&self.core, &bound.user, scope, None).await?.unwrap_or(0))
    }

    /// Rotates a bound session's token now (after a change of privilege, say): the session
    /// moves to a new token under the same hash tag, and the old token leads to it for the
    /// grace window of [`Config::rotation`](crate::Config::rotation) (30 seconds when rotation
    /// is off), then counts as stolen (see [`Rotation`](crate::Rotation)). Unsaved changes stay
    /// in `session`. When another request rotated the same token first, `session` takes the
    /// token that one drew, so both end on one.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a session no login bound; otherwise as
    /// [`regenerate`](Self::regenerate).
    #[instrument(level = "debug", name = "session.rotate", skip_all, fields(session = ?session.token()))]
    pub async fn rotate(&self, session: &mut Session) -> Result<Token> {
        let next = match rotation::rotate(&self.core, session).await? {
            rotation::Rotated::Done(token) => return Ok(token),
            rotation::Rotated::First(next) => next,
        };
        // Another request rotated it first: take its token, with the unsaved changes.
        match self.take_over(session, &next).await? {
            true => Ok(session.token().clone()),
            false => Err(Error::SessionGone),
        }
    }

    /// Rotates the session's token if it is due ([`Rotation::every`](crate::Rotation::every)
    /// since the last rotation or the login): the new token, or `None` when none was due
    /// (rotation off, a session no login bound, or not yet). The web layer calls it after
    /// each request.
    ///
    /// # Errors
    ///
    /// As for [`rotate`](Self::rotate).
    pub async fn rotate_if_due(&self, session: &mut Session) -> Result<Option<Token>> {
        match rotation::due(&self.core, session) {
            true => self.rotate(session).await.map(Some),
            false => Ok(None),
        }
    }

    /// For a bound session whose token another request rotated since it was loaded, while the
    /// grace window is open: `session` becomes the session the rotation moved it to, with its
    /// unsaved changes. False when there is none to follow.
    pub(crate) async fn follow_rotation(&self, session: &mut Session) -> Result<bool> {
        if session.bound.is_none() {
            return Ok(false);
        }
        match rotation::rotated_to(&self.core, session).await? {
            Some(next) => self.take_over(session, &next).await,
            None => Ok(false),
        }
    }

    /// Replaces `session` with the session under `next`, to which a rotation moved it, keeping
    /// its unsaved changes (sealed anew for the new key under encryption); false when there is
    /// no such session.
    async fn take_over(&self, session: &mut Session, next: &Token) -> Result<bool> {
        let Some(mut loaded) = load::load(&self.core, next.expose(), None, false).await? else {
            return Ok(false);
        };
        let mut pending = std::mem::take(session.pending_mut());
        if let (Some(from), Some(to)) = (&session.seal, &loaded.seal) {
            for (name, value) in pending.iter_mut() {
                if let Some(stored) = value {
                    *stored = seal::moved_value(from, to, name, stored)?;
                }
            }
        }
        *loaded.pending_mut() = pending;
        *session = loaded;
        Ok(true)
    }
}
