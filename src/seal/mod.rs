//! Encryption at rest: attribute values and flash messages sealed with AES-256-GCM before they
//! leave the process, opened only when the application reads them.
//!
//! - `keys.rs`: the configuration of the keys, and the ring they load into.
//! - `envelope.rs`: the bytes of a sealed value and of a run of flash frames.
//! - `sealer.rs`: the store's key ring, its rule for unsealed values, and the epoch keys that
//!   seal and open (why epochs: sealer.rs).
//! - `binding.rs`: what binds a value to its session; `moved.rs`: a session sealed anew for
//!   the key a regenerate moves it to.
//! - `usage.rs`: what the scan that counts what each key still seals counts.
//!
//! What is sealed and how:
//! - Each value is sealed on its own, under a fresh random 96-bit nonce, so that one value that
//!   fails to open costs that attribute alone, and a delta save seals only what it writes.
//! - The associated data is the kind (`a` for an attribute, `f` for the flash queue), the
//!   session's Redis key, and the attribute's name: a value copied to another attribute or
//!   another session, or a loose field stamped with another name, fails to open.
//! - Names, the record's header and the metadata stay in clear: the scripts must read them to
//!   compare, count, expire and compact without a key, and Redis must keep them to find a field.
//!   Names are the application's code, not its users' data; a value that is secret belongs in a
//!   value.
//!
//! ring does the cryptography: it is in the dependency tree already (rustls runs on it), and its
//! AES-GCM is BoringSSL's constant-time, hardware-accelerated code. Nonces are random, one per
//! seal, under keys that seal a bounded share each (sealer.rs): ring's `LessSafeKey` leaves
//! their uniqueness to the caller.

use std::borrow::Cow;

use crate::error::{Error, Result, Unseal};

pub(crate) mod binding;
pub(crate) mod envelope;
pub(crate) mod keys;
pub(crate) mod moved;
pub(crate) mod sealer;
pub(crate) mod usage;

use binding::Binding;
use envelope::Part;

/// The kind, in the associated data, of an attribute's value (then its name).
const ATTRIBUTE: u8 = b'a';
/// The kind, in the associated data, of a flash frame (no name: the queue is one).
const FLASH: u8 = b'f';

fn unseal(attribute: &str, cause: Unseal) -> Error {
    Error::Unseal { attribute: attribute.to_owned(), cause }
}

/// `plain` as stored for attribute `name`: sealed under this process's current epoch key, or
/// as it is without encryption.
pub(crate) fn seal_value(binding: Option<&Binding>, name: &str, plain: Vec<u8>) -> Result<Vec<u8>> {
    let Some(binding) = binding else { return Ok(plain) };
    seal(binding, ATTRIBUTE, name, &plain).map_err(|cause| unseal(name, cause))
}

fn seal(binding: &Binding, kind: u8, name: &str, plain: &[u8]) -> Result<Vec<u8>, Unseal> {
    let key = binding.sealer.sealing_key()?;
    envelope::seal(&key, &binding.aad(kind, name), plain, &binding.sealer.random)
}

/// The MessagePack of attribute `name` from its stored bytes.
///
/// # Errors
///
/// [`Error::Unseal`] when a sealed value does not open (tampered, moved, under a key the ring
/// does not hold, or no ring at all), or an unsealed one is refused.
pub(crate) fn open_value<'a>(
    binding: Option<&Binding>,
    name: &str,
    stored: &'a [u8],
) -> Result<Cow<'a, [u8]>> {
    open(binding, ATTRIBUTE, name, stored).map_err(|cause| unseal(name, cause))
}

fn open<'a>(
    binding: Option<&Binding>,
    kind: u8,
    name: &str,
    stored: &'a [u8],
) -> Result<Cow<'a, [u8]>, Unseal> {
    let Some(id) = envelope::key_id(stored) else {
        return match binding {
            Some(binding) if !binding.sealer.accept_unsealed => Err(Unseal::NotSealed),
            _ => Ok(Cow::Borrowed(stored)),
        };
    };
    let epoch = envelope::epoch(stored).ok_or(Unseal::Malformed)?;
    let binding = binding.ok_or(Unseal::NoKeys)?;
    let key = binding.sealer.opening_key(id, epoch)?;
    let plain = envelope::open(&key.key, &binding.aad(kind, name), stored)?;
    binding.sealer.opened(key);
    Ok(Cow::Owned(plain))
}

/// The user id and label of a session's binding (`@u`), or the user id of a retired token's
/// stub (`@r`), as stored: sealed like a value under encryption, under the associated data of
/// metadata `letter` ([`format::BOUND`](crate::format::BOUND) or
/// [`format::RETIRED`](crate::format::RETIRED)) of the session's key, so that a binding moved
/// to another session does not open there.
pub(crate) fn seal_meta(binding: Option<&Binding>, letter: u8, plain: Vec<u8>) -> Result<Vec<u8>> {
    let Some(binding) = binding else { return Ok(plain) };
    seal(binding, letter, "@", &plain).map_err(|cause| unseal("@", cause))
}

/// What [`seal_meta`] sealed; `None` when it does not open.
pub(crate) fn open_meta(binding: Option<&Binding>, letter: u8, stored: &[u8]) -> Option<Vec<u8>> {
    open(binding, letter, "@", stored).ok().map(Cow::into_owned)
}

