//! Rotation of the tokens of sessions bound to a user: how often, and the grace window after.

use std::time::Duration;

use serde::Deserialize;

/// Rotation of bound sessions' tokens, with a grace window and reuse detection. Off by default
/// ([`Config::rotation`](crate::Config::rotation)).
///
/// A token in use for [`every`](Self::every) is replaced by a new one once due: the web layer
/// checks after each request that used the session, and reissues the cookie by itself; without
/// it, [`SessionStore::rotate_if_due`](crate::SessionStore::rotate_if_due) does (the actix and
/// tower-sessions adapters do not rotate). The old token keeps loading the session for
/// [`grace`](Self::grace), for requests already in flight; presented after that, it is taken
/// for a stolen one: the session it led to is revoked (all of the user's with
/// [`revoke_user_on_reuse`](Self::revoke_user_on_reuse)), a `warn` event is logged, and the
/// load fails with [`Error::TokenReused`](crate::Error::TokenReused).
///
/// ```
/// use std::time::Duration;
/// use redis_sessions::{Config, Rotation};
/// let rotation = Rotation::default().with_every(Duration::from_secs(600));
/// let config = Config::default().with_rotation(rotation);
/// assert_eq!(config.rotation.map(|r| r.grace), Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Rotation {
    /// How long a token is used before it is rotated. Default 15 minutes.
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    /// How long a retired token still leads to the new one. Default 30 seconds; shorter than
    /// [`every`](Self::every) ([`Config::validate`](crate::Config::validate) checks).
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// On reuse after the grace window, revoke every session of the user, not only the one the
    /// token led to. Default false.
    pub revoke_user_on_reuse: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            every: Duration::from_secs(15 * 60),
            grace: Duration::from_secs(30),
            revoke_user_on_reuse: false,
        }
    }
}

impl Rotation {
    /// Sets how long a token is used before it is rotated. Default 15 minutes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let rotation = redis_sessions::Rotation::default().with_every(Duration::from_secs(60));
    /// assert_eq!(rotation.every, Duration::from_secs(60));
    /// ```
    pub fn with_every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Sets how long a retired token still leads to the new one. Default 30 seconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let rotation = redis_sessions::Rotation::default().with_grace(Duration::from_secs(5));
    /// assert_eq!(rotation.grace, Duration::from_secs(5));
    /// ```
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets whether reuse after the grace window revokes every session of the user. Default
    /// false: the session the token led to.
    ///
    /// ```
    /// let rotation = redis_sessions::Rotation::default().with_revoke_user_on_reuse(true);
    /// assert!(rotation.revoke_user_on_reuse);
    /// ```
    pub fn with_revoke_user_on_reuse(mut self, all: bool) -> Self {
        self.revoke_user_on_reuse = all;
        self
    }
}
