//! The keys that sign and check stateless sessions' cookies, each named by the key id (`kid`)
//! that a token's header carries, and each pinned to one algorithm.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::signature::KeyPair;

use crate::error::{Error, Result};

/// The shortest HMAC secret [`JwtKey::hs256`] takes: 256 bits, the hash's own size (RFC 7518,
/// 3.2).
pub const MIN_HS256_SECRET: usize = 32;

/// The longest key id, in bytes: it goes in every cookie.
const MAX_KID_BYTES: usize = 64;

/// One key: its id, its algorithm, and what signs and checks with it. Its `Debug` output shows
/// the id and the algorithm, never the key.
///
/// A token is checked only with the key its `kid` names, and only if its `alg` is that key's:
/// a token that names an HMAC algorithm with an Ed25519 key's id (the classic algorithm swap,
/// signing with the public key as the secret) is refused, and so is `alg: none`.
#[derive(Clone)]
pub struct JwtKey {
    kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl JwtKey {
    /// An HMAC-SHA-256 key (`HS256`): every instance that checks cookies can also sign them.
    ///
    /// ```
    /// use redis_sessions::stateless::JwtKey;
    /// let key = JwtKey::hs256("2026-12", &[7u8; 32])?;
    /// assert_eq!(key.algorithm(), "HS256");
    /// assert!(JwtKey::hs256("short", b"too short").is_err());
    /// # Ok::<(), redis_sessions::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `secret` is shorter than [`MIN_HS256_SECRET`] bytes or the key id
    /// is not 1 to 64 printable ASCII characters.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<JwtKey> {
        let kid = checked_kid(kid.into())?;
        if secret.len() < MIN_HS256_SECRET {
            let why =
                format!("key {kid:?}: an HS256 secret needs {MIN_HS256_SECRET} bytes or more");
            return Err(Error::Config(why));
        }
        let bad = |_| Error::Config(format!("key {kid:?}: the HS256 secret was refused"));
        let encoding = EncodingKey::from_secret(secret).map_err(bad)?;
        let decoding = DecodingKey::from_secret(secret).map_err(bad)?;
        Ok(JwtKey { kid, algorithm: Algorithm::HS256, encoding, decoding })
    }

    /// An Ed25519 key (`EdDSA`) from its PKCS#8 DER form (what `openssl genpkey -algorithm
    /// ed25519 -outform DER` writes, or [`generate_ed25519`](Self::generate_ed25519)).
    ///
    /// ```
    /// use redis_sessions::stateless::JwtKey;
    /// let pkcs8 = JwtKey::generate_ed25519()?;
    /// assert_eq!(JwtKey::ed25519("2026-12", &pkcs8)?.algorithm(), "EdDSA");
    /// # Ok::<(), redis_sessions::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `pkcs8` is not an Ed25519 private key or the key id is not 1 to
    /// 64 printable ASCII characters.
    pub fn ed25519(kid: impl Into<String>, pkcs8: &[u8]) -> Result<JwtKey> {
        let kid = checked_kid(kid.into())?;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|_| Error::Config(format!("key {kid:?}: not an Ed25519 PKCS#8 key")))?;
        let encoding = EncodingKey::from_ed_der(pkcs8);
        let decoding = DecodingKey::from_ed_der(pair.public_key().as_ref());
        Ok(JwtKey { kid, algorithm: Algorithm::EdDSA, encoding, decoding })
    }

    /// A new Ed25519 private key in PKCS#8 DER form, from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the random source fails.
    pub fn generate_ed25519() -> Result<Vec<u8>> {
        let random = ring::rand::SystemRandom::new();
        let document = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
            .map_err(|_| Error::Config("the random source failed to draw an Ed25519 key".into()))?;
        Ok(document.as_ref().to_vec())
    }

    /// The key id, as tokens' headers carry it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm, as tokens' headers name it: `"HS256"` or `"EdDSA"`.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::EdDSA => "EdDSA",
            _ => "HS256",
        }
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

fn checked_kid(kid: String) -> Result<String> {
    let printable = kid.bytes().all(|b| b.is_ascii_graphic());
    if kid.is_empty() || kid.len() > MAX_KID_BYTES || !printable {
        return Err(Error::Config(format!(
            "a key id must be 1 to {MAX_KID_BYTES} printable ASCII characters"
        )));
    }
    Ok(kid)
}

/// The keys of one set of stateless sessions: the current one signs; it and the previous ones
/// check, so tokens signed before a rotation stay valid until they expire.
#[derive(Clone)]
pub(crate) struct KeyRing {
    current: Arc<JwtKey>,
    by_kid: HashMap<String, Arc<JwtKey>>,
}

impl KeyRing {
    /// `current` signs; `previous` only check.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when two keys share an id.
    pub(crate) fn new(current: JwtKey, previous: Vec<JwtKey>) -> Result<KeyRing> {
        let current = Arc::new(current);
        let mut by_kid = HashMap::from([(current.kid.clone(), Arc::clone(&current))]);
        for key in previous {
            let kid = key.kid.clone();
            if by_kid.insert(kid.clone(), Arc::new(key)).is_some() {
                return Err(Error::Config(format!("two keys have the id {kid:?}")));
            }
        }
        Ok(KeyRing { current, by_kid })
    }

    pub(crate) fn current(&self) -> &JwtKey {
        &self.current
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&JwtKey> {
        self.by_kid.get(kid).map(Arc::as_ref)
    }

    /// The key ids, the current one first.
    pub(crate) fn kids(&self) -> Vec<&str> {
        let others = self.by_kid.keys().filter(|kid| **kid != self.current.kid);
        std::iter::once(self.current.kid.as_str()).chain(others.map(String::as_str)).collect()
    }
}
