//! A session's seals: the value key its values are sealed under, and the proof a regenerate
//! leaves that the session still owns the values sealed under its first key.
//!
//! Why values are bound to the session's first key, not its current one: a regenerate moves the
//! hash to a new key in one script (RENAMENX), which cannot re-seal anything. So every value is
//! sealed under a key derived from the key the session was created under (its *origin*), and a
//! regenerate writes `@b`: the origin and an HMAC over origin and new key, made here with a key
//! of the ring. A load verifies it. A hash copied to another key fails the HMAC (it names the
//! copied session's key, not this one), so its values open under this key's own origin, which
//! sealed none of them: they fail, as a value moved from another session must.
//!
//! `@b`'s value: [`META`](crate::format::META), [`BINDING`](crate::format::BINDING), the key id
//! (u16), the origin's length (u16), the origin, then the 32-byte HMAC-SHA256 of length, origin
//! and the current key.

use std::sync::{Arc, OnceLock};

use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::hmac;

use crate::error::Unseal;
use crate::format;
use crate::seal::keys::RingKey;
use crate::seal::sealer::Sealer;

/// HMAC-SHA256's length.
const PROOF_TAG: usize = 32;

/// The seals of one session.
pub(crate) struct Binding {
    pub(crate) sealer: Arc<Sealer>,
    /// The key the session was created under, which its value keys derive from.
    origin: String,
    /// The key id of the `@b` the load verified; `None` without one.
    proof_key: Option<u16>,
    /// Why the `@b` the load found does not verify: every value then fails with it.
    broken: Option<Unseal>,
    /// The value key under the current key of the ring, derived on first use.
    current: OnceLock<Option<LessSafeKey>>,
}

impl Binding {
    /// The seals of the session under `key`, given the `@b` its hash holds (after its tag).
    pub(crate) fn new(sealer: Arc<Sealer>, key: &str, proof: Option<&[u8]>) -> Binding {
        let (mut origin, mut proof_key, mut broken) = (key.to_owned(), None, None);
        if let Some(proof) = proof {
            match verify(&sealer, key, proof) {
                Ok((id, verified)) => (origin, proof_key) = (verified, Some(id)),
                Err(why) => broken = Some(why),
            }
        }
        Binding { sealer, origin, proof_key, broken, current: OnceLock::new() }
    }

    /// The value key of this session under `ring_key`.
    pub(crate) fn value_key(&self, ring_key: &RingKey) -> Option<LessSafeKey> {
        let info = [b"redis-sessions value v1".as_slice(), self.origin.as_bytes()];
        let okm = ring_key.prk.expand(&info, &AES_256_GCM).ok()?;
        Some(LessSafeKey::new(UnboundKey::from(okm)))
    }

    /// The value key under the ring's current key.
    pub(crate) fn current_key(&self) -> Result<&LessSafeKey, Unseal> {
        let current = self.current.get_or_init(|| self.value_key(self.sealer.ring.current()));
        current.as_ref().ok_or(Unseal::Malformed)
    }

    /// Why no value of this session opens, when its `@b` does not verify.
    pub(crate) fn broken(&self) -> Option<Unseal> {
        self.broken
    }

    /// The `@b` a regenerate writes for this session's new key `key`.
    pub(crate) fn proof_for(&self, key: &str) -> Vec<u8> {
        let ring_key = self.sealer.ring.current();
        let origin = self.origin.as_bytes();
        let len = u16::try_from(origin.len()).unwrap_or(u16::MAX).to_be_bytes();
        let tag = hmac::sign(&ring_key.binding, &[&len[..], origin, key.as_bytes()].concat());
        [&[format::META, format::BINDING][..], &ring_key.id.to_be_bytes(), &len, origin]
            .concat()
            .into_iter()
            .chain(tag.as_ref().iter().copied())
            .collect()
    }

    /// True when this session's `@b`, if any, is under the ring's current key.
    pub(crate) fn proof_is_current(&self) -> bool {
        self.proof_key.is_none_or(|id| id == self.sealer.ring.current().id)
    }

    /// Notes that a regenerate wrote [`proof_for`](Self::proof_for) the new key.
    pub(crate) fn proof_written(&mut self) {
        self.proof_key = Some(self.sealer.ring.current().id);
    }

    /// Notes that a compaction wrote [`renewed_proof`](Self::renewed_proof).
    pub(crate) fn proof_renewed(&mut self) {
        if self.proof_key.is_some() && self.broken.is_none() {
            self.proof_key = Some(self.sealer.ring.current().id);
        }
    }

    /// The `@b` a compaction writes, when the session has one under an older key.
    pub(crate) fn renewed_proof(&self, key: &str) -> Option<Vec<u8>> {
        (!self.proof_is_current() && self.broken.is_none()).then(|| self.proof_for(key))
    }
}

/// The origin a `@b` (after its two tag bytes) names, and its key id, when its HMAC holds for
/// `key`.
fn verify(sealer: &Sealer, key: &str, proof: &[u8]) -> Result<(u16, String), Unseal> {
    let [high, low, len_high, len_low, rest @ ..] = proof else { return Err(Unseal::Malformed) };
    let id = u16::from_be_bytes([*high, *low]);
    let len = usize::from(u16::from_be_bytes([*len_high, *len_low]));
    if rest.len() != len + PROOF_TAG {
        return Err(Unseal::Malformed);
    }
    let (origin, tag) = rest.split_at(len);
    let ring_key = sealer.ring.get(id).ok_or(Unseal::UnknownKey(id))?;
    let signed = [&[*len_high, *len_low][..], origin, key.as_bytes()].concat();
    hmac::verify(&ring_key.binding, &signed, tag).map_err(|_| Unseal::Rejected)?;
    let origin = std::str::from_utf8(origin).map_err(|_| Unseal::Malformed)?;
    Ok((id, origin.to_owned()))
}