/// What [`seal_meta`] sealed for `from`, sealed for `to` instead (a rotation's move).
pub(crate) fn moved_meta(
    from: &Binding,
    to: &Binding,
    letter: u8,
    stored: &[u8],
) -> Result<Vec<u8>> {
    let plain = open(Some(from), letter, "@", stored).map_err(|cause| unseal("@", cause))?;
    seal(to, letter, "@", &plain).map_err(|cause| unseal("@", cause))
}

/// True when `stored` is as a save under the current key would store it: sealed under the
/// ring's current key (or, without encryption, anything).
pub(crate) fn is_current(binding: Option<&Binding>, stored: &[u8]) -> bool {
    binding.is_none_or(|b| envelope::key_id(stored) == Some(b.sealer.ring.current().id))
}

/// True when a save would seal attribute `name`'s `stored` anew: it is sealed under an older
/// key the ring holds and opens, or is unsealed and accepted. (A value under a key the ring
/// lacks, or one that does not open, never will: sealing it anew is not possible, and asking
/// again would compact on every save.)
pub(crate) fn reseal_due(binding: &Binding, name: &str, stored: &[u8]) -> bool {
    let ring = &binding.sealer.ring;
    match envelope::key_id(stored) {
        Some(id) if id == ring.current().id || ring.get(id).is_none() => false,
        Some(_) => open(Some(binding), ATTRIBUTE, name, stored).is_ok(),
        None => binding.sealer.accept_unsealed,
    }
}

/// Attribute `name`'s `stored`, sealed for the session `to` instead of `from` (a regenerate);
/// as it is when it does not open (it never will).
///
/// # Errors
///
/// [`Error::Unseal`] when the value opens but cannot be sealed (the random source failed).
pub(crate) fn moved_value(
    from: &Binding,
    to: &Binding,
    name: &str,
    stored: &[u8],
) -> Result<Vec<u8>> {
    match open(Some(from), ATTRIBUTE, name, stored) {
        Ok(plain) => seal(to, ATTRIBUTE, name, &plain).map_err(|cause| unseal(name, cause)),
        Err(_) => Ok(stored.to_vec()),
    }
}

/// A run of flash messages, each frame sealed for the session `to` instead of `from`; frames
/// that do not open, and plain messages, as they are.
///
/// # Errors
///
/// [`Error::Unseal`] when a frame opens but cannot be sealed (the random source failed).
pub(crate) fn moved_flash(from: &Binding, to: &Binding, run: &[u8]) -> Result<Vec<u8>> {
    let (parts, cut) = envelope::parts(run);
    let mut out = Vec::with_capacity(run.len());
    for part in parts {
        match part {
            Part::Sealed(sealed) => match open(Some(from), FLASH, "", sealed) {
                Ok(plain) => {
                    let moved = seal(to, FLASH, "", &plain).map_err(|e| unseal("@flash", e))?;
                    out.extend(envelope::frame(moved));
                }
                Err(_) => out.extend(envelope::frame(sealed.to_vec())),
            },
            Part::Plain(messages) => out.extend_from_slice(messages),
        }
    }
    if let Some(rest) = cut {
        out.extend_from_slice(rest); // a frame cut short stays cut short
    }
    Ok(out)
}

/// `stored` re-sealed under the current key, for a compaction; as it is when it already is, or
/// when it does not open (it never will: the compaction keeps it for the application to see
/// the error).
pub(crate) fn resealed<'a>(
    binding: Option<&Binding>,
    name: &str,
    stored: &'a [u8],
) -> Cow<'a, [u8]> {
    if is_current(binding, stored) {
        return Cow::Borrowed(stored);
    }
    let reseal =
        |b: &Binding| seal(b, ATTRIBUTE, name, &open(Some(b), ATTRIBUTE, name, stored).ok()?).ok();
    binding.and_then(reseal).map_or(Cow::Borrowed(stored), Cow::Owned)
}

/// Flash messages (concatenated MessagePack) as a push appends them: one sealed frame, or as
/// they are without encryption.
pub(crate) fn seal_flash(binding: Option<&Binding>, plain: Vec<u8>) -> Result<Vec<u8>> {
    let Some(binding) = binding else { return Ok(plain) };
    let sealed = seal(binding, FLASH, "", &plain).map_err(|cause| unseal("@flash", cause))?;
    Ok(envelope::frame(sealed))
}

/// The popped flash messages as concatenated MessagePack, and why some did not open: those are
/// left out (they never would open), the others kept.
pub(crate) fn open_flash(binding: Option<&Binding>, run: Vec<u8>) -> (Vec<u8>, Option<Unseal>) {
    if binding.is_none() && !run.contains(&crate::format::SEALED) {
        return (run, None); // nothing sealed can be in it: the common case without encryption
    }
    let (parts, cut) = envelope::parts(&run);
    let (mut plain, mut failed) = (Vec::new(), cut.map(|_| Unseal::Malformed));
    for part in parts {
        let stored = match part {
            Part::Sealed(sealed) => sealed,
            Part::Plain(messages) => messages,
        };
        match open(binding, FLASH, "", stored) {
            Ok(messages) => plain.extend_from_slice(&messages),
            Err(why) => failed = Some(why),
        }
    }
    (plain, failed)
}
