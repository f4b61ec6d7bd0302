//! A stateless session as its cookie: a JWT (JWS compact serialisation) whose claims are the
//! registered `iat`, `exp` and `jti` and one private claim, `ses`, the session itself in binary
//! (base64url), sealed with the store's encryption keys when it has them. The header names the
//! algorithm and the key id (`kid`).
//!
//! Why one binary claim rather than a JSON claim per attribute: attribute values are
//! MessagePack already, and the session's packed record carries them as they are, so a value
//! reads the same in both modes; and when the cookie is encrypted, everything but the registered
//! claims is in the sealed part, the user id included.
//!
//! The binary session (`ses`, before base64url and sealing):
//!
//! | bytes | what |
//! |---|---|
//! | 1 | format version, 1 |
//! | 8 | the session's own idle timeout, ms, u64 BE; 0 for the store's |
//! | 2 + n | the user id, u16 BE length first; 0 for an anonymous session |
//! | 2 + n | the label, likewise |
//! | 4 + n | pending flash messages (concatenated MessagePack), u32 BE length first |
//! | rest | the attributes: a packed record (format/packed.rs); its header holds the start |
//! |  | (when the session or its login began) and the deadline, as in Redis |

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::packed::Packed;
use crate::seal::{self, binding::Binding};
use crate::stateless::keys::KeyRing;
use crate::stateless::settings::Refused;

/// The format version this code writes and reads.
const VERSION: u8 = 1;

/// The associated data's letter for a sealed `ses` claim (next to `a`, `f`, `u`, `r` of the
/// store's sealed values): a value sealed for Redis does not open as a cookie, nor one way round.
pub(crate) const COOKIE: u8 = b'c';

/// The claims of a session's cookie.
#[derive(Serialize, Deserialize)]
struct Claims {
    /// Issued at, seconds since the epoch.
    iat: u64,
    /// Expires at, seconds: the idle timeout's end, or the deadline if that comes first.
    exp: u64,
    /// The session's id: drawn when the session begins and at each login or regenerate, kept
    /// when the cookie is issued again with new contents or a later `exp`.
    jti: String,
    /// The session, binary, base64url.
    ses: String,
}

/// A session's contents as a cookie carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub(crate) idle_ms: u64,
    pub(crate) user: String,
    pub(crate) label: String,
    pub(crate) flash: Vec<u8>,
    /// The attributes, with when the session began and its deadline in the header.
    pub(crate) record: Packed,
}

/// A checked cookie: its key id, its session id and expiry, and its contents.
pub(crate) struct Opened {
    pub(crate) kid: String,
    pub(crate) jti: String,
    pub(crate) exp_ms: i64,
    pub(crate) body: Body,
}

/// The cookie for `body`, signed with the ring's current key; `seal` seals the contents when
/// the store has encryption keys.
///
/// # Errors
///
/// [`Error::Unseal`] when the contents could not be sealed; [`Error::Config`] when signing
/// failed (no crypto provider: see [`StatelessSessions::new`](super::StatelessSessions::new)).
pub(crate) fn issue(
    keys: &KeyRing,
    seal: Option<&Binding>,
    jti: &str,
    iat_ms: i64,
    exp_ms: i64,
    body: &Body,
) -> Result<String> {
    let key = keys.current();
    let sealed = seal::seal_meta(seal, COOKIE, body.encode())?;
    let claims = Claims {
        iat: seconds(iat_ms),
        // Up, so that the cookie never ends before the session it carries.
        exp: seconds(exp_ms.saturating_add(999)),
        jti: jti.to_owned(),
        ses: URL_SAFE_NO_PAD.encode(sealed),
    };
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|e| Error::Config(format!("signing a session cookie failed: {e}")))
}

