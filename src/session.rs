//! A loaded session: its attributes, what changed since it was loaded, and its metadata.
//!
//! A [`Session`] is plain data; the [`SessionStore`](crate::SessionStore) reads and writes it.
//! Values stay MessagePack bytes until [`Session::get`] asks for one, and every
//! [`insert`](Session::insert) and [`remove`](Session::remove) is remembered by name, so a save
//! sends only those attributes: two requests that change different attributes never overwrite
//! each other.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::token::Token;

/// What Redis told us about a session besides its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// When the session was created, ms since the Unix epoch (Redis server clock).
    pub created_ms: i64,
    /// When the session dies whatever happens (absolute timeout), ms since the Unix epoch.
    pub deadline_ms: i64,
    /// Incremented by every save; a version-checked save compares it.
    pub version: u64,
    /// Time to live when loaded, ms.
    pub ttl_ms: i64,
}

/// One user's session.
pub struct Session {
    token: Token,
    pub(crate) key: String,
    values: HashMap<String, Vec<u8>>,
    changed: BTreeSet<String>,
    pub(crate) meta: Metadata,
    pub(crate) flash: Vec<u8>,
    limits: Limits,
    /// The attributes read, when the load read only some (`load_only`).
    only: Option<Vec<String>>,
}

impl Session {
    pub(crate) fn new(token: Token, key: String, meta: Metadata, limits: Limits) -> Self {
        let (values, changed, flash) = (HashMap::new(), BTreeSet::new(), Vec::new());
        Session { token, key, values, changed, meta, flash, limits, only: None }
    }

    pub(crate) fn with_values(mut self, values: HashMap<String, Vec<u8>>) -> Self {
        self.values = values;
        self
    }

    /// Marks the session as holding only `names` (a partial load).
    pub(crate) fn loaded_only(mut self, names: &[&str]) -> Self {
        self.only = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// The token for the cookie. Its Debug output is redacted.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Created, deadline, version and TTL as last seen in Redis.
    pub fn metadata(&self) -> Metadata {
        self.meta
    }

    /// Decodes attribute `name`; `Ok(None)` when it is not set.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the stored bytes are not a `T`; other attributes are unaffected.
    /// [`Error::NotLoaded`] when the session came from
    /// [`load_only`](crate::SessionStore::load_only) without `name`, and `name` was not
    /// inserted since.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let missing = !self.values.contains_key(name) && !self.changed.contains(name);
        if missing && self.only.as_ref().is_some_and(|only| !only.iter().any(|n| n == name)) {
            return Err(Error::NotLoaded(name.to_owned()));
        }
        self.values.get(name).map(|bytes| codec::decode(name, bytes)).transpose()
    }

    /// Sets attribute `name` (written by the next save).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for an empty name or one starting with `@` (reserved);
    /// [`Error::Encode`] when `value` cannot be encoded; [`Error::TooLarge`] when the value,
    /// the session or the attribute count would exceed the limits. On error nothing changes.
    pub fn insert<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<()> {
        check_name(name)?;
        let bytes = codec::encode(name, value)?;
        self.limits.check_value(bytes.len())?;
        let before = (self.byte_size(), self.values.len());
        let old = self.values.get(name).map(|old| old.len() + name.len());
        let added = usize::from(old.is_none());
        let after = (before.0 - old.unwrap_or(0) + name.len() + bytes.len(), before.1 + added);
        self.limits.check_growth(before, after)?;
        if self.values.get(name) != Some(&bytes) {
            self.values.insert(name.to_owned(), bytes);
            self.changed.insert(name.to_owned());
        }
        Ok(())
    }

    /// Removes attribute `name` (deleted by the next save); true when it was set.
    pub fn remove(&mut self, name: &str) -> bool {
        let existed = self.values.remove(name).is_some();
        if existed {
            self.changed.insert(name.to_owned());
        }
        existed
    }

    /// Names of the attributes set, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// True when there are changes a save would write.
    pub fn is_changed(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Takes the flash messages popped when this session was loaded with
    /// [`SessionStore::load_and_pop_flash`](crate::SessionStore::load_and_pop_flash).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a message is not a `T`; the messages then stay in the session,
    /// so a retry with the right type still gets them.
    pub fn take_flash<T: DeserializeOwned>(&mut self) -> Result<Vec<T>> {
        let messages = codec::decode_all("@flash", &self.flash)?;
        self.flash.clear();
        Ok(messages)
    }

    /// Bytes of all names and values, as the session limit counts them.
    fn byte_size(&self) -> usize {
        self.values.iter().map(|(name, value)| name.len() + value.len()).sum()
    }

    /// The pending delta: values to set, names to delete.
    pub(crate) fn delta(&self) -> (Vec<(&str, &[u8])>, Vec<&str>) {
        let mut set = Vec::new();
        let mut deleted = Vec::new();
        for name in &self.changed {
            match self.values.get(name) {
                Some(value) => set.push((name.as_str(), value.as_slice())),
                None => deleted.push(name.as_str()),
            }
        }
        (set, deleted)
    }

    /// Marks the delta as written at `version`.
    pub(crate) fn saved(&mut self, version: u64) {
        self.changed.clear();
        self.meta.version = version;
    }

    /// Moves the session to a new token (after regenerate).
    pub(crate) fn rekey(&mut self, token: Token, key: String) {
        self.token = token;
        self.key = key;
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('@') {
        return Err(Error::InvalidName(name.to_owned()));
    }
    Ok(())
}

impl fmt::Debug for Session {
    /// Shows the token's fingerprint, metadata and attribute names; never the token or values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("Session")
            .field("token", &self.token)
            .field("meta", &self.meta)
            .field("attributes", &names)
            .field("changed", &self.changed)
            .finish()
    }
}
