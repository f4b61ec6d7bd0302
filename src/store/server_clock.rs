//! The server's clock as this process estimates it, so that a plain load needs no `PTTL`.
//!
//! Why: a load must know whether the session's idle expiry is due to slide. Asking Redis with a
//! `PTTL` beside `HVALS` would make a plain load two commands, the second a large share of its
//! cost (docs/performance.md). So the scripts that set a key's TTL also record the expiry in the
//! hash (field `@t`, fields.rs), and a load compares it with this estimate of the server's time:
//! one command, and the answer is in the values it reads anyway.
//!
//! How the estimate is kept: a read carries `TIME` when there is no estimate yet, and then once per
//! [`SYNC_EVERY`] (one read claims it). The estimate is the server's time that `TIME` answered plus
//! the time elapsed since the read was *sent*, on this process's monotonic clock. The server read
//! its clock after the read was sent, so the estimate runs ahead of the server by at most a round
//! trip, never behind, but for what happens between two syncs: drift (NTP slews a clock by at most
//! 0.5 ms a second), a step forward of the server's clock, or this host being suspended (the
//! monotonic clock stops); each lasts until the next sync, a second later at most, and a touch
//! window is minutes. Ahead is the safe side: a load runs get-and-touch a little early, and the
//! script, on the server's own clock, writes nothing that is not due. The app host's wall clock is
//! never read, so its skew and its steps do not matter. On a Redis Cluster, `TIME` goes to the node
//! of the key read with it: the nodes' clocks are assumed to agree (as NTP keeps them) to well
//! within the touch window.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use redis::Value;

use crate::error::{Error, Result};

/// How long one estimate serves before a read carries `TIME` again.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(1);

/// No estimate yet.
const UNSYNCED: i64 = i64::MIN;

/// An estimate of the server's clock (see the module's docs).
#[derive(Debug)]
pub(crate) struct ServerClock {
    /// The instant every other time here is counted from.
    origin: Instant,
    /// The server's time minus this process's, in µs since `origin`; `UNSYNCED` at first.
    offset_us: AtomicI64,
    /// When a read last claimed a sync, in µs since `origin`.
    claimed_us: AtomicI64,
}

impl ServerClock {
    pub(crate) fn new() -> Self {
        let (offset_us, claimed_us) = (AtomicI64::new(UNSYNCED), AtomicI64::new(0));
        ServerClock { origin: Instant::now(), offset_us, claimed_us }
    }

    /// The server's time now, in ms since the epoch, as estimated; `None` before the first
    /// sync.
    pub(crate) fn now_ms(&self) -> Option<u64> {
        let offset = self.offset_us.load(Ordering::Relaxed);
        let now = (offset != UNSYNCED).then(|| self.since_origin(Instant::now()) + offset)?;
        u64::try_from(now / 1000).ok()
    }

    /// `Some(the instant the read is sent)` when this read should carry `TIME`: every read
    /// until the first sync, then one read per [`SYNC_EVERY`].
    pub(crate) fn claim_sync(&self) -> Option<Instant> {
        let sent = Instant::now();
        let now = self.since_origin(sent);
        if self.offset_us.load(Ordering::Relaxed) == UNSYNCED {
            return Some(sent);
        }
        let last = self.claimed_us.load(Ordering::Relaxed);
        let due = now - last >= SYNC_EVERY.as_micros() as i64;
        let won =
            || self.claimed_us.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed);
        (due && won().is_ok()).then_some(sent)
    }

    /// Takes the server's answer to `TIME`, which a read sent at `sent` carried.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when the reply is not `TIME`'s; the estimate is left as it was.
    pub(crate) fn sync(&self, sent: Instant, time: Value) -> Result<()> {
        let (server_us, sent_us) = (time_us(time)?, self.since_origin(sent));
        self.offset_us.store(server_us - sent_us, Ordering::Relaxed);
        self.claimed_us.fetch_max(sent_us, Ordering::Relaxed);
        Ok(())
    }

    fn since_origin(&self, instant: Instant) -> i64 {
        instant.saturating_duration_since(self.origin).as_micros() as i64
    }
}

/// The most seconds a `TIME` reply may say (the year 36,800): bounded, so that no sum here can
/// overflow.
const MAX_SECONDS: u64 = 1 << 40;

/// The µs since the epoch in a reply to `TIME`: seconds and microseconds, as strings.
fn time_us(time: Value) -> Result<i64> {
    let number = |value: &Value| match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse::<u64>().ok(),
        _ => None,
    };
    match time {
        Value::Array(parts) if parts.len() == 2 => match (number(&parts[0]), number(&parts[1])) {
            (Some(s), Some(us)) if s <= MAX_SECONDS && us < 1_000_000 => {
                Some((s * 1_000_000 + us) as i64)
            }
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| Error::Corrupt("TIME did not answer seconds and microseconds".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: &str, micros: &str) -> Value {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        Value::Array(vec![bulk(seconds), bulk(micros)])
    }

    #[test]
    fn every_read_syncs_until_the_first_answer_then_one_a_second() {
        let clock = ServerClock::new();
        assert_eq!(clock.now_ms(), None);
        let sent = clock.claim_sync().expect("no estimate yet");
        assert!(clock.claim_sync().is_some(), "still none: every read asks");
        clock.sync(sent, time("1800000000", "250000")).expect("valid");
        let now = clock.now_ms().expect("synced");
        assert!((1_800_000_000_250..1_800_000_001_250).contains(&now), "{now}");
        assert!(clock.claim_sync().is_none(), "synced: no read asks within a second");
        clock.claimed_us.fetch_sub(SYNC_EVERY.as_micros() as i64, Ordering::Relaxed);
        assert!(clock.claim_sync().is_some(), "a second later, one read asks");
        assert!(clock.claim_sync().is_none(), "and no other");
    }

    #[test]
    fn the_estimate_counts_from_when_the_read_was_sent() {
        let clock = ServerClock::new();
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        clock.sync(sent, time("1800000000", "0")).expect("valid");
        let now = clock.now_ms().expect("synced");
        assert!(now >= 1_800_000_000_030, "runs ahead of the server, never behind: {now}");
    }

    #[test]
    fn a_reply_that_is_not_times_is_corrupt_and_keeps_the_estimate() {
        let clock = ServerClock::new();
        let absurd = [time("-1", "0"), time("9223372036854775807", "0"), time("1", "1000000")];
        let odd = [Value::Nil, time("x", "1"), time("1", "1.5"), Value::Array(vec![])];
        for reply in odd.into_iter().chain(absurd) {
            let err = clock.sync(Instant::now(), reply).expect_err("corrupt");
            assert!(matches!(err, Error::Corrupt(_)));
        }
        assert_eq!(clock.now_ms(), None);
    }
}
