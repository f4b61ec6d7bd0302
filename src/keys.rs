//! Redis keys, derived from tokens so that Redis never holds a usable token.
//!
//! A session's key is `{prefix}{{tag}}:{hash}`: the configured prefix, the token's Cluster hash
//! tag in braces, and the first 128 bits of the SHA-256 of the token's secret, base64url (22
//! characters). 128 bits keep both a preimage (to forge a cookie from a key) and a collision
//! (two live sessions on one key, at 2^64 sessions) out of reach, and every command that names
//! the key, in the AOF and the replication stream, is 21 bytes shorter than with all 256. An
//! AOF file, an RDB dump, `MONITOR`, `SLOWLOG` or a replica therefore shows only hashes, and a
//! hash cannot be turned back into a cookie. The braces make every key of one session (and of its regenerated
//! successor) hash to the same Cluster slot.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::token::Token;

/// Bytes of the SHA-256 in the fingerprint shown in logs and Debug output (8 characters).
const FINGERPRINT_BYTES: usize = 6;

/// Bytes of the SHA-256 kept in the key, and their length in base64url.
const KEY_HASH_BYTES: usize = 16;
const KEY_HASH_CHARS: usize = 22;

/// The Redis key of the session that `token` opens.
pub(crate) fn session_key(prefix: &str, token: &Token) -> String {
    let mut key = String::with_capacity(prefix.len() + token.tag().len() + 3 + KEY_HASH_CHARS);
    key.push_str(prefix);
    key.push('{');
    key.push_str(token.tag());
    key.push_str("}:");
    URL_SAFE_NO_PAD.encode_string(&digest(token)[..KEY_HASH_BYTES], &mut key);
    key
}

/// A short, non-reversible name for a session, for logs and Debug output: the first
/// characters of the key's hash (6 bytes are exactly 8 base64url characters).
pub(crate) fn fingerprint(token: &Token) -> String {
    URL_SAFE_NO_PAD.encode(&digest(token)[..FINGERPRINT_BYTES])
}

fn digest(token: &Token) -> [u8; 32] {
    Sha256::digest(token.secret().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_holds_tag_and_hash_but_not_the_secret() {
        let token = Token::generate().expect("entropy");
        let key = session_key("s:", &token);
        assert!(key.starts_with(&format!("s:{{{}}}:", token.tag())));
        assert!(!key.contains(token.secret()));
        assert_eq!(key.len(), "s:{".len() + 4 + "}:".len() + 22);
        let print = fingerprint(&token);
        assert_eq!(print.len(), 8);
        assert!(key.contains(&format!("}}:{print}")), "the fingerprint begins the key's hash");
    }

    #[test]
    fn regenerated_token_keeps_the_slot_tag() {
        let token = Token::generate().expect("entropy");
        let next = Token::generate_with_tag(token.tag()).expect("entropy");
        assert_eq!(token.tag(), next.tag());
        assert_ne!(token.secret(), next.secret());
        assert!(Token::parse(next.expose()).is_some());
    }
}
