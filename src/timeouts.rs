//! [`Timeouts`]: a session's own idle and absolute timeouts, in place of the store's
//! ("remember me").
//!
//! A session given timeouts of its own keeps its idle timeout, and the touch threshold that goes
//! with it, in its hash (field `@i`, fields.rs): get-and-touch reads them there, plain loads read
//! them with the session and saves send them back. Its deadline lives where every session's
//! does, in the packed record's header. The store's `idle_timeout` and `absolute_timeout` stay
//! the defaults, and a "remember me" login lengthens its own session alone.

use std::time::Duration;

use crate::config::{session_timeout_ms, Config};
use crate::error::{Error, Result};

/// A session's own idle and absolute timeouts, given by
/// [`SessionStore::create_with_timeouts`](crate::SessionStore::create_with_timeouts) or
/// [`SessionStore::regenerate_with_timeouts`](crate::SessionStore::regenerate_with_timeouts),
/// in place of the store's `idle_timeout` and `absolute_timeout`.
///
/// ```
/// use std::time::Duration;
/// use redis_sessions::Timeouts;
///
/// const DAY: Duration = Duration::from_secs(86_400);
/// // "Remember me": unused for a week it ends; in any case a month after the login.
/// let remember_me = Timeouts::new(7 * DAY, 30 * DAY);
/// assert_eq!(remember_me.idle, 7 * DAY);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[doc(alias = "Expiry")]
#[doc(alias = "remember_me")]
pub struct Timeouts {
    /// Unused this long, the session ends. A read slides it once the store's
    /// `touch_threshold` share of it is used up.
    pub idle: Duration,
    /// This long after the timeouts are given (at creation, or by the regenerate that gives
    /// them), the session ends however busy.
    pub absolute: Duration,
}

impl Timeouts {
    /// Timeouts of `idle` and `absolute`, each between 1 ms and 100 years (checked when used).
    pub const fn new(idle: Duration, absolute: Duration) -> Self {
        Timeouts { idle, absolute }
    }
}

/// Timeouts as the scripts take them, in ms: idle, absolute, and the touch threshold that goes
/// with the idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeoutsMs {
    pub(crate) idle: u64,
    pub(crate) absolute: u64,
    pub(crate) touch_after: u64,
}

impl TimeoutsMs {
    /// The store's own timeouts.
    pub(crate) fn of_store(config: &Config) -> Self {
        let (idle, absolute) = (config.idle_ms(), config.absolute_ms());
        TimeoutsMs { idle, absolute, touch_after: config.touch_after_ms() }
    }

    /// `timeouts` in ms, with the store's `touch_threshold` share of their idle timeout (the
    /// one place it is worked out: the scripts read the result from `@i`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a timeout is outside 1 ms to 100 years.
    pub(crate) fn of(timeouts: &Timeouts, config: &Config) -> Result<Self> {
        let (Some(idle), Some(absolute)) =
            (session_timeout_ms(timeouts.idle), session_timeout_ms(timeouts.absolute))
        else {
            let why = "a session's own idle and absolute timeouts must be 1 ms to 100 years";
            return Err(Error::Config(why.into()));
        };
        let share =
            u128::from(idle) * u128::from(config.touch_after_ms()) / u128::from(config.idle_ms());
        let touch_after = u64::try_from(share).unwrap_or(u64::MAX);
        Ok(TimeoutsMs { idle, absolute, touch_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_timeouts_keep_the_stores_share_of_the_idle_timeout_as_threshold() {
        let config = Config::default(); // 30 min idle, threshold 0.1: 3 min
        let day = Duration::from_secs(86_400);
        let own = TimeoutsMs::of(&Timeouts::new(day, 30 * day), &config).expect("valid");
        assert_eq!(
            own,
            TimeoutsMs { idle: 86_400_000, absolute: 2_592_000_000, touch_after: 8_640_000 }
        );
        let every_read = config.with_touch_threshold(0.0);
        let own = TimeoutsMs::of(&Timeouts::new(day, day), &every_read).expect("valid");
        assert_eq!(own.touch_after, 0, "a threshold of 0.0 stays 0");
    }

    #[test]
    fn timeouts_out_of_range_are_config_errors() {
        let (config, second) = (Config::default(), Duration::from_secs(1));
        for (idle, absolute) in [(Duration::ZERO, second), (second, Duration::from_secs(u64::MAX))]
        {
            let err = TimeoutsMs::of(&Timeouts::new(idle, absolute), &config).expect_err("range");
            assert!(matches!(err, Error::Config(_)), "{err:?}");
        }
    }
}
