//! Sessions bound to a user: the binding (`@u`), the stub a rotation leaves under a retired
//! token (`@r`), the per-user index's key and the user's hash tag.
//!
//! `@u` is [`META`], [`BOUND`], when the session was last rotated (u64 ms, big-endian, on the
//! server's clock: the scripts write it), the device id ([`DEVICE_LEN`] random bytes), then to
//! the end the user id's length (u16), the user id and the app's label, sealed as one value
//! under encryption. `@r` is [`META`], [`RETIRED`], the end of the grace window (u64 ms, written
//! by the script), the device id, the sealed next token's length (u8) and the sealed next
//! token, then the user id to the end, sealed under encryption. The scripts read the times and
//! device ids only.
//!
//! The next token is sealed with the retired one ([`seal_next`]): Redis holds no usable token,
//! and only a client that presents the retired token can learn where it leads.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256, Sha512};

use crate::config::Config;
use crate::format::{BOUND, BOUND_TIME_AT, DEVICE_AT, DEVICE_LEN, META, RETIRED};
use crate::token::Token;

/// The longest user id, in bytes.
pub(crate) const MAX_USER_BYTES: usize = 1024;
/// The longest label kept, in bytes; a longer one is cut at a character boundary.
pub(crate) const MAX_LABEL_BYTES: usize = 256;

/// A session's binding: when it was last rotated, its device id, the user id and the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bound {
    pub(crate) rotated_ms: u64,
    pub(crate) device: [u8; DEVICE_LEN],
    pub(crate) user: String,
    pub(crate) label: String,
}

/// `@u` as stored: its time and device id, and the user id and label (`who`), sealed under
/// encryption (seal/mod.rs), else the user id's length (u16), the user id and the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredBound {
    pub(crate) rotated_ms: u64,
    pub(crate) device: [u8; DEVICE_LEN],
    pub(crate) who: Vec<u8>,
}

/// A retired token's stub, as `@r` holds it: the user id (`who`) sealed under encryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Retired {
    pub(crate) grace_until_ms: u64,
    pub(crate) device: [u8; DEVICE_LEN],
    pub(crate) sealed_next: Vec<u8>,
    pub(crate) who: Vec<u8>,
}

impl Bound {
    /// The user id and label, as `@u` holds them unsealed.
    pub(crate) fn who(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.user.len() + self.label.len());
        let len = u16::try_from(self.user.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.user.as_bytes()[..usize::from(len)]);
        out.extend_from_slice(self.label.as_bytes());
        out
    }

    /// The value of `@u` holding `who` (as [`who`](Self::who) gives it, or sealed), its time
    /// 0: the script that writes it puts the server's time there.
    pub(crate) fn value(&self, who: &[u8]) -> Vec<u8> {
        let mut out = vec![META, BOUND];
        out.extend_from_slice(&0u64.to_be_bytes());
        out.extend_from_slice(&self.device);
        out.extend_from_slice(who);
        out
    }

    /// The binding `stored` holds, given its `who` unsealed; `None` when that is cut short or
    /// not UTF-8.
    pub(crate) fn from_stored(stored: &StoredBound, who: &[u8]) -> Option<Bound> {
        let len = usize::from(u16::from_be_bytes(who.get(..2)?.try_into().ok()?));
        let user = std::str::from_utf8(who.get(2..2 + len)?).ok()?.to_owned();
        let label = std::str::from_utf8(who.get(2 + len..)?).ok()?.to_owned();
        Some(Bound { rotated_ms: stored.rotated_ms, device: stored.device, user, label })
    }

    /// The device id, as lists show it and revoke takes it: 11 base64url characters.
    pub(crate) fn device_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.device)
    }
}

impl StoredBound {
    /// Reads `@u`; `None` when it is cut short.
    pub(crate) fn parse(value: &[u8]) -> Option<StoredBound> {
        let (rotated_ms, device, who) = head(value, BOUND)?;
        Some(StoredBound { rotated_ms, device, who: who.to_vec() })
    }

    /// `@u` with `who` in place of its own (sealed anew for another key, say).
    pub(crate) fn with_who(&self, who: &[u8]) -> Vec<u8> {
        let mut out = vec![META, BOUND];
        out.extend_from_slice(&self.rotated_ms.to_be_bytes());
        out.extend_from_slice(&self.device);
        out.extend_from_slice(who);
        out
    }
}

