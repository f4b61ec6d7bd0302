//! [`Expiry`]: a session's own timeouts, in place of the store's ("remember me").
//!
//! A session given an expiry keeps its idle timeout in its hash (field `@i`, fields.rs), where
//! every script that slides the TTL reads it, and its deadline where every session keeps it, in
//! the packed record's header. So the store's `idle_timeout` and `absolute_timeout` stay the
//! defaults, and a "remember me" login lengthens its own session alone.

use std::time::Duration;

use crate::config::MAX_TIMEOUT_MS;
use crate::error::{Error, Result};

/// A session's own idle and absolute timeouts, given by
/// [`SessionStore::create_with_expiry`](crate::SessionStore::create_with_expiry) or
/// [`SessionStore::regenerate_with_expiry`](crate::SessionStore::regenerate_with_expiry), in
/// place of the store's `idle_timeout` and `absolute_timeout`.
///
/// ```
/// use std::time::Duration;
/// use redis_sessions::Expiry;
///
/// const DAY: Duration = Duration::from_secs(86_400);
/// // "Remember me": unused for a week it ends; in any case after 30 days.
/// let remember_me = Expiry::new(7 * DAY, 30 * DAY);
/// assert_eq!(remember_me.idle, 7 * DAY);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expiry {
    /// Unused this long, the session ends. The touch threshold applies as a share of it.
    pub idle: Duration,
    /// This long after it is given (its creation, or the regenerate that gives it), the session
    /// ends however busy.
    pub absolute: Duration,
}

impl Expiry {
    /// An expiry of `idle` and `absolute`, each between 1 ms and 100 years (checked when used).
    pub const fn new(idle: Duration, absolute: Duration) -> Self {
        Expiry { idle, absolute }
    }

    /// The two timeouts in whole milliseconds.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when either is outside 1 ms to 100 years.
    pub(crate) fn as_ms(&self) -> Result<(u64, u64)> {
        let (idle, absolute) = (self.idle.as_millis(), self.absolute.as_millis());
        let allowed = 1..=MAX_TIMEOUT_MS;
        if !allowed.contains(&idle) || !allowed.contains(&absolute) {
            return Err(Error::Config(
                "an expiry's idle and absolute must be 1 ms to 100 years".into(),
            ));
        }
        Ok((idle as u64, absolute as u64))
    }
}

/// The idle timeout and touch threshold a session is judged by: its own idle timeout (`own`)
/// with the same share of it as the store's threshold is of the store's idle timeout, or the
/// store's. get_and_touch.lua computes the same from the `@i` it reads.
pub(crate) fn touch_window(own: Option<i64>, idle_ms: u64, touch_after_ms: u64) -> (u64, u64) {
    match own {
        Some(own) if own > 0 && idle_ms > 0 => {
            let own = own as u64;
            let share = u128::from(own) * u128::from(touch_after_ms) / u128::from(idle_ms);
            (own, share as u64)
        }
        _ => (idle_ms, touch_after_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_own_idle_timeout_keeps_the_stores_share_of_it_as_threshold() {
        assert_eq!(touch_window(None, 1_800_000, 180_000), (1_800_000, 180_000));
        assert_eq!(touch_window(Some(86_400_000), 1_800_000, 180_000), (86_400_000, 8_640_000));
        assert_eq!(touch_window(Some(0), 1_800_000, 180_000), (1_800_000, 180_000), "not one");
        assert_eq!(touch_window(Some(5_000), 1_000, 0), (5_000, 0), "threshold 0.0 stays 0");
    }

    #[test]
    fn timeouts_out_of_range_are_config_errors() {
        let second = Duration::from_secs(1);
        assert_eq!(Expiry::new(second, 2 * second).as_ms().expect("valid"), (1_000, 2_000));
        for (idle, absolute) in [(Duration::ZERO, second), (second, Duration::from_secs(u64::MAX))]
        {
            let err = Expiry::new(idle, absolute).as_ms().expect_err("out of range");
            assert!(matches!(err, Error::Config(_)), "{err:?}");
        }
    }
}
