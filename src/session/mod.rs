//! A loaded session: its attributes, what changed since it was loaded, and its metadata.
//!
//! A [`Session`] is plain data; the [`SessionStore`](crate::SessionStore) reads and writes it.
//! Values stay MessagePack bytes, read in place from the packed record or a loose field (see
//! `packed.rs`), until [`Session::get`] asks for one. What the session read from Redis is kept
//! apart from the changes made since: every [`insert`](Session::insert) and
//! [`remove`](Session::remove) is pending by name, so a save sends only those attributes (two
//! requests that change different attributes never overwrite each other), and what was read is
//! the view a checked save or a compaction shows Redis (`changes.rs`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result, Unseal};
use crate::format::bound::Bound;
use crate::format::codec;
use crate::format::packed::{Packed, MAX_NAME_BYTES};
use crate::limits::Limits;
use crate::seal::{self, binding::Binding};
use crate::token::Token;

mod changes;

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
    /// What this session read from Redis, as of its load or its last save.
    read: Read,
    /// The changes made since, by name (`None` removes the attribute): what a save writes.
    pending: BTreeMap<String, Option<Vec<u8>>>,
    pub(crate) meta: Metadata,
    pub(crate) flash: Vec<u8>,
    /// Flash messages were pending when the session was loaded (and left in Redis).
    pub(crate) flash_pending: bool,
    /// Why popped flash messages were left out of `flash`: they did not open.
    pub(crate) flash_unopened: Option<Unseal>,
    limits: Limits,
    /// The session's seals; `None` without encryption.
    pub(crate) seal: Option<Binding>,
    /// The user the session is bound to, when it is (`SessionStore::login`).
    pub(crate) bound: Option<Bound>,
}

/// What a session read from Redis (or last saved there): the attributes as stored.
#[derive(Default)]
struct Read {
    /// The attributes as of the last compaction.
    packed: Packed,
    /// Newer than `packed`: the loose fields; `None` is a tombstone, a removed attribute.
    loose: BTreeMap<String, Option<Vec<u8>>>,
    /// The id of the packed record (in its header): 0 for a new session's, then a random
    /// number drawn by each compaction, so that it never repeats.
    record_id: u32,
    /// The attributes read, when the load read only some (`load_only`).
    only: Option<Vec<String>>,
    /// Set when a save found that Redis no longer holds this view's record or loose fields
    /// (another request compacted or saved since): the view must not be folded into a new
    /// record. A save that did not read the record cannot tell; the script refuses a
    /// compaction or checked save from an out-of-date view either way.
    stale: bool,
}

impl Session {
    pub(crate) fn new(
        token: Token,
        key: String,
        meta: Metadata,
        limits: Limits,
        seal: Option<Binding>,
    ) -> Self {
        let (read, pending) = (Read::default(), BTreeMap::new());
        let (flash, flash_pending, flash_unopened) = (Vec::new(), false, None);
        Session {
            token,
            key,
            read,
            pending,
            meta,
            flash,
            flash_pending,
            flash_unopened,
            limits,
            seal,
            bound: None,
        }
    }

    /// The changes made since load, by name: what a save writes.
    pub(crate) fn pending_mut(&mut self) -> &mut BTreeMap<String, Option<Vec<u8>>> {
        &mut self.pending
    }

    /// Sets the attributes as loaded: the packed record and the loose fields.
    pub(crate) fn with_attributes(
        mut self,
        packed: Packed,
        loose: BTreeMap<String, Option<Vec<u8>>>,
    ) -> Self {
        self.read.record_id = packed.record_id();
        (self.read.packed, self.read.loose) = (packed, loose);
        self
    }

    /// Every attribute as one packed record (a stateless session's cookie carries it).
    #[cfg(feature = "stateless")]
    pub(crate) fn packed(&self) -> Vec<u8> {
        let times = (self.meta.created_ms, self.meta.deadline_ms);
        Packed::encode(times, 0, self.attributes())
    }

