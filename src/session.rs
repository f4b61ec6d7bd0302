//! A loaded session: its attributes, what changed since it was loaded, and its metadata.
//!
//! A [`Session`] is plain data; the [`SessionStore`](crate::SessionStore) reads and writes it.
//! Values stay MessagePack bytes, read in place from the packed record or a loose field (see
//! `packed.rs`), until [`Session::get`] asks for one, and every [`insert`](Session::insert) and
//! [`remove`](Session::remove) is remembered by name, so a save sends only those attributes: two
//! requests that change different attributes never overwrite each other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::packed::{Packed, LOOSE_MAX, MAX_NAME_BYTES};
use crate::token::Token;

/// In a view of a partial load sent to the save script: the attribute was not set (`META`
/// alone is never valid MessagePack, so no stored value can equal it).
const NOT_SET: &[u8] = &[crate::format::META];

/// What Redis told us about a session besides its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// When the session was created, ms since the Unix epoch (Redis server clock).
    pub created_ms: i64,
    /// When the session dies whatever happens (absolute timeout), ms since the Unix epoch.
    pub deadline_ms: i64,
    /// Time to live when loaded, ms.
    pub ttl_ms: i64,
    /// The session's own idle timeout, ms, when it was given timeouts of its own
    /// ([`Timeouts`](crate::Timeouts)); `None` when the store's apply.
    pub idle_timeout_ms: Option<i64>,
    /// The touch threshold that goes with the session's own idle timeout.
    pub(crate) touch_after_ms: Option<u64>,
}

/// One user's session.
pub struct Session {
    token: Token,
    pub(crate) key: String,
    /// The attributes as of the last compaction.
    packed: Packed,
    /// Newer than `packed`: loose fields read from Redis and changes made here; `None` is a
    /// removed attribute.
    loose: BTreeMap<String, Option<Vec<u8>>>,
    changed: BTreeSet<String>,
    pub(crate) meta: Metadata,
    /// The id of the packed record (in its header): 0 for a new session's, then a random
    /// number drawn by each compaction, so that it never repeats.
    record_id: u32,
    /// The loose fields as loaded (or last saved) of the names changed since: with the rest
    /// of `loose`, the view a checked save or a compaction shows the script, which writes
    /// only if Redis still holds it. `None` is a tombstone.
    before: BTreeMap<String, Option<Vec<u8>>>,
    pub(crate) flash: Vec<u8>,
    /// Flash messages were pending when the session was loaded (and left in Redis).
    pub(crate) flash_pending: bool,
    limits: Limits,
    /// The attributes read, when the load read only some (`load_only`).
    only: Option<Vec<String>>,
    /// Set when a save found that another request had compacted the session since this view
    /// was loaded: the view's record is then out of date, so it must not be folded into a new
    /// one. Only a save that read the record can find it (a plain delta does not); the script
    /// refuses a compaction or checked save from an out-of-date view either way.
    stale: bool,
}

impl Session {
    pub(crate) fn new(token: Token, key: String, meta: Metadata, limits: Limits) -> Self {
        let (packed, loose, changed) = (Packed::default(), BTreeMap::new(), BTreeSet::new());
        let (flash, only, stale) = (Vec::new(), None, false);
        let (flash_pending, record_id, before) = (false, 0, BTreeMap::new());
        Session {
            token,
            key,
            packed,
            loose,
            changed,
            meta,
            record_id,
            before,
            flash,
            flash_pending,
            limits,
            only,
            stale,
        }
    }

    /// Sets the attributes as loaded: the packed record and the loose fields.
    pub(crate) fn with_attributes(
        mut self,
        packed: Packed,
        loose: BTreeMap<String, Option<Vec<u8>>>,
    ) -> Self {
        self.record_id = packed.record_id();
        (self.packed, self.loose) = (packed, loose);
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

    /// A short name for this session in logs: 8 characters of the key's hash, the same as its
    /// Debug output shows. It cannot open the session, so it is safe to log; the token is not.
    ///
    /// ```
    /// # async fn demo(store: redis_sessions::SessionStore) -> redis_sessions::Result<()> {
    /// let session = store.create().await?;
    /// tracing::info!(session = %session.fingerprint(), "logged in");
    /// # Ok(()) }
    /// ```
    #[doc(alias = "id")]
    #[doc(alias = "session_id")]
    pub fn fingerprint(&self) -> String {
        crate::keys::fingerprint(&self.token)
    }

    /// Created, deadline and TTL as last seen in Redis.
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
        let value = self.known_value(name).ok_or_else(|| Error::NotLoaded(name.to_owned()))?;
        value.map(|bytes| codec::decode(name, bytes)).transpose()
    }

    /// The stored bytes of `name`: a loose field wins over the packed record.
    fn value(&self, name: &str) -> Option<&[u8]> {
        match self.loose.get(name) {
            Some(value) => value.as_deref(),
            None => self.packed.get(name),
        }
    }

