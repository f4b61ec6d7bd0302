//! A session's seals: the store's keys, and the session's Redis key, which the associated data
//! of each of its values names.
//!
//! Why the Redis key: it names this session and no other, so a value copied to another session,
//! or a whole hash copied under another key, does not authenticate there. A regenerate moves
//! the session to a new key, so it seals every value anew for that key in the same script that
//! moves it (regenerate.lua, moved.rs): nothing stays sealed for a key the session has left,
//! where a writer could copy it back.

use std::sync::Arc;

use crate::seal::sealer::Sealer;

/// The seals of one session.
pub(crate) struct Binding {
    pub(crate) sealer: Arc<Sealer>,
    /// The session's Redis key.
    pub(crate) key: String,
}

impl Binding {
    /// The seals of the session under `key`.
    pub(crate) fn new(sealer: Arc<Sealer>, key: &str) -> Binding {
        Binding { sealer, key: key.to_owned() }
    }

    /// The seals of the same store for the session's new key `key`, after a regenerate.
    pub(crate) fn for_key(&self, key: &str) -> Binding {
        Binding::new(Arc::clone(&self.sealer), key)
    }

    /// The associated data of a value of this session: `kind` (`a` for an attribute, `f` for
    /// the flash queue), the session's key with its length (u16), then `name`.
    pub(crate) fn aad(&self, kind: u8, name: &str) -> Vec<u8> {
        let key = self.key.as_bytes();
        let len = u16::try_from(key.len()).unwrap_or(u16::MAX).to_be_bytes();
        let mut aad = Vec::with_capacity(3 + key.len() + name.len());
        aad.push(kind);
        aad.extend_from_slice(&len);
        aad.extend_from_slice(key);
        aad.extend_from_slice(name.as_bytes());
        aad
    }
}
