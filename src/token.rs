//! Session tokens: the cookie value, and the only thing that can open a session.
//!
//! A token is 47 base64url characters: a 4-character Cluster hash tag (3 random bytes) followed
//! by a 43-character secret (32 bytes, 256 bits, from the operating system's CSPRNG). The tag
//! is not secret; it only picks the Redis Cluster slot, and a regenerated token keeps it so the
//! session's old and new keys share one slot. The token never leaves this process except in
//! the cookie: Redis stores only a SHA-256 of all of it, tag included (see keys.rs).
//!
//! Parsing is strict: anything that is not exactly a token this crate could have made is
//! rejected before a key is derived, so garbage cookies never cost a round trip.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{Error, Result};

const TAG_BYTES: usize = 3;
const TAG_CHARS: usize = 4;
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;

/// Length of a token in characters.
pub const TOKEN_LEN: usize = TAG_CHARS + SECRET_CHARS;

/// A session token. Its [`Debug`](std::fmt::Debug) output is a short fingerprint, never the token;
/// get the cookie value with [`Token::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    text: String,
}

impl Token {
    /// Draws a new token with a random hash tag.
    pub(crate) fn generate() -> Result<Self> {
        let mut tag = [0u8; TAG_BYTES];
        getrandom::fill(&mut tag).map_err(Error::Entropy)?;
        Self::generate_with_tag(&URL_SAFE_NO_PAD.encode(tag))
    }

    /// Draws a new secret under an existing hash tag (for regenerate: same slot).
    pub(crate) fn generate_with_tag(tag: &str) -> Result<Self> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret).map_err(Error::Entropy)?;
        Ok(Token { text: format!("{tag}{}", URL_SAFE_NO_PAD.encode(secret)) })
    }

    /// A token derived from an ID that a framework drew (tower-sessions' 128-bit IDs): the
    /// secret is the SHA-256 of `id`, the tag a hash of it too, so the same ID always maps to
    /// the same session, and Redis holds neither the ID nor anything that reveals it.
    #[cfg_attr(not(feature = "tower-sessions"), allow(dead_code))]
    pub(crate) fn derive(id: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let secret = Sha256::digest(id);
        let tag = Sha256::new().chain_update(b"tag").chain_update(id).finalize();
        let mut text = URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode_string(secret, &mut text);
        Token { text }
    }

    /// Parses a cookie value; `None` for anything that is not a well-formed token.
    ///
    /// ```
    /// use redis_sessions::Token;
    /// assert!(Token::parse("not-a-token").is_none());
    /// assert!(Token::parse(&"A".repeat(47)).is_some());
    /// assert!(Token::parse(&"A".repeat(48)).is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        // ASCII first: split_at below must not land inside a multi-byte character.
        if text.len() != TOKEN_LEN || !text.is_ascii() {
            return None;
        }
        let (tag, secret) = text.split_at(TAG_CHARS);
        // Decoding into stack buffers checks alphabet and canonical trailing bits, allocation-free.
        let tag_ok = URL_SAFE_NO_PAD.decode_slice(tag, &mut [0u8; TAG_BYTES]) == Ok(TAG_BYTES);
        let secret_ok =
            URL_SAFE_NO_PAD.decode_slice(secret, &mut [0u8; SECRET_BYTES]) == Ok(SECRET_BYTES);
        (tag_ok && secret_ok).then(|| Token { text: text.to_owned() })
    }

    /// The token as text, for the cookie. Never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The Cluster hash tag (not secret).
    pub(crate) fn tag(&self) -> &str {
        &self.text[..TAG_CHARS]
    }

    /// The secret part, still base64url-encoded.
    #[cfg(test)]
    pub(crate) fn secret(&self) -> &str {
        &self.text[TAG_CHARS..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_are_stable_well_formed_and_distinct() {
        let a = Token::derive(&7i128.to_le_bytes());
        assert_eq!(a, Token::derive(&7i128.to_le_bytes()));
        assert_ne!(a, Token::derive(&8i128.to_le_bytes()));
        assert_eq!(Token::parse(a.expose()), Some(a));
    }
}
