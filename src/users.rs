//! Sessions bound to a user: what a login binds, and what a list of a user's sessions shows.
//! The operations are [`SessionStore`](crate::SessionStore)'s (`login`,
//! `user_sessions`, `revoke`, `revoke_all`, `rotate`); docs/design.md lists their Redis calls.
//! How tokens rotate is [`Rotation`](crate::Rotation)'s (rotation.rs).

use crate::timeouts::Timeouts;

/// A login: the user a session is bound to, and what the app knows of the device.
///
/// ```
/// use redis_sessions::Login;
/// let login = Login::new("user-42").with_label("Firefox on Linux");
/// assert_eq!(login.user, "user-42");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Login {
    /// The user id: any text up to 1024 bytes. Redis holds it in the session's binding and
    /// in nothing else (the index's key holds a hash of it).
    pub user: String,
    /// What the user sees of this session in a list of their devices (a user agent, say). Kept
    /// up to 256 bytes. Default empty.
    pub label: String,
    /// Timeouts of the session's own from the login on ("remember me"); `None`, the default,
    /// for the store's.
    pub timeouts: Option<Timeouts>,
}

impl Login {
    /// A login as `user`, with no label and the store's timeouts.
    pub fn new(user: impl Into<String>) -> Self {
        Login { user: user.into(), label: String::new(), timeouts: None }
    }

    /// Sets the label a list of the user's sessions shows. Default empty.
    ///
    /// ```
    /// let login = redis_sessions::Login::new("ada").with_label("Safari on iPhone");
    /// assert_eq!(login.label, "Safari on iPhone");
    /// ```
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets timeouts of the session's own from the login on. Default `None`: the store's.
    ///
    /// ```
    /// use std::time::Duration;
    /// let week = Duration::from_secs(7 * 86_400);
    /// let remember = redis_sessions::Timeouts::new(week, 4 * week);
    /// let login = redis_sessions::Login::new("ada").with_timeouts(Some(remember));
    /// assert!(login.timeouts.is_some());
    /// ```
    pub fn with_timeouts(mut self, timeouts: Option<Timeouts>) -> Self {
        self.timeouts = timeouts;
        self
    }
}

/// One of a user's sessions, as [`SessionStore::user_sessions`](crate::SessionStore::user_sessions)
/// lists it. It holds no token: [`id`](Self::id) names the session to
/// [`revoke`](crate::SessionStore::revoke), and opens nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserSession {
    /// An opaque id for the session, stable across rotations: 11 base64url characters.
    pub id: String,
    /// The label given at login.
    pub label: String,
    /// When the session was created, ms since the Unix epoch (Redis' clock).
    pub created_ms: i64,
    /// When the session was last used, ms since the Unix epoch, as far as its touches and
    /// rotations record it: a load writes only once the touch threshold is reached, so this is
    /// behind by up to the threshold (by default a tenth of the idle timeout), and more in the
    /// last idle timeout before the absolute deadline, where the expiry stops sliding. `None`
    /// when it is not known.
    pub last_seen_ms: Option<i64>,
    /// When the session expires unless used again, ms since the Unix epoch.
    pub expires_ms: Option<i64>,
}
