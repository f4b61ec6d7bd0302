//! A session's seals: the key its values are sealed under, derived for the session's Redis key.
//!
//! Why the Redis key: it names this session and no other, so a value copied to another session,
//! or a whole hash copied under another key, opens under no key of that session. A regenerate
//! moves the session to a new key, so it seals every value anew for that key in the same script
//! that moves it (regenerate.lua, store/regenerate.rs): nothing stays sealed for a key the
//! session has left, where a writer could copy it back.

use std::sync::{Arc, OnceLock};

use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};

use crate::error::Unseal;
use crate::seal::keys::RingKey;
use crate::seal::sealer::Sealer;

/// The seals of one session.
pub(crate) struct Binding {
    pub(crate) sealer: Arc<Sealer>,
    /// The session's Redis key, which its value keys derive from.
    key: String,
    /// The value key under the current key of the ring, derived on first use.
    current: OnceLock<Option<LessSafeKey>>,
}

impl Binding {
    /// The seals of the session under `key`.
    pub(crate) fn new(sealer: Arc<Sealer>, key: &str) -> Binding {
        Binding { sealer, key: key.to_owned(), current: OnceLock::new() }
    }

    /// The seals of the same store for the session's new key `key`, after a regenerate.
    pub(crate) fn for_key(&self, key: &str) -> Binding {
        Binding::new(Arc::clone(&self.sealer), key)
    }

    /// The value key of this session under `ring_key`: HKDF-SHA256 expands the ring's key with
    /// the session's Redis key.
    pub(crate) fn value_key(&self, ring_key: &RingKey) -> Option<LessSafeKey> {
        let info = [b"redis-sessions value v1".as_slice(), self.key.as_bytes()];
        let okm = ring_key.prk.expand(&info, &AES_256_GCM).ok()?;
        Some(LessSafeKey::new(UnboundKey::from(okm)))
    }

    /// The value key under the ring's current key.
    pub(crate) fn current_key(&self) -> Result<&LessSafeKey, Unseal> {
        let current = self.current.get_or_init(|| self.value_key(self.sealer.ring.current()));
        current.as_ref().ok_or(Unseal::Malformed)
    }
}