impl Retired {
    /// What follows the grace window's end in `@r`: the script writes [`META`], [`RETIRED`]
    /// and the time in front. `who` is the user id, sealed under encryption.
    pub(crate) fn tail(device: &[u8; DEVICE_LEN], sealed_next: &[u8], who: &[u8]) -> Vec<u8> {
        let mut out = device.to_vec();
        out.push(u8::try_from(sealed_next.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(sealed_next);
        out.extend_from_slice(who);
        out
    }

    /// Reads `@r`; `None` when it is cut short.
    pub(crate) fn parse(value: &[u8]) -> Option<Retired> {
        let (grace_until_ms, device, rest) = head(value, RETIRED)?;
        let (&len, rest) = rest.split_first()?;
        let sealed_next = rest.get(..usize::from(len))?.to_vec();
        let who = rest.get(usize::from(len)..)?.to_vec();
        Some(Retired { grace_until_ms, device, sealed_next, who })
    }
}

/// A fresh device id.
pub(crate) fn new_device() -> crate::Result<[u8; DEVICE_LEN]> {
    let mut device = [0; DEVICE_LEN];
    getrandom::fill(&mut device).map_err(crate::Error::Entropy)?;
    Ok(device)
}

/// A device id as lists show it; `None` for text no list could have shown.
pub(crate) fn parse_device(text: &str) -> Option<[u8; DEVICE_LEN]> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    bytes.try_into().ok()
}

/// `label` cut to [`MAX_LABEL_BYTES`] at a character boundary.
pub(crate) fn cut_label(label: &str) -> String {
    let mut end = label.len().min(MAX_LABEL_BYTES);
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    label[..end].to_owned()
}

/// The next token sealed with the retired one: XOR with SHA-512 of a label and the retired
/// token, a key stream used once, since each token is retired once.
pub(crate) fn seal_next(retired: &Token, next: &Token) -> Vec<u8> {
    xor_stream(retired, next.expose().as_bytes())
}

/// The token `sealed` leads to, opened with the retired token it was sealed with; `None` when
/// it does not open to a token (a stub written by hand, or damaged).
pub(crate) fn open_next(retired: &Token, sealed: &[u8]) -> Option<Token> {
    Token::parse(std::str::from_utf8(&xor_stream(retired, sealed)).ok()?)
}

/// `bytes` XORed with the key stream of `retired` (seal_next's; the same both ways).
fn xor_stream(retired: &Token, bytes: &[u8]) -> Vec<u8> {
    let stream = Sha512::new().chain_update(b"next token\0").chain_update(retired.expose());
    bytes.iter().zip(stream.finalize().iter()).map(|(a, b)| a ^ b).collect()
}

/// The hash tag of every token bound to `user`: 4 base64url characters of a hash of the user
/// id, so that a user's sessions and index share one Cluster slot, and users spread over slots.
pub(crate) fn user_tag(user: &str) -> String {
    let hash = Sha256::new().chain_update(b"user tag\0").chain_update(user).finalize();
    URL_SAFE_NO_PAD.encode(&hash[..3])
}

/// The key of `user`'s index: the prefix, the user's tag in braces where keys carry tags, then
/// `user:` and 16 characters of a hash of the user id (no `:` is in a session key's hash, so
/// the two never meet). The user id itself is not in the key.
pub(crate) fn index_key(config: &Config, user: &str) -> String {
    let hash = Sha256::new().chain_update(b"user index\0").chain_update(user).finalize();
    let mut key = config.key_prefix.clone();
    if config.tags_keys() {
        key.push('{');
        key.push_str(&user_tag(user));
        key.push('}');
    }
    key.push_str("user:");
    URL_SAFE_NO_PAD.encode_string(&hash[..12], &mut key);
    key
}

/// Whether `key`, under the store's prefix, is a user's index rather than a session: a
/// session key's hash has no `:`.
pub(crate) fn is_index_key(config: &Config, key: &str) -> bool {
    key.strip_prefix(config.key_prefix.as_str()).is_some_and(|rest| rest.contains("user:"))
}

fn head(value: &[u8], letter: u8) -> Option<(u64, [u8; DEVICE_LEN], &[u8])> {
    if value.get(..BOUND_TIME_AT)? != [META, letter] {
        return None;
    }
    let time = u64::from_be_bytes(value.get(BOUND_TIME_AT..DEVICE_AT)?.try_into().ok()?);
    let device = value.get(DEVICE_AT..DEVICE_AT + DEVICE_LEN)?.try_into().ok()?;
    Some((time, device, value.get(DEVICE_AT + DEVICE_LEN..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_and_stub_round_trip() {
        let bound = Bound {
            rotated_ms: 0,
            device: [1; DEVICE_LEN],
            user: "ada".into(),
            label: "Firefox".into(),
        };
        let stored = StoredBound::parse(&bound.value(&bound.who())).expect("a binding");
        assert_eq!(Bound::from_stored(&stored, &stored.who), Some(bound.clone()));
        let (old, next) = (Token::generate().expect("entropy"), Token::generate().expect("e"));
        let sealed = seal_next(&old, &next);
        assert!(!sealed.windows(8).any(|w| next.expose().as_bytes().windows(8).any(|n| n == w)));
        let mut stub = vec![META, RETIRED];
        stub.extend_from_slice(&9u64.to_be_bytes());
        stub.extend(Retired::tail(&bound.device, &sealed, b"ada"));
        let retired = Retired::parse(&stub).expect("a stub");
        assert_eq!((retired.grace_until_ms, &retired.who[..]), (9, &b"ada"[..]));
        assert_eq!(open_next(&old, &retired.sealed_next), Some(next.clone()));
        assert_eq!(open_next(&next, &retired.sealed_next), None, "only the retired token opens it");
    }

    #[test]
    fn cut_short_values_are_none_not_panics() {
        let bound = Bound { rotated_ms: 1, device: [2; 8], user: "u".into(), label: "é".into() };
        let value = bound.value(&bound.who());
        for end in 0..DEVICE_AT + DEVICE_LEN {
            assert_eq!(StoredBound::parse(&value[..end]), None, "{end} bytes");
        }
        let stored = StoredBound::parse(&value).expect("whole");
        // Cut in the length, in the user id, or in the label's character: none.
        for end in [0, 1, 2, 4] {
            assert_eq!(Bound::from_stored(&stored, &stored.who[..end]), None, "{end} bytes");
        }
        assert_eq!(cut_label(&"é".repeat(200)).len(), MAX_LABEL_BYTES);
    }

    #[test]
    fn a_users_index_carries_the_users_tag_where_keys_carry_tags() {
        let plain = index_key(&Config::default().with_key_prefix("s:"), "ada");
        assert!(plain.starts_with("s:user:") && !plain.contains("ada"));
        let tagged = index_key(&Config::default().with_key_prefix("s:").with_cluster(true), "ada");
        assert_eq!(tagged, format!("s:{{{}}}{}", user_tag("ada"), &plain[2..]));
        assert_ne!(user_tag("ada"), user_tag("bob"));
    }
}