/// Checks `token` and reads it: the key its `kid` names, that key's algorithm alone, the
/// signature, `exp` (with `skew_secs` of leeway), `iat` not in the future beyond the skew, then
/// the contents (opened with `seal_for(jti)` when sealed).
pub(crate) fn open(
    keys: &KeyRing,
    token: &str,
    skew_secs: u64,
    now_ms: i64,
    seal_for: impl Fn(&str) -> Option<Binding>,
) -> std::result::Result<Opened, Refused> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refused::Malformed)?;
    let kid = header.kid.ok_or(Refused::UnknownKey)?;
    let key = keys.get(&kid).ok_or(Refused::UnknownKey)?;
    if header.alg != key.algorithm {
        return Err(Refused::Algorithm);
    }
    let mut validation = Validation::new(key.algorithm);
    validation.leeway = skew_secs;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => Refused::Expired,
            ErrorKind::InvalidSignature => Refused::Signature,
            ErrorKind::InvalidAlgorithm => Refused::Algorithm,
            _ => Refused::Malformed,
        }
    })?;
    let claims = data.claims;
    let skew_ms = i64::try_from(skew_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if millis(claims.iat) > now_ms.saturating_add(skew_ms) {
        return Err(Refused::Future);
    }
    let sealed = URL_SAFE_NO_PAD.decode(&claims.ses).map_err(|_| Refused::Malformed)?;
    let plain =
        seal::open_meta(seal_for(&claims.jti).as_ref(), COOKIE, &sealed).ok_or(Refused::Sealed)?;
    let body = Body::decode(plain).ok_or(Refused::Malformed)?;
    if body.times().1.saturating_add(skew_ms) <= now_ms {
        return Err(Refused::Expired);
    }
    Ok(Opened { kid, jti: claims.jti, exp_ms: millis(claims.exp), body })
}

impl Body {
    /// When the session (or its login) began, and its deadline, ms: the record's header.
    pub(crate) fn times(&self) -> (i64, i64) {
        // decode checked that the header is there.
        self.record.times().unwrap_or((0, 0))
    }

    fn encode(&self) -> Vec<u8> {
        let record = self.record.bytes();
        let mut out = Vec::with_capacity(20 + self.flash.len() + record.len());
        out.push(VERSION);
        out.extend_from_slice(&self.idle_ms.to_be_bytes());
        // A login keeps the user id to 1,024 bytes and the label to 256 (format/bound.rs).
        for text in [&self.user, &self.label] {
            out.extend_from_slice(&(text.len() as u16).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        // Limits keep the flash messages far under 4 GiB.
        out.extend_from_slice(&(self.flash.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.flash);
        out.extend_from_slice(record);
        out
    }

    fn decode(bytes: Vec<u8>) -> Option<Body> {
        let mut at = Cursor(&bytes);
        if at.take(1)? != [VERSION] {
            return None;
        }
        let idle_ms = u64::from_be_bytes(at.take(8)?.try_into().ok()?);
        let mut text = || {
            let len = u16::from_be_bytes(at.take(2)?.try_into().ok()?);
            String::from_utf8(at.take(usize::from(len))?.to_vec()).ok()
        };
        let (user, label) = (text()?, text()?);
        let flash_len = u32::from_be_bytes(at.take(4)?.try_into().ok()?);
        let flash = at.take(usize::try_from(flash_len).ok()?)?.to_vec();
        let record = Packed::parse(at.0.to_vec()).ok()?;
        record.times()?;
        Some(Body { idle_ms, user, label, flash, record })
    }
}

/// Reads a byte slice front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

fn seconds(ms: i64) -> u64 {
    u64::try_from(ms.max(0) / 1000).unwrap_or(0)
}

fn millis(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_reads_back_as_written_and_a_cut_one_does_not_read() {
        let times = (1_700_000_000_000, 1_700_086_400_000);
        let attributes = [("cart", &[0x91, 0xa3, b't', b'e', b'a'][..])].into_iter();
        let body = Body {
            idle_ms: 0,
            user: "ada".into(),
            label: "Firefox".into(),
            flash: vec![0xa2, b'h', b'i'],
            record: Packed::encoded(Packed::encode(times, 0, attributes)),
        };
        let bytes = body.encode();
        let read = Body::decode(bytes.clone()).expect("it reads");
        assert_eq!((read.times(), &read), (times, &body));
        assert_eq!(Body::decode(bytes[..30].to_vec()), None);
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert_eq!(Body::decode(other_version), None);
    }
}
