//! Encryption keys as configuration names them (inline base64, a file, an environment
//! variable), and the key ring they make.
//!
//! A key is read once, when the store is built: a missing file or variable, or text that is not
//! 32 bytes of base64, fails there with [`Error::Config`] naming the key's id and where it was
//! to come from, never its content. Debug output of the configuration shows a key's id and
//! source (a path, a variable's name) and redacts inline keys.

use std::fmt;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hkdf;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The bytes of a key: AES-256.
pub(crate) const KEY_BYTES: usize = 32;

/// Encryption at rest: the keys that seal attribute values and flash messages (see the crate
/// docs' "Encryption at rest").
///
/// ```
/// use redis_sessions::{Config, Encryption, EncryptionKey};
///
/// // `head -c 32 /dev/urandom | base64` makes a key.
/// let config = Config::from_url("redis://127.0.0.1:6379").with_encryption(
///     Encryption::new(EncryptionKey::env(2, "SESSION_KEY_2"))
///         .with_key(EncryptionKey::file(1, "/run/secrets/session_key_1")),
/// );
/// assert_eq!(config.encryption.map(|e| e.current), Some(2));
/// ```
///
/// In a config file (serde):
///
/// ```
/// let config: redis_sessions::Config = serde_json::from_str(r#"{
///     "encryption": {
///         "current": 2,
///         "keys": [
///             { "id": 2, "source": { "env": "SESSION_KEY_2" } },
///             { "id": 1, "source": { "file": "/run/secrets/session_key_1" } }
///         ]
///     }
/// }"#).unwrap();
/// assert_eq!(config.encryption.map(|e| e.keys.len()), Some(2));
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Encryption {
    /// Every key a stored value may be sealed under, each with its id. Rotation adds a key and
    /// makes it current; the old one stays until nothing sealed under it remains
    /// ([`SessionStore::key_usage`](crate::SessionStore::key_usage) tells).
    pub keys: Vec<EncryptionKey>,
    /// The id of the key new seals use.
    pub current: u16,
    /// Open values stored without encryption (sessions from before it was turned on) instead of
    /// refusing them; a save seals them. Default false: turn it on while enabling encryption
    /// on a running service, and off once the key usage scan counts no unsealed value.
    #[serde(default)]
    pub accept_unsealed: bool,
}

impl Encryption {
    /// Encryption with `current` as its only key, which new seals use.
    pub fn new(current: EncryptionKey) -> Self {
        Encryption { current: current.id, keys: vec![current], accept_unsealed: false }
    }

    /// Adds a key that still opens what it sealed (an older one, during a rotation). Default:
    /// only the current key.
    ///
    /// ```
    /// use redis_sessions::{Encryption, EncryptionKey};
    /// let encryption = Encryption::new(EncryptionKey::env(2, "SESSION_KEY_2"))
    ///     .with_key(EncryptionKey::env(1, "SESSION_KEY_1"));
    /// assert_eq!((encryption.current, encryption.keys.len()), (2, 2));
    /// ```
    pub fn with_key(mut self, key: EncryptionKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Opens unsealed values instead of refusing them (see the field). Default false.
    ///
    /// ```
    /// use redis_sessions::{Encryption, EncryptionKey};
    /// let key = EncryptionKey::env(1, "SESSION_KEY");
    /// let migrating = Encryption::new(key).with_accept_unsealed(true);
    /// assert!(migrating.accept_unsealed);
    /// ```
    pub fn with_accept_unsealed(mut self, accept: bool) -> Self {
        self.accept_unsealed = accept;
        self
    }
}

/// One key of the ring: its id (stored in clear beside every value it seals) and where its 32
/// bytes come from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EncryptionKey {
    /// The key's id, 0 to 65,535. Never reuse the id of a retired key: values it sealed would
    /// then fail to open as tampered rather than as sealed under a missing key.
    pub id: u16,
    /// Where the key's bytes are.
    pub source: KeySource,
}

impl EncryptionKey {
    /// A key given inline, as base64 of its 32 bytes.
    pub fn base64(id: u16, text: impl Into<String>) -> Self {
        EncryptionKey { id, source: KeySource::Base64(text.into()) }
    }

    /// A key read from a file that holds it as base64 (surrounding whitespace ignored).
    pub fn file(id: u16, path: impl Into<PathBuf>) -> Self {
        EncryptionKey { id, source: KeySource::File(path.into()) }
    }

    /// A key read from an environment variable that holds it as base64.
    pub fn env(id: u16, variable: impl Into<String>) -> Self {
        EncryptionKey { id, source: KeySource::Env(variable.into()) }
    }

