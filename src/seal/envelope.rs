//! A sealed value's bytes, and a run of sealed flash frames.
//!
//! A sealed value is [`SEALED`], the ring key's id (u16, big-endian), the epoch (u16: see
//! sealer.rs), a random 12-byte nonce, then the AES-256-GCM ciphertext and its 16-byte tag:
//! [`OVERHEAD`] bytes more than the MessagePack it seals. It sits where a plain value would (a
//! loose field after its stamp, an entry of the packed record), whose length is known; [`SEALED`]
//! is never the first byte of MessagePack, so a load tells a sealed value from a plain one by its
//! first byte.
//!
//! Flash messages are appended to one field by a script, so each push's messages are a *frame*:
//! [`SEALED`], the sealed value's length (u32, big-endian), then the sealed value.

use ring::aead::{Aad, LessSafeKey, Nonce, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::Unseal;
use crate::format::SEALED;
use crate::seal::sealer::EpochKey;

/// Where the epoch sits.
const EPOCH_AT: usize = 3;
/// The bytes before the ciphertext: marker, key id, epoch, nonce.
const HEAD: usize = EPOCH_AT + 2 + NONCE_LEN;
/// AES-GCM's tag.
const TAG: usize = 16;
/// How much longer a sealed value is than what it seals.
pub(crate) const OVERHEAD: usize = HEAD + TAG;
/// A flash frame's length field.
const FRAME_LEN: usize = 4;

/// Seals `plain` under `key` with `aad`, under a fresh random nonce.
pub(crate) fn seal(
    key: &EpochKey,
    aad: &[u8],
    plain: &[u8],
    random: &SystemRandom,
) -> Result<Vec<u8>, Unseal> {
    let mut nonce = [0; NONCE_LEN];
    random.fill(&mut nonce).map_err(|_| Unseal::NoEntropy)?;
    let mut out = Vec::with_capacity(OVERHEAD + plain.len());
    out.push(SEALED);
    out.extend_from_slice(&key.id.to_be_bytes());
    out.extend_from_slice(&key.epoch.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let nonce = Nonce::assume_unique_for_key(nonce);
    let tag = key
        .key
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out[HEAD..])
        .map_err(|_| Unseal::TooLong)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// The key id of a sealed value; `None` for a value that is not sealed.
pub(crate) fn key_id(stored: &[u8]) -> Option<u16> {
    match stored {
        [SEALED, high, low, ..] => Some(u16::from_be_bytes([*high, *low])),
        _ => None,
    }
}

/// The epoch of a sealed value; `None` for one too short to be sealed.
pub(crate) fn epoch(sealed: &[u8]) -> Option<u16> {
    let epoch = sealed.get(EPOCH_AT..EPOCH_AT + 2)?.try_into().ok()?;
    (sealed.len() >= OVERHEAD).then(|| u16::from_be_bytes(epoch))
}

/// Opens a sealed value with `key`, which the caller chose by [`key_id`] and [`epoch`].
pub(crate) fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unseal> {
    if sealed.len() < OVERHEAD {
        return Err(Unseal::Malformed);
    }
    let nonce = sealed[EPOCH_AT + 2..HEAD].try_into().map_err(|_| Unseal::Malformed)?;
    let mut buffer = sealed[HEAD..].to_vec();
    let nonce = Nonce::assume_unique_for_key(nonce);
    let plain_len =
        key.open_in_place(nonce, Aad::from(aad), &mut buffer).map_err(|_| Unseal::Rejected)?.len();
    buffer.truncate(plain_len);
    Ok(buffer)
}

/// `sealed` as a flash frame.
pub(crate) fn frame(sealed: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + FRAME_LEN + sealed.len());
    out.push(SEALED);
    out.extend_from_slice(&u32::try_from(sealed.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend(sealed);
    out
}

/// What a run of flash messages holds, part by part.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    /// A frame's sealed value.
    Sealed(&'a [u8]),
    /// Plain MessagePack messages up to the next frame (or the end).
    Plain(&'a [u8]),
}

/// Splits a run of flash messages into frames and plain stretches, and the rest of the run
/// from a frame cut short, if one is (what follows it cannot be told apart).
pub(crate) fn parts(mut run: &[u8]) -> (Vec<Part<'_>>, Option<&[u8]>) {
    let mut parts = Vec::new();
    while !run.is_empty() {
        if run[0] != SEALED {
            // A plain stretch runs to the next frame: SEALED never starts a MessagePack value,
            // but it may sit inside one (a binary), so the stretch must be decoded to be cut.
            let end = plain_end(run);
            parts.push(Part::Plain(&run[..end]));
            run = &run[end..];
            continue;
        }
        let Some(frame) = frame_at(run) else { return (parts, Some(run)) };
        parts.push(Part::Sealed(frame));
        run = &run[1 + FRAME_LEN + frame.len()..];
    }
    (parts, None)
}

/// The sealed value of the frame `run` starts with; `None` when it is cut short.
fn frame_at(run: &[u8]) -> Option<&[u8]> {
    let len: [u8; FRAME_LEN] = run.get(1..1 + FRAME_LEN)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len)).ok()?;
    run.get(1 + FRAME_LEN..(1 + FRAME_LEN).checked_add(len)?)
}

/// Where the plain messages at the start of `run` end: at the first value that starts with
/// [`SEALED`], or where a value cannot be read (the rest is then one plain stretch, which
/// decoding reports).
fn plain_end(run: &[u8]) -> usize {
    let mut at = 0;
    while at < run.len() && run[at] != SEALED {
        let mut rest = &run[at..];
        if rmp_serde::from_read::<_, serde::de::IgnoredAny>(&mut rest).is_err() {
            return run.len();
        }
        at = run.len() - rest.len();
    }
    at
}

#[cfg(test)]
mod tests {
    use ring::aead::{UnboundKey, AES_256_GCM};

    use super::*;

    fn key(byte: u8) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[byte; 32]).expect("32 bytes"))
    }

    fn epoch_key(id: u16) -> EpochKey {
        EpochKey { id, epoch: 0x0102, key: key(1) }
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_aad_only() {
        let random = SystemRandom::new();
        let sealed = seal(&epoch_key(7), b"aname", b"\xa5hello", &random).expect("seal");
        assert_eq!((sealed.len(), key_id(&sealed)), (6 + OVERHEAD, Some(7)));
        assert_eq!(epoch(&sealed), Some(0x0102));
        assert_eq!(open(&key(1), b"aname", &sealed).expect("open"), b"\xa5hello");
        assert_eq!(open(&key(2), b"aname", &sealed), Err(Unseal::Rejected), "another key");
        assert_eq!(open(&key(1), b"aother", &sealed), Err(Unseal::Rejected), "another name");
        for at in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[at] ^= 1;
            // The marker, the id and the epoch choose the key (a caller's job): the rest is
            // authenticated.
            if at >= EPOCH_AT + 2 {
                assert_eq!(open(&key(1), b"aname", &tampered), Err(Unseal::Rejected), "byte {at}");
            }
        }
        for len in 0..OVERHEAD {
            assert!(open(&key(1), b"aname", &sealed[..len]).is_err(), "cut to {len}");
        }
        let again = seal(&epoch_key(7), b"aname", b"\xa5hello", &random).expect("seal");
        assert_ne!(again, sealed, "a fresh nonce per seal");
    }

    #[test]
    fn a_run_splits_into_frames_and_plain_messages() {
        let random = SystemRandom::new();
        let sealed = seal(&epoch_key(1), b"f", b"\x01\x02", &random).expect("seal");
        // A plain binary message that holds SEALED inside it.
        let plain = [0xc4, 2, SEALED, 0];
        let run = [&plain[..], &frame(sealed.clone()), &[0x03]].concat();
        let (parts, cut) = parts(&run);
        assert_eq!(parts, [Part::Plain(&plain), Part::Sealed(&sealed), Part::Plain(&[0x03])]);
        assert_eq!(cut, None);
        let cut = [frame(sealed.clone()), frame(sealed.clone())[..10].to_vec()].concat();
        let (parts, rest) = super::parts(&cut);
        assert_eq!((parts, rest.map(<[u8]>::len)), (vec![Part::Sealed(&sealed)], Some(10)));
    }
}