    /// Marks the session as holding only `names` (a partial load).
    pub(crate) fn loaded_only(mut self, names: &[&str]) -> Self {
        self.read.only = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// The token for the cookie. Its Debug output is redacted.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The user this session is bound to ([`SessionStore::login`](crate::SessionStore::login));
    /// `None` for a session no login bound.
    pub fn user_id(&self) -> Option<&str> {
        self.bound.as_ref().map(|bound| bound.user.as_str())
    }

    /// This session's id in its user's list of sessions
    /// ([`UserSession::id`](crate::UserSession::id)), to mark "this device" or to keep it when
    /// revoking the others; `None` for a session no login bound.
    pub fn device_id(&self) -> Option<String> {
        self.bound.as_ref().map(Bound::device_id)
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
        crate::format::keys::fingerprint(&self.token)
    }

    /// Created, deadline and TTL as last seen in Redis.
    pub fn metadata(&self) -> Metadata {
        self.meta
    }

    /// Decodes attribute `name`; `Ok(None)` when it is not set.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the stored bytes are not a `T`, [`Error::Unseal`] when they are
    /// sealed and do not open; other attributes are unaffected. [`Error::NotLoaded`] when the
    /// session came from [`load_only`](crate::SessionStore::load_only) without `name`, and `name`
    /// was not inserted since.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let value = self.known_value(name).ok_or_else(|| Error::NotLoaded(name.to_owned()))?;
        let open = |bytes| codec::decode(name, &seal::open_value(self.seal.as_ref(), name, bytes)?);
        value.map(open).transpose()
    }

    /// The bytes of `name`: a pending change wins over what was read.
    fn value(&self, name: &str) -> Option<&[u8]> {
        match self.pending.get(name) {
            Some(value) => value.as_deref(),
            None => self.read.value(name),
        }
    }

    /// False for a name a partial load did not read.
    fn is_loaded(&self, name: &str) -> bool {
        self.read.only.as_ref().is_none_or(|only| only.iter().any(|n| n == name))
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
        let plain = codec::encode(name, value)?;
        let current = self.known_value(name);
        // Unchanged when the value opens to the same bytes: a sealed one differs every time.
        let unchanged = current.flatten().is_some_and(|old| {
            seal::open_value(self.seal.as_ref(), name, old).is_ok_and(|old| *old == plain[..])
        });
        let bytes = seal::seal_value(self.seal.as_ref(), name, plain)?;
        self.limits.check_value(bytes.len())?;
        let before = self.size();
        let old = current.flatten().map(|old| old.len() + name.len());
        let added = usize::from(old.is_none());
        let after = (before.0 - old.unwrap_or(0) + name.len() + bytes.len(), before.1 + added);
        self.limits.check_growth(before, after)?;
        if !unchanged {
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

    /// Records a change to `name`, pending until the next save.
    fn change(&mut self, name: &str, value: Option<Vec<u8>>) {
        self.pending.insert(name.to_owned(), value);
    }

    /// The stored bytes of `name` as far as this session knows: `None` for a name a partial
    /// load did not read (the packed record may be out of date for it).
    fn known_value(&self, name: &str) -> Option<Option<&[u8]>> {
        (self.pending.contains_key(name) || self.is_loaded(name)).then(|| self.value(name))
    }

    /// Names of the attributes set, in no particular order (after a partial load, only those
    /// it read or that were inserted since).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let names = self.attributes().map(|(name, _)| name);
        names.filter(|name| self.pending.contains_key(*name) || self.is_loaded(name))
    }

    /// True when there are changes a save would write.
    pub fn is_changed(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes the flash messages popped when this session was loaded with
    /// [`SessionStore::load_and_pop_flash`](crate::SessionStore::load_and_pop_flash).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a message is not a `T`; the messages then stay in the session,
    /// so a retry with the right type still gets them. [`Error::Unseal`] once when popped
    /// messages did not open: they are left out, and the next call returns the others.
    pub fn take_flash<T: DeserializeOwned>(&mut self) -> Result<Vec<T>> {
        if let Some(cause) = self.flash_unopened.take() {
            return Err(Error::Unseal { attribute: "@flash".to_owned(), cause });
        }
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
        let read = self.read.attributes().filter(|(name, _)| !self.pending.contains_key(*name));
        let pending = self.pending.iter().filter_map(|(n, v)| Some((n.as_str(), v.as_deref()?)));
        read.chain(pending)
    }
}

impl Read {
    /// The stored bytes of `name`: a loose field wins over the packed record.
    fn value(&self, name: &str) -> Option<&[u8]> {
        match self.loose.get(name) {
            Some(value) => value.as_deref(),
            None => self.packed.get(name),
        }
    }

    /// Every attribute stored, with its bytes.
    fn attributes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let packed = self.packed.iter().filter(|(name, _)| !self.loose.contains_key(*name));
        let loose = self.loose.iter().filter_map(|(n, v)| Some((n.as_str(), v.as_deref()?)));
        packed.chain(loose)
    }
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
            .field("changed", &self.pending.keys().collect::<Vec<_>>())
            .finish()
    }
}
