//! What stateless sessions keep in Redis, through the store's pool: the revocations
//! (revocation.lua, and the read of the whole set a process mirrors), and each user's list of
//! stateless sessions (cookie_devices.lua). A request that only reads its session sends none of
//! these: a login, a logout and a revoke do.

use redis::Value;

use crate::connection::scripts::SCRIPTS;
use crate::error::{Error, Result};
use crate::format::bound;
use crate::seal::{self, binding::Binding};
use crate::SessionStore;

/// How many revocations one command of the full read reads.
const PAGE: usize = 5000;

/// The associated data's letter of a sealed label in a user's list of stateless sessions.
const LISTED: u8 = b'l';

/// One entry of a user's list of stateless sessions.
pub(crate) struct Listed {
    pub(crate) device: String,
    pub(crate) created_ms: i64,
    pub(crate) ends_ms: i64,
    pub(crate) label: String,
}

impl SessionStore {
    /// The key of the revocations, which is also the name of the channel that announces them.
    pub(crate) fn revocations_key(&self) -> String {
        format!("{}stateless:revoked", self.core.config.key_prefix)
    }

    /// The seals of a stateless session's cookie (`name`: the session's id); `None` without
    /// encryption.
    pub(crate) fn cookie_binding(&self, name: &str) -> Option<Binding> {
        self.core.binding(&format!("stateless:{name}"))
    }

    /// Adds `t:<device>` to the revocations, until `until_ms`, and announces it.
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub(crate) async fn revoke_cookie_device(&self, device: &str, until_ms: i64) -> Result<()> {
        let key = self.revocations_key();
        let mut call = SCRIPTS.revocation.call(&[&key]);
        call.arg(format!("t:{device}")).arg(until_ms).arg(&key).arg("");
        self.core.run::<i64>(&call).await.map(drop)
    }

    /// Revokes every stateless session of the user hashed `user` that began before now on the
    /// server's clock, for `lifetime_ms` from now, and announces it; returns that "not before".
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub(crate) async fn revoke_cookie_user(&self, user: &str, lifetime_ms: i64) -> Result<i64> {
        let key = self.revocations_key();
        let mut call = SCRIPTS.revocation.call(&[&key]);
        call.arg(format!("u:{user}:")).arg(lifetime_ms).arg(&key).arg("now");
        self.core.run(&call).await
    }

    /// Publishes `beat` on `channel` from the server that publishes the revocations.
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub(crate) async fn heartbeat(&self, channel: &str, beat: u64) -> Result<()> {
        let key = self.revocations_key();
        let mut call = SCRIPTS.heartbeat.call(&[&key]);
        call.arg(channel).arg(beat);
        self.core.run::<i64>(&call).await.map(drop)
    }

    /// Every revocation Redis holds, member and score, read in pages of [`PAGE`] by score
    /// (each page one command well within the command timeout, however large the set grows;
    /// members that go meanwhile do not shift the pages, as offsets would).
    ///
    /// # Errors
    ///
    /// Redis errors; [`Error::Corrupt`] when the key holds something else.
    pub(crate) async fn read_revocations(&self) -> Result<Vec<(String, i64)>> {
        let key = self.revocations_key();
        let (mut all, mut from, mut seen_at_from) = (Vec::new(), i64::MIN, 0usize);
        loop {
            let mut command = redis::cmd("ZRANGEBYSCORE");
            let min = if from == i64::MIN { "-inf".to_owned() } else { from.to_string() };
            command.arg(&key).arg(min).arg("+inf").arg("WITHSCORES");
            command.arg("LIMIT").arg(seen_at_from).arg(PAGE);
            let page: Vec<(String, f64)> = match self.core.read_one(&command).await? {
                Value::Nil => Vec::new(),
                value => redis::from_redis_value(value)
                    .map_err(|_| Error::Corrupt("the revocations are not a sorted set".into()))?,
            };
            let full = page.len() == PAGE;
            for (member, score) in page {
                let score = score as i64;
                // The next page starts at the last score, past the members already read there.
                seen_at_from = if score == from { seen_at_from + 1 } else { 1 };
                from = score;
                all.push((member, score));
            }
            if !full {
                return Ok(all);
            }
        }
    }

