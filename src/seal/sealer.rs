//! The store's encryption: the loaded key ring, the rule for unsealed values, the random source
//! of nonces, and the keys values are sealed and opened with.
//!
//! Why epochs: AES-GCM with random 96-bit nonces may seal at most 2^32 values under one key
//! (NIST SP 800-38D), which a busy store reaches in weeks. So no value is sealed under a ring
//! key itself, but under the ring key expanded (HKDF-SHA256) with an *epoch*, a random u16 each
//! process draws at start and again after every [`SEALS_PER_EPOCH`] seals. Random draws spread
//! a ring key's seals evenly over its 65,536 epoch keys, so none nears 2^32 before the ring key
//! has sealed about 2^48 values (nine years at a million a second). The epoch is stored beside
//! each value; a process opening values of an epoch derives its key once and keeps it, so a load
//! derives nothing once the epochs in use are known.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::rand::SystemRandom;

use crate::error::{Error, Result, Unseal};
use crate::seal::keys::{Encryption, KeyRing, RingKey};

/// Seals under one epoch before the process draws another: small beside 2^32, so that the
/// draws spread the seals evenly over the epochs.
const SEALS_PER_EPOCH: u64 = 1 << 24;

/// Epoch keys kept where a lookup takes no lock (this process's, and others' met when opening),
/// then as many more behind a lock, dropped when full. Each is an AES key schedule and its GHASH
/// table, about 600 bytes.
const EPOCH_KEYS: usize = 256;

/// A ring key expanded with an epoch: what seals and opens values.
pub(crate) struct EpochKey {
    pub(crate) id: u16,
    pub(crate) epoch: u16,
    pub(crate) key: LessSafeKey,
}

/// An epoch key as a lookup finds it: kept for the store's life, or shared.
pub(crate) enum Held<'a> {
    Kept(&'a EpochKey),
    Shared(Arc<EpochKey>),
}

impl Deref for Held<'_> {
    type Target = EpochKey;

    fn deref(&self) -> &EpochKey {
        match self {
            Held::Kept(key) => key,
            Held::Shared(key) => key,
        }
    }
}

/// The store's encryption: its key ring, its rule for unsealed values, and the epoch keys.
pub(crate) struct Sealer {
    pub(crate) ring: KeyRing,
    pub(crate) accept_unsealed: bool,
    pub(crate) random: SystemRandom,
    /// Epoch keys in the order met, each slot written once. Why not a map behind a lock: every
    /// load opens values, and a lock (or a shared reference count) is a write to memory that
    /// every core then fetches again; reading slots written once is not.
    kept: Box<[OnceLock<EpochKey>]>,
    /// How many slots of `kept` are written.
    known: AtomicUsize,
    /// Epoch keys met once `kept` is full.
    more: Mutex<Vec<Arc<EpochKey>>>,
    /// The slot of `kept` whose key this process seals with.
    sealing: AtomicUsize,
    /// Seals under the sealing key so far.
    seals: AtomicU64,
}

impl Sealer {
    /// Loads the keys of `encryption` and draws this process's epoch.
    ///
    /// # Errors
    ///
    /// [`Error::Config`], as [`KeyRing::load`]; [`Error::Entropy`] when no epoch can be drawn.
    pub(crate) fn new(encryption: &Encryption) -> Result<Sealer> {
        let ring = KeyRing::load(encryption)?;
        let first = new_epoch(ring.current(), None)?;
        let kept: Box<[OnceLock<EpochKey>]> = (0..EPOCH_KEYS).map(|_| OnceLock::new()).collect();
        let _ = kept[0].set(first);
        Ok(Sealer {
            ring,
            accept_unsealed: encryption.accept_unsealed,
            random: SystemRandom::new(),
            kept,
            known: AtomicUsize::new(1),
            more: Mutex::new(Vec::new()),
            sealing: AtomicUsize::new(0),
            seals: AtomicU64::new(0),
        })
    }

    /// The key to seal one value with; a new epoch's once this one has sealed its share (while
    /// `kept` has room: else this one's, which stays far below 2^32 seals all the same).
    pub(crate) fn sealing_key(&self) -> std::result::Result<Held<'_>, Unseal> {
        let slot = self.sealing.load(Ordering::Acquire);
        let current = self.kept.get(slot).and_then(OnceLock::get).ok_or(Unseal::Malformed)?;
        if self.seals.fetch_add(1, Ordering::Relaxed) >= SEALS_PER_EPOCH {
            let fresh = new_epoch(self.ring.current(), Some(current.epoch));
            let fresh = fresh.map_err(|_| Unseal::NoEntropy)?;
            if let Some((slot, key)) = self.keep(fresh) {
                self.sealing.store(slot, Ordering::Release);
                self.seals.store(1, Ordering::Relaxed);
                return Ok(Held::Kept(key));
            }
        }
        Ok(Held::Kept(current))
    }

    /// The key of ring key `id`, epoch `epoch`, to open a value with.
    pub(crate) fn opening_key(&self, id: u16, epoch: u16) -> std::result::Result<Held<'_>, Unseal> {
        let matches = |k: &EpochKey| k.id == id && k.epoch == epoch;
        let known = self.known.load(Ordering::Acquire);
        let kept = self.kept[..known.min(EPOCH_KEYS)].iter().filter_map(OnceLock::get);
        if let Some(key) = kept.into_iter().find(|k| matches(k)) {
            return Ok(Held::Kept(key));
        }
        let ring_key = self.ring.get(id).ok_or(Unseal::UnknownKey(id))?;
        let derived =
            EpochKey { id, epoch, key: derive(ring_key, epoch).ok_or(Unseal::Malformed)? };
        if let Some((_, key)) = self.keep(derived) {
            return Ok(Held::Kept(key));
        }
        // `kept` is full: the keys met since are behind a lock.
        let mut more = self.more.lock().map_err(|_| Unseal::Malformed)?;
        if let Some(key) = more.iter().find(|k| matches(k)) {
            return Ok(Held::Shared(Arc::clone(key)));
        }
        if more.len() >= EPOCH_KEYS {
            more.clear();
        }
        let derived =
            EpochKey { id, epoch, key: derive(ring_key, epoch).ok_or(Unseal::Malformed)? };
        more.push(Arc::new(derived));
        Ok(Held::Shared(Arc::clone(more.last().ok_or(Unseal::Malformed)?)))
    }

    /// Writes `key` into the next slot of `kept` (or finds it there, written meanwhile); `None`
    /// when the slots are full.
    fn keep(&self, key: EpochKey) -> Option<(usize, &EpochKey)> {
        let _adding = self.more.lock().ok()?;
        let known = self.known.load(Ordering::Acquire);
        let found = self.kept[..known]
            .iter()
            .filter_map(OnceLock::get)
            .position(|k| k.id == key.id && k.epoch == key.epoch);
        let slot = match found {
            Some(slot) => slot,
            None if known < EPOCH_KEYS => {
                self.kept[known].set(key).ok()?;
                self.known.store(known + 1, Ordering::Release);
                known
            }
            None => return None,
        };
        Some((slot, self.kept[slot].get()?))
    }
}