    /// False for a name a partial load did not read.
    fn is_loaded(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|n| n == name))
    }

    /// Sets attribute `name` (written by the next save).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for an empty name, one starting with `@` (reserved) or one
    /// over 65,535 bytes;
    /// [`Error::Encode`] when `value` cannot be encoded; [`Error::TooLarge`] when the value,
    /// the session or the attribute count would exceed the limits. On error nothing changes.
    pub fn insert<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<()> {
        check_name(name)?;
        let bytes = codec::encode(name, value)?;
        self.limits.check_value(bytes.len())?;
        let before = self.size();
        let current = self.known_value(name);
        let old = current.flatten().map(|old| old.len() + name.len());
        let added = usize::from(old.is_none());
        let after = (before.0 - old.unwrap_or(0) + name.len() + bytes.len(), before.1 + added);
        self.limits.check_growth(before, after)?;
        if current != Some(Some(&bytes[..])) {
            self.change(name, Some(bytes));
        }
        Ok(())
    }

    /// Removes attribute `name` (deleted by the next save) and returns its value, decoded;
    /// `Ok(None)` when it was not set. [`delete`](Self::delete) removes without decoding.
    ///
    /// ```
    /// # fn demo(session: &mut redis_sessions::Session) -> redis_sessions::Result<()> {
    /// session.insert("return_to", "/cart")?;
    /// let next: Option<String> = session.remove("return_to")?;
    /// assert_eq!(next.as_deref(), Some("/cart"));
    /// assert_eq!(session.remove::<String>("return_to")?, None);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the stored value is not a `T`; [`Error::NotLoaded`] when the
    /// session came from [`load_only`](crate::SessionStore::load_only) without `name` (its
    /// value is not known here: `delete` removes it anyway). On error nothing changes.
    #[doc(alias = "take")]
    pub fn remove<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>> {
        let old = self.get(name)?;
        self.delete(name);
        Ok(old)
    }

    /// Removes attribute `name` (deleted by the next save) without decoding it; true when it
    /// was set.
    ///
    /// After a partial load, a name it did not read is deleted whether or not it was set, and
    /// the result is false. A name no attribute can have (empty, starting with `@`, or over
    /// 65,535 bytes) is never set: false, and nothing changes.
    pub fn delete(&mut self, name: &str) -> bool {
        if check_name(name).is_err() {
            return false; // not an attribute: `@p` or `@f` must never be deleted from here
        }
        let set = self.known_value(name).map(|value| value.is_some());
        if set != Some(false) {
            self.change(name, None);
        }
        set == Some(true)
    }

    /// Removes every attribute (deleted by the next save); the session itself, its token and
    /// its pending flash messages stay. After a partial load, only the attributes it read or
    /// that were inserted since.
    ///
    /// ```
    /// # fn demo(session: &mut redis_sessions::Session) -> redis_sessions::Result<()> {
    /// session.insert("cart", &["book"])?;
    /// session.clear();
    /// assert!(session.is_empty());
    /// # Ok(()) }
    /// ```
    #[doc(alias = "flush")]
    pub fn clear(&mut self) {
        let names: Vec<String> = self.names().map(str::to_owned).collect();
        for name in names {
            self.delete(&name);
        }
    }

    /// True when no attribute is set (after a partial load: none it read or inserted since).
    pub fn is_empty(&self) -> bool {
        self.names().next().is_none()
    }

    /// Records a change to `name`, keeping the loaded loose field it replaces for the view.
    fn change(&mut self, name: &str, value: Option<Vec<u8>>) {
        let first = self.changed.insert(name.to_owned());
        if let Some(old) = self.loose.insert(name.to_owned(), value) {
            if first {
                self.before.insert(name.to_owned(), old);
            }
        }
    }

    /// The stored bytes of `name` as far as this session knows: `None` for a name a partial
    /// load did not read (the packed record may be out of date for it).
    fn known_value(&self, name: &str) -> Option<Option<&[u8]>> {
        (self.changed.contains(name) || self.is_loaded(name)).then(|| self.value(name))
    }

    /// Names of the attributes set, in no particular order (after a partial load, only those
    /// it read or that were inserted since).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let names = self.attributes().map(|(name, _)| name);
        names.filter(|name| self.changed.contains(*name) || self.is_loaded(name))
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

    /// Bytes of all names and values, as the session limit counts them, and the attribute
    /// count. A partial load counts what it holds.
    fn size(&self) -> (usize, usize) {
        let attributes = self.attributes();
        attributes.fold((0, 0), |(bytes, count), (name, value)| {
            (bytes + name.len() + value.len(), count + 1)
        })
    }

    /// Every attribute set, with its bytes.
    fn attributes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let packed = self.packed.iter().filter(|(name, _)| !self.loose.contains_key(*name));
        let loose = self.loose.iter().filter_map(|(n, v)| Some((n.as_str(), v.as_deref()?)));
        packed.chain(loose)
    }

    /// The pending delta: values to set, names to delete.
    pub(crate) fn delta(&self) -> (Vec<(&str, &[u8])>, Vec<&str>) {
        let mut set = Vec::new();
        let mut deleted = Vec::new();
        for name in &self.changed {
            match self.loose.get(name) {
                Some(Some(value)) => set.push((name.as_str(), value.as_slice())),
                _ => deleted.push(name.as_str()),
            }
        }
        (set, deleted)
    }

    /// The whole session as a new packed record, when this save should compact: the session
    /// was loaded whole, and the save would leave more than [`LOOSE_MAX`] loose fields or must
    /// remove an attribute that sits in the record (which a loose field could only hide).
    pub(crate) fn compaction(&self) -> Option<Vec<u8>> {
        // The cheap checks first: most saves stop here, without scanning the record.
        if self.only.is_some() || self.stale {
            return None;
        }
        let due = self.loose.len() > LOOSE_MAX
            || self.changed.iter().any(|name| {
                matches!(self.loose.get(name), Some(None)) && self.packed.get(name).is_some()
            });
        let packable = || self.attributes().all(|(name, _)| name.len() <= MAX_NAME_BYTES);
        (due && packable()).then(|| {
            let times = (self.meta.created_ms, self.meta.deadline_ms);
            Packed::encode(times, fresh_id(self.record_id), self.attributes())
        })
    }

    /// The id of the packed record this view holds, for the save script to compare;
    /// `None` once a save found it out of date.
    pub(crate) fn view_record_id(&self) -> Option<u32> {
        (!self.stale).then_some(self.record_id)
    }

    /// What this session read, for a checked save or a compaction to compare with what Redis
    /// holds. Loaded whole: the loose fields as loaded or last saved (an empty value for a
    /// tombstone), which with the record's id pin down the whole session. Loaded in part: each
    /// name it read with the value it read, or [`NOT_SET`].
    pub(crate) fn view(&self) -> Vec<(&str, &[u8])> {
        let Some(only) = &self.only else {
            let unchanged = self.loose.iter().filter(|(name, _)| !self.changed.contains(*name));
            let loaded = unchanged.chain(&self.before);
            return loaded
                .map(|(name, value)| (name.as_str(), value.as_deref().unwrap_or(b"")))
                .collect();
        };
        // A reserved name (`@p`, `@f`) is never an attribute: nothing to compare.
        let attributes = only.iter().filter(|name| check_name(name).is_ok());
        attributes.map(|name| (name.as_str(), self.read_value(name).unwrap_or(NOT_SET))).collect()
    }

    /// The value `name` had when this session read or last saved it, before any change since.
    fn read_value(&self, name: &str) -> Option<&[u8]> {
        match self.before.get(name) {
            Some(loose) => loose.as_deref(), // it was a loose field (`None`: removed)
            None if self.changed.contains(name) => self.packed.get(name),
            None => self.value(name),
        }
    }

    /// True when this session was loaded whole (not by `load_only`).
    pub(crate) fn is_whole(&self) -> bool {
        self.only.is_none()
    }

    /// Marks the changes as written, with the stored record's id when the save read it;
    /// `packed` is the record they were folded into, when the save compacted. The saved
    /// changes are now the view.
    pub(crate) fn saved(&mut self, record_id: Option<u32>, packed: Option<Vec<u8>>) {
        // A delta leaves the record's id alone: a new one means another request compacted.
        // When the save did not read the record, one may have: the next compaction or checked
        // save sends the id, and the script refuses a view of another record.
        if let Some(record_id) = record_id {
            self.stale |= packed.is_none() && record_id != self.record_id;
            self.record_id = record_id;
        }
        if let Some(bytes) = packed {
            (self.packed, self.loose) = (Packed::encoded(bytes), BTreeMap::new());
        }
        // As the script did: a removed name the record cannot hold was deleted, not tombstoned.
        for name in &self.changed {
            if matches!(self.loose.get(name), Some(None)) && !self.packed.may_hold(name) {
                self.loose.remove(name);
            }
        }
        self.changed.clear();
        self.before.clear();
    }

    /// Moves the session to a new token (after regenerate).
    pub(crate) fn rekey(&mut self, token: Token, key: String) {
        self.token = token;
        self.key = key;
    }
}

/// A record id other than `old`, for a compaction: random, so that an id never repeats even when
/// a failover or a restore loses a compaction (a counter would count up to the lost id again).
fn fresh_id(old: u32) -> u32 {
    let mut id = old;
    while id == old {
        let mut bytes = [0; 4];
        // The OS's random source failing is no reason to fail a save: any other id will do.
        id =
            getrandom::fill(&mut bytes).map_or(old.wrapping_add(1), |()| u32::from_ne_bytes(bytes));
    }
    id
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('@') || name.len() > MAX_NAME_BYTES {
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