    fn cookie_devices_key(&self, user: &str) -> String {
        format!("{}:stateless", bound::index_key(&self.core.config, user))
    }

    /// Lists the stateless session `entry` under `user`; its start is `entry.created_ms`, or,
    /// when that is `None`, the server's time, which is returned.
    ///
    /// # Errors
    ///
    /// Redis errors; [`Error::Unseal`] when the label cannot be sealed.
    pub(crate) async fn list_cookie_device(
        &self,
        user: &str,
        entry: &Listed,
        start_ms: Option<i64>,
    ) -> Result<i64> {
        let key = self.cookie_devices_key(user);
        let value = self.entry_without_start(&key, entry)?;
        let start = start_ms.map_or(String::new(), |ms| ms.to_string());
        let mut call = SCRIPTS.cookie_devices.call(&[&key]);
        call.arg("add").arg(&entry.device).arg(value).arg(entry.ends_ms).arg(start);
        self.core.run(&call).await
    }

    /// `'<ends ms> <label>'`, the label sealed under encryption.
    fn entry_without_start(&self, key: &str, entry: &Listed) -> Result<Vec<u8>> {
        let binding = self.core.binding(key);
        let label = seal::seal_meta(binding.as_ref(), LISTED, entry.label.as_bytes().to_vec())?;
        let mut value = format!("{} ", entry.ends_ms).into_bytes();
        value.extend(label);
        Ok(value)
    }

    /// Removes `devices` from `user`'s list; how many were there.
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub(crate) async fn unlist_cookie_devices(&self, user: &str, devices: &[&str]) -> Result<u64> {
        let key = self.cookie_devices_key(user);
        let mut call = SCRIPTS.cookie_devices.call(&[&key]);
        call.arg("remove").arg(devices);
        self.core.run(&call).await
    }

    /// Removes every entry of `user`'s list that began before `not_before` but `keep`'s, which
    /// is written anew when given; how many went.
    ///
    /// # Errors
    ///
    /// Redis errors; [`Error::Unseal`] when the label cannot be sealed.
    pub(crate) async fn unlist_cookie_devices_but(
        &self,
        user: &str,
        keep: Option<&Listed>,
        not_before: i64,
    ) -> Result<u64> {
        let key = self.cookie_devices_key(user);
        let (device, value) = match keep {
            Some(entry) => {
                let mut value = format!("{} ", entry.created_ms).into_bytes();
                value.extend(self.entry_without_start(&key, entry)?);
                (entry.device.as_str(), value)
            }
            None => ("", Vec::new()),
        };
        let mut call = SCRIPTS.cookie_devices.call(&[&key]);
        call.arg("keep").arg(device).arg(value).arg(not_before);
        self.core.run(&call).await
    }

    /// `user`'s list of stateless sessions, as stored (ended ones included); entries that do
    /// not parse are left out.
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub(crate) async fn cookie_devices(&self, user: &str) -> Result<Vec<Listed>> {
        let key = self.cookie_devices_key(user);
        let mut command = redis::cmd("HGETALL");
        command.arg(&key);
        let pairs: Vec<(String, Vec<u8>)> = match self.core.read_one(&command).await? {
            Value::Nil => Vec::new(),
            value => redis::from_redis_value(value)
                .map_err(|_| Error::Corrupt("a user's list is not a hash".into()))?,
        };
        let binding = self.core.binding(&key);
        let parse = |(device, value): (String, Vec<u8>)| {
            let mut parts = value.splitn(3, |b| *b == b' ');
            let mut number = || std::str::from_utf8(parts.next()?).ok()?.parse::<i64>().ok();
            let (created_ms, ends_ms) = (number()?, number()?);
            let label = seal::open_meta(binding.as_ref(), LISTED, parts.next()?)?;
            let label = String::from_utf8_lossy(&label).into_owned();
            Some(Listed { device, created_ms, ends_ms, label })
        };
        Ok(pairs.into_iter().filter_map(parse).collect())
    }
}