/// A fresh epoch of `ring_key`, other than `other_than` (the one it replaces).
fn new_epoch(ring_key: &RingKey, other_than: Option<u16>) -> Result<EpochKey> {
    let epoch = loop {
        let mut bytes = [0; 2];
        getrandom::fill(&mut bytes).map_err(Error::Entropy)?;
        let epoch = u16::from_be_bytes(bytes);
        if Some(epoch) != other_than {
            break epoch;
        }
    };
    let key = derive(ring_key, epoch).ok_or_else(|| {
        Error::Config(format!("encryption key {}: cannot derive its keys", ring_key.id))
    })?;
    Ok(EpochKey { id: ring_key.id, epoch, key })
}

/// `ring_key` expanded with `epoch` (HKDF-SHA256).
fn derive(ring_key: &RingKey, epoch: u16) -> Option<LessSafeKey> {
    let epoch = epoch.to_be_bytes();
    let info: [&[u8]; 2] = [b"redis-sessions value v1", &epoch];
    let okm = ring_key.prk.expand(&info, &AES_256_GCM).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::keys::EncryptionKey;

    fn encryption() -> Encryption {
        Encryption::new(EncryptionKey::from_bytes(1, [0x11; 32]))
    }

    #[test]
    fn processes_seal_under_epochs_of_their_own_and_open_each_others() {
        let (one, two) =
            (Sealer::new(&encryption()).expect("one"), Sealer::new(&encryption()).expect("two"));
        let (sealing, other) = (one.sealing_key().expect("key"), two.sealing_key().expect("key"));
        let random = SystemRandom::new();
        let sealed = crate::seal::envelope::seal(&other, b"a", b"\x01", &random).expect("seal");
        let opened = one.opening_key(1, other.epoch).expect("derived, or its own");
        let plain = crate::seal::envelope::open(&opened.key, b"a", &sealed).expect("opens");
        assert_eq!(plain, b"\x01", "one process opens what another sealed");
        assert!(std::ptr::eq(&*opened, &*one.opening_key(1, other.epoch).expect("kept")));
        assert!(std::ptr::eq(&*sealing, &*one.opening_key(1, sealing.epoch).expect("its own")));
        assert_eq!(one.opening_key(2, 0).err(), Some(Unseal::UnknownKey(2)));
    }

    #[test]
    fn a_new_epoch_is_drawn_after_its_share_of_seals() {
        let sealer = Sealer::new(&encryption()).expect("sealer");
        let first = sealer.sealing_key().expect("key");
        assert!(std::ptr::eq(&*first, &*sealer.sealing_key().expect("same epoch")));
        sealer.seals.store(SEALS_PER_EPOCH, Ordering::Relaxed);
        let next = sealer.sealing_key().expect("key");
        assert_ne!(next.epoch, first.epoch);
        assert_eq!(sealer.seals.load(Ordering::Relaxed), 1);
        let reopened = sealer.opening_key(1, first.epoch).expect("the old epoch still opens");
        assert_eq!(reopened.epoch, first.epoch);
    }

    #[test]
    fn past_the_kept_slots_epoch_keys_are_still_found() {
        let sealer = Sealer::new(&encryption()).expect("sealer");
        let own = sealer.sealing_key().expect("key").epoch;
        let others = (0..=u16::MAX).filter(|epoch| *epoch != own);
        for epoch in others.clone().take(EPOCH_KEYS - 1) {
            assert!(matches!(sealer.opening_key(1, epoch), Ok(Held::Kept(_))), "epoch {epoch}");
        }
        let past = others.clone().nth(EPOCH_KEYS).expect("an epoch past the slots");
        let Ok(Held::Shared(first)) = sealer.opening_key(1, past) else { panic!("shared") };
        let Ok(Held::Shared(again)) = sealer.opening_key(1, past) else { panic!("shared") };
        assert!(Arc::ptr_eq(&first, &again), "derived once");
        assert!(matches!(sealer.sealing_key(), Ok(Held::Kept(key)) if key.epoch == own));
    }
}