    /// A key given as its bytes.
    pub fn from_bytes(id: u16, bytes: [u8; KEY_BYTES]) -> Self {
        EncryptionKey::base64(id, STANDARD.encode(bytes))
    }

    /// The key's bytes.
    fn load(&self) -> Result<[u8; KEY_BYTES]> {
        let id = self.id;
        let fail = |why: String| Error::Config(format!("encryption key {id}: {why}"));
        let text = match &self.source {
            KeySource::Base64(text) => text.clone(),
            KeySource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| fail(format!("cannot read {}: {}", path.display(), e.kind())))?,
            KeySource::Env(name) => std::env::var(name)
                .map_err(|_| fail(format!("the environment variable {name} is not set")))?,
        };
        let bytes = STANDARD.decode(text.trim()).map_err(|_| fail("is not base64".into()))?;
        bytes.try_into().map_err(|_| fail(format!("is not {KEY_BYTES} bytes")))
    }
}

/// Where a key's bytes come from. Serde: `{"base64": "..."}`, `{"file": "/path"}` or
/// `{"env": "VARIABLE"}`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeySource {
    /// The key inline, as base64 (redacted in Debug output).
    Base64(String),
    /// A file holding the key as base64.
    File(PathBuf),
    /// An environment variable holding the key as base64.
    Env(String),
}

impl fmt::Debug for KeySource {
    /// Shows where the key is, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Base64(_) => f.write_str("Base64(<redacted>)"),
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
            KeySource::Env(name) => f.debug_tuple("Env").field(name).finish(),
        }
    }
}

/// One loaded key: what seals and opens derive from it.
pub(crate) struct RingKey {
    pub(crate) id: u16,
    /// The key as HKDF's pseudorandom key: each epoch's key is expanded from it (sealer.rs).
    pub(crate) prk: hkdf::Prk,
}

/// The loaded keys and which one seals.
pub(crate) struct KeyRing {
    keys: Vec<RingKey>,
    current: usize,
}

impl KeyRing {
    /// Loads every key of `encryption`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a key that cannot be read or is not 32 bytes, two keys with one
    /// id, or a current id with no key.
    pub(crate) fn load(encryption: &Encryption) -> Result<KeyRing> {
        let mut keys: Vec<RingKey> = Vec::with_capacity(encryption.keys.len());
        for key in &encryption.keys {
            if keys.iter().any(|k| k.id == key.id) {
                return Err(Error::Config(format!("encryption key {} is given twice", key.id)));
            }
            let bytes = key.load()?;
            let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &bytes);
            keys.push(RingKey { id: key.id, prk });
        }
        let current = keys.iter().position(|k| k.id == encryption.current).ok_or_else(|| {
            Error::Config(format!("encryption.current is {}, which no key has", encryption.current))
        })?;
        Ok(KeyRing { keys, current })
    }

    /// The key new seals use.
    pub(crate) fn current(&self) -> &RingKey {
        &self.keys[self.current]
    }

    /// The key with `id`, if the ring has it.
    pub(crate) fn get(&self, id: u16) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_loads_from_each_source_and_errors_name_the_key_not_its_content() {
        let bytes = [7u8; KEY_BYTES];
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{}\n", STANDARD.encode(bytes))).expect("write key");
        assert_eq!(EncryptionKey::file(1, &path).load().expect("file"), bytes);
        assert_eq!(EncryptionKey::from_bytes(2, bytes).load().expect("inline"), bytes);
        let short = EncryptionKey::base64(3, "c2VjcmV0LWtleQ==").load().expect_err("short");
        assert_eq!(short.to_string(), "invalid configuration: encryption key 3: is not 32 bytes");
        let missing = EncryptionKey::env(4, "REDIS_SESSIONS_NO_SUCH_VARIABLE").load();
        assert!(missing.expect_err("unset").to_string().contains("NO_SUCH_VARIABLE is not set"));
        let debug = format!("{:?}", EncryptionKey::from_bytes(5, bytes));
        assert!(debug.contains("<redacted>") && !debug.contains(&STANDARD.encode(bytes)));
    }

    #[test]
    fn the_ring_refuses_duplicate_ids_and_a_current_id_without_a_key() {
        let key = |id| EncryptionKey::from_bytes(id, [id as u8; KEY_BYTES]);
        let twice = Encryption::new(key(1)).with_key(key(1));
        assert!(KeyRing::load(&twice).is_err());
        let mut no_current = Encryption::new(key(1));
        no_current.current = 9;
        assert!(KeyRing::load(&no_current).is_err());
        let ring = KeyRing::load(&Encryption::new(key(2)).with_key(key(1))).expect("valid");
        assert_eq!((ring.current().id, ring.get(1).map(|k| k.id)), (2, Some(1)));
    }
}
