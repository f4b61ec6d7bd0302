//! This process's copy of the revocations Redis holds, which every request checks without a
//! Redis call, and how fresh the copy is known to be.
//!
//! Redis holds them in one sorted set (lua/revocation.lua), each member scored by the ms after
//! which it can go:
//!
//! - `t:<device id>`: one session is revoked (a logout, or "log out that device"), until its
//!   deadline.
//! - `u:<user hash>:<ms>`: every session of the user that began before `<ms>` is revoked ("log
//!   out everywhere"), until the longest lifetime has passed.
//!
//! The set only grows by adds, and its members only leave once they no longer matter, so the
//! copy is the union of a snapshot and of the adds published since: the order in which the
//! snapshot and a message arrive does not matter, and applying one twice changes nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::format::DEVICE_LEN;
use crate::token::Token;

/// The revocations known here.
#[derive(Default)]
struct Lists {
    /// Device id -> ms until which its session is revoked.
    devices: HashMap<String, i64>,
    /// User hash -> sessions that began before this ms are revoked; and until when that holds.
    users: HashMap<String, (i64, i64)>,
}

/// What a check of one session found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Valid,
    Revoked,
    /// The copy is not known to be current: the feed has been silent this long (ms; 0: it
    /// never synchronised).
    Stale(u64),
}

/// The revocations known here, and when the feed last showed them current.
pub(crate) struct Mirror {
    lists: RwLock<Lists>,
    origin: Instant,
    /// When the feed last showed the copy current (its snapshot read, or a ping answered
    /// after it), in ms since `origin` plus one; 0 before the first snapshot.
    current_ms: AtomicU64,
    /// Whether a snapshot was read, for those who wait for the first.
    synced: tokio::sync::watch::Sender<bool>,
}

impl Mirror {
    pub(crate) fn new() -> Mirror {
        let (synced, _) = tokio::sync::watch::channel(false);
        Mirror {
            lists: RwLock::default(),
            origin: Instant::now(),
            current_ms: AtomicU64::new(0),
            synced,
        }
    }

    /// Takes in one member of the set with its score; members of another shape are ignored
    /// (a newer version's, which this one does not know).
    pub(crate) fn apply(&self, member: &str, until_ms: i64) {
        let mut lists = write(&self.lists);
        if let Some(device) = member.strip_prefix("t:") {
            let until = lists.devices.entry(device.to_owned()).or_insert(until_ms);
            *until = (*until).max(until_ms);
        } else if let Some((user, not_before)) =
            member.strip_prefix("u:").and_then(|rest| rest.rsplit_once(':'))
        {
            let Ok(not_before) = not_before.parse::<i64>() else { return };
            let entry = lists.users.entry(user.to_owned()).or_insert((not_before, until_ms));
            *entry = (entry.0.max(not_before), entry.1.max(until_ms));
        }
    }

    /// Drops what no longer matters at `now_ms`.
    pub(crate) fn prune(&self, now_ms: i64) {
        let mut lists = write(&self.lists);
        lists.devices.retain(|_, until| *until > now_ms);
        lists.users.retain(|_, (_, until)| *until > now_ms);
    }

    /// The feed showed the copy current at `at` (a ping sent then was answered).
    pub(crate) fn current_at(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.origin).as_millis() as u64 + 1;
        self.current_ms.fetch_max(ms, Ordering::Relaxed);
        self.synced.send_if_modified(|synced| !std::mem::replace(synced, true));
    }

    /// Tells when the first snapshot was read.
    pub(crate) fn synced(&self) -> tokio::sync::watch::Receiver<bool> {
        self.synced.subscribe()
    }

    /// True once a snapshot was read.
    pub(crate) fn ever_current(&self) -> bool {
        self.current_ms.load(Ordering::Relaxed) > 0
    }

    /// Whether the session of `device` (of `user`'s hash, begun at `start_ms`) is revoked, by
    /// the copy, when the copy is current within `bound`.
    pub(crate) fn check(
        &self,
        device: &str,
        user: Option<&str>,
        start_ms: i64,
        bound: Duration,
    ) -> Verdict {
        let revoked = {
            let lists = read(&self.lists);
            lists.devices.contains_key(device)
                || user.and_then(|user| lists.users.get(user)).is_some_and(|(nb, _)| start_ms < *nb)
        };
        if revoked {
            return Verdict::Revoked;
        }
        match self.silent_for() {
            Some(silent) if silent <= bound => Verdict::Valid,
            Some(silent) => Verdict::Stale(silent.as_millis() as u64),
            None => Verdict::Stale(0),
        }
    }

    /// How long since the feed last showed the copy current; `None` before the first snapshot.
    pub(crate) fn silent_for(&self) -> Option<Duration> {
        let current = self.current_ms.load(Ordering::Relaxed).checked_sub(1)?;
        let now = self.origin.elapsed().as_millis() as u64;
        Some(Duration::from_millis(now.saturating_sub(current)))
    }

    /// How many revocations the copy holds (devices, users).
    #[cfg(test)]
    pub(crate) fn len(&self) -> (usize, usize) {
        let lists = read(&self.lists);
        (lists.devices.len(), lists.users.len())
    }
}

/// The device id of the session whose `jti` is `token`.
pub(crate) fn device_of(token: &Token) -> [u8; DEVICE_LEN] {
    let hash = Sha256::new().chain_update(b"stateless device\0").chain_update(token.expose());
    let mut device = [0; DEVICE_LEN];
    device.copy_from_slice(&hash.finalize()[..DEVICE_LEN]);
    device
}

pub(crate) fn device_id(device: &[u8; DEVICE_LEN]) -> String {
    URL_SAFE_NO_PAD.encode(device)
}

/// What the revocations name a user by: 16 base64url characters of a hash of the user id.
pub(crate) fn user_hash(user: &str) -> String {
    let hash = Sha256::new().chain_update(b"stateless user\0").chain_update(user).finalize();
    URL_SAFE_NO_PAD.encode(&hash[..12])
}

/// Now on this process's clock, ms since the Unix epoch: cookies are issued and checked by the
/// processes' clocks (hence the clock skew).
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

// A poisoned lock only means a panic elsewhere while it was held; the maps are still valid.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(5);

    #[test]
    fn a_revoked_device_or_a_session_begun_before_the_users_not_before_is_refused() {
        let mirror = Mirror::new();
        assert_eq!(mirror.check("dev1", None, 10, BOUND), Verdict::Stale(0));
        mirror.current_at(Instant::now());
        assert_eq!(mirror.check("dev1", None, 10, BOUND), Verdict::Valid);
        mirror.apply("t:dev1", 1_000);
        mirror.apply("u:hash:500", 2_000);
        mirror.apply("u:hash:400", 2_500); // an older "not before" keeps the later one
        mirror.apply("x:from a newer version", 9);
        assert_eq!(mirror.check("dev1", None, 10, BOUND), Verdict::Revoked);
        assert_eq!(mirror.check("dev2", Some("hash"), 499, BOUND), Verdict::Revoked);
        assert_eq!(mirror.check("dev2", Some("hash"), 500, BOUND), Verdict::Valid);
        assert_eq!(mirror.check("dev2", Some("other"), 10, BOUND), Verdict::Valid);
        mirror.prune(1_000);
        assert_eq!(mirror.len(), (0, 1));
        mirror.prune(2_500);
        assert_eq!(mirror.len(), (0, 0));
    }
}
