//! Size limits, checked before anything is written.
//!
//! A session store is an easy place for a bug (or an attacker filling a cart) to grow one key
//! without bound, and a huge hash makes every HVALS slow for everyone on that Redis. The
//! limits are checked on the client when a value is inserted, so a change this client can tell
//! is too big never reaches Redis, and the attribute count and the session's bytes again inside
//! the save script, against what is stored: saves of several requests cannot together take a
//! session past a limit that each of them kept on its own.

use serde::Deserialize;

use crate::error::{Error, Result};

/// Upper bounds on what one session may hold.
///
/// ```
/// let limits = redis_sessions::Limits::default();
/// assert_eq!(limits.max_value_bytes, 64 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Most bytes of one encoded attribute value, and of the pending flash messages.
    /// Default 64 KiB.
    pub max_value_bytes: usize,
    /// Most bytes of all attribute names and values together. Default 256 KiB.
    pub max_session_bytes: usize,
    /// Most attributes in one session. Default 256 (at most 4000, the largest a test saves and
    /// deletes in one go through the save script's chunked writes).
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_value_bytes: 64 * 1024, max_session_bytes: 256 * 1024, max_attributes: 256 }
    }
}

impl Limits {
    /// Sets the per-value limit. Default 64 KiB.
    ///
    /// ```
    /// let limits = redis_sessions::Limits::default().with_max_value_bytes(512);
    /// assert_eq!(limits.max_value_bytes, 512);
    /// ```
    pub fn with_max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Sets the per-session limit. Default 256 KiB.
    ///
    /// ```
    /// let limits = redis_sessions::Limits::default().with_max_session_bytes(4096);
    /// assert_eq!(limits.max_session_bytes, 4096);
    /// ```
    pub fn with_max_session_bytes(mut self, bytes: usize) -> Self {
        self.max_session_bytes = bytes;
        self
    }

    /// Sets the attribute-count limit. Default 256.
    ///
    /// ```
    /// let limits = redis_sessions::Limits::default().with_max_attributes(8);
    /// assert_eq!(limits.max_attributes, 8);
    /// ```
    pub fn with_max_attributes(mut self, count: usize) -> Self {
        self.max_attributes = count;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_attributes == 0 || self.max_attributes > 4000 {
            return Err(Error::Config("max_attributes must be between 1 and 4000".into()));
        }
        if self.max_value_bytes == 0 || self.max_value_bytes > self.max_session_bytes {
            return Err(Error::Config("max_value_bytes must be in 1..=max_session_bytes".into()));
        }
        Ok(())
    }

    /// Refuses a value over the per-value limit.
    pub(crate) fn check_value(&self, size: usize) -> Result<()> {
        check("value", size, self.max_value_bytes)
    }

    /// Refuses a change that grows a session, in bytes or attributes, past a limit. A change
    /// that does not grow it passes even when the session is already over a limit (one that
    /// was lowered since it was stored), so such a session can still shrink.
    pub(crate) fn check_growth(&self, before: (usize, usize), after: (usize, usize)) -> Result<()> {
        if after.0 > before.0 {
            check("session", after.0, self.max_session_bytes)?;
        }
        if after.1 > before.1 {
            check("attributes", after.1, self.max_attributes)?;
        }
        Ok(())
    }
}

fn check(limit: &'static str, size: usize, max: usize) -> Result<()> {
    if size > max {
        return Err(Error::TooLarge { limit, size, max });
    }
    Ok(())
}
