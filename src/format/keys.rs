//! Redis keys, derived from tokens so that Redis never holds a usable token.
//!
//! A session's key is the configured prefix and the first 96 bits of the SHA-256 of the whole
//! token, tag and secret (after a label naming the key's derivation and the hash's layout),
//! base64url (16 characters); in a Redis Cluster (or with [`Config::hash_tags`]) the token's hash
//! tag, in braces, sits between them. An AOF file, an RDB dump, `MONITOR`, `SLOWLOG` or a replica
//! therefore shows only hashes, and a hash cannot be turned back into a cookie: forging one for a
//! key means a 96-bit preimage. A collision cannot merge two sessions either, since create and
//! regenerate never write over an existing key (the new session draws another token). Every
//! command that names a key, in the AOF and the replication stream, is 6 bytes shorter than with
//! 128 bits (and 27 than with all 256). The braces make every key of one session (and of its
//! regenerated successor) hash to the same Cluster slot; a single server needs no slot, and its
//! keys are 6 bytes shorter again.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::token::Token;

/// Bytes of the SHA-256 in the fingerprint shown in logs and Debug output (8 characters).
const FINGERPRINT_BYTES: usize = 6;

/// Bytes of the SHA-256 kept in the key, and their length in base64url.
const KEY_HASH_BYTES: usize = 12;
const KEY_HASH_CHARS: usize = 16;

/// The Redis key of the session that `token` opens.
pub(crate) fn session_key(config: &Config, token: &Token) -> String {
    let prefix = &config.key_prefix;
    let mut key = String::with_capacity(prefix.len() + token.tag().len() + 2 + KEY_HASH_CHARS);
    key.push_str(prefix);
    if config.tags_keys() {
        key.push('{');
        key.push_str(token.tag());
        key.push('}');
    }
    URL_SAFE_NO_PAD.encode_string(&digest(token)[..KEY_HASH_BYTES], &mut key);
    key
}

/// A short, non-reversible name for a session, for logs and Debug output: the first
/// characters of the key's hash (6 bytes are exactly 8 base64url characters).
pub(crate) fn fingerprint(token: &Token) -> String {
    URL_SAFE_NO_PAD.encode(&digest(token)[..FINGERPRINT_BYTES])
}

/// `Token(<fingerprint>)`: the first characters of the key's hash, enough to correlate log
/// lines, useless for opening the session. Here rather than in token.rs, which then needs
/// nothing of this module: the fingerprint is the key's hash.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", fingerprint(self))
    }
}

/// Hashed ahead of the token. It names the key's derivation and the layout of the hash a key
/// holds, so that when either changes the keys change too: a fleet halfway through an upgrade
/// then keeps two sets of sessions (those of the old build are not found by the new one, and
/// expire) rather than two builds that misread each other's fields. Layout 3: the whole token
/// is hashed, and each value says which field it is (fields.rs). Short, so that with the
/// 47-character token it fits SHA-256's one 64-byte block.
const LAYOUT: &[u8] = b"layout3\0";

/// The whole token is hashed, tag included: were the tag left out, every cookie that differs
/// from a real one in its tag alone (64^4 of them) would open the same session, and anything
/// the application keys on the cookie's text (a rate limit, a cache, a CSRF binding) could be
/// dodged with them.
fn digest(token: &Token) -> [u8; 32] {
    Sha256::new().chain_update(LAYOUT).chain_update(token.expose().as_bytes()).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_holds_prefix_and_hash_but_not_the_secret() {
        let token = Token::generate().expect("entropy");
        let key = session_key(&Config::default().with_key_prefix("s:"), &token);
        assert!(!key.contains(token.secret()));
        assert!(!key.contains('{'), "a single server's key carries no hash tag");
        assert_eq!(key.len(), "s:".len() + 16);
        let print = fingerprint(&token);
        assert_eq!(print.len(), 8);
        assert!(key.starts_with(&format!("s:{print}")), "the fingerprint begins the key's hash");
    }

    #[test]
    fn the_layout_is_hashed_with_the_token_in_one_block() {
        // 55 bytes are the most one 64-byte block holds after SHA-256's padding.
        let token = Token::generate().expect("entropy");
        assert!(LAYOUT.len() + token.expose().len() <= 55);
        let key = session_key(&Config::default().with_key_prefix("s:"), &token);
        // Neither layout 1's key (the secret alone) nor layout 2's (a label and the secret).
        let layout_1 = Sha256::digest(token.secret().as_bytes());
        let layout_2 = Sha256::new().chain_update(b"layout 2\0").chain_update(token.secret());
        for old in [layout_1, layout_2.finalize()] {
            assert_ne!(&key[2..], URL_SAFE_NO_PAD.encode(&old[..KEY_HASH_BYTES]), "a new key");
        }
    }

    #[test]
    fn every_character_of_the_token_is_bound_into_the_key() {
        let token = Token::generate().expect("entropy");
        let text = token.expose();
        for config in [Config::default(), Config::default().with_hash_tags(true)] {
            let key = session_key(&config, &token);
            for at in 0..text.len() {
                for other in ['A', 'B', 'w', '-', '_'] {
                    let mut changed = text.to_owned();
                    changed.replace_range(at..=at, &other.to_string());
                    let Some(forged) = Token::parse(&changed).filter(|t| *t != token) else {
                        continue; // the same token, or not one this crate could have made
                    };
                    assert_ne!(session_key(&config, &forged), key, "character {at}");
                    assert_ne!(fingerprint(&forged), fingerprint(&token), "character {at}");
                }
            }
        }
    }

    #[test]
    fn cluster_keys_carry_the_tag_before_the_same_hash() {
        let token = Token::generate().expect("entropy");
        let plain = session_key(&Config::default().with_key_prefix("s:"), &token);
        for config in [Config::default().with_cluster(true), Config::default().with_hash_tags(true)]
        {
            let key = session_key(&config.with_key_prefix("s:"), &token);
            assert_eq!(key, format!("s:{{{}}}{}", token.tag(), &plain["s:".len()..]));
        }
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
