//! The store's encryption: the loaded key ring, the rule for unsealed values, the random source
//! of nonces, and the keys values are sealed and opened with.
//!
//! Why epochs: AES-GCM with random 96-bit nonces may seal at most 2^32 values under one key
//! (NIST SP 800-38D), which a busy store reaches in weeks. So no value is sealed under a ring
//! key itself, but under the ring key expanded (HKDF-SHA256) with an *epoch*, a random u16 each
//! process draws at start and again after every [`SEALS_PER_EPOCH`] seals. Random draws spread
//! a ring key's seals over its 65,536 epoch keys, so none nears 2^32 before the ring key has
//! sealed some 2^47 values (four years at a million a second). The epoch is stored beside each
//! value; a process opening values of an epoch derives its key once and keeps it (256 without a
//! lock, 256 more behind one), so a load derives nothing once the epochs in use are known.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::rand::SystemRandom;

use crate::error::{Error, Result, Unseal};
use crate::seal::keys::{Encryption, KeyRing, RingKey};

/// Seals under one epoch before the process draws another: small beside 2^32, so that the
/// draws spread the seals evenly over the epochs.
const SEALS_PER_EPOCH: u64 = 1 << 24;

/// Epoch keys kept for opening where a lookup takes no lock, then as many more behind a lock,
/// dropped when full. Each is an AES key schedule and its GHASH table, about 600 bytes.
const EPOCH_KEYS: usize = 256;

/// A ring key expanded with an epoch: what seals and opens values.
pub(crate) struct EpochKey {
    pub(crate) id: u16,
    pub(crate) epoch: u16,
    pub(crate) key: LessSafeKey,
}

/// An epoch key as a lookup finds it: kept for the store's life, shared, or derived just now
/// (kept once a value authenticates under it: [`Sealer::opened`]).
pub(crate) enum Held<'a> {
    Kept(&'a EpochKey),
    Shared(Arc<EpochKey>),
    Derived(Box<EpochKey>),
}

impl Deref for Held<'_> {
    type Target = EpochKey;

    fn deref(&self) -> &EpochKey {
        match self {
            Held::Kept(key) => key,
            Held::Shared(key) => key,
            Held::Derived(key) => key,
        }
    }
}

/// The store's encryption: its key ring, its rule for unsealed values, and the epoch keys.
pub(crate) struct Sealer {
    pub(crate) ring: KeyRing,
    pub(crate) accept_unsealed: bool,
    pub(crate) random: SystemRandom,
    /// The key this process seals with, and how many seals it has made. Behind a lock: a seal
    /// is rare beside an open, and a new epoch must replace it whatever else is kept.
    sealing: Mutex<(Arc<EpochKey>, u64)>,
    /// Epoch keys values have opened under, in the order met, each slot written once. Why not
    /// a map behind a lock: every load opens values, and a lock (or a shared reference count)
    /// is a write to memory that every core then fetches again; reading these slots is not.
    kept: Box<[OnceLock<EpochKey>]>,
    /// How many slots of `kept` are written.
    known: AtomicUsize,
    /// Epoch keys values have opened under once `kept` is full; also the lock that writes
    /// `kept`.
    more: Mutex<Vec<Arc<EpochKey>>>,
}

impl Sealer {
    /// Loads the keys of `encryption` and draws this process's epoch.
    ///
    /// # Errors
    ///
    /// [`Error::Config`], as [`KeyRing::load`]; [`Error::Entropy`] when no epoch can be drawn.
    pub(crate) fn new(encryption: &Encryption) -> Result<Sealer> {
        let ring = KeyRing::load(encryption)?;
        let first = Arc::new(new_epoch(ring.current(), None)?);
        Ok(Sealer {
            ring,
            accept_unsealed: encryption.accept_unsealed,
            random: SystemRandom::new(),
            sealing: Mutex::new((first, 0)),
            kept: (0..EPOCH_KEYS).map(|_| OnceLock::new()).collect(),
            known: AtomicUsize::new(0),
            more: Mutex::new(Vec::new()),
        })
    }

    /// The key to seal one value with: a new epoch's once the last has sealed its share.
    pub(crate) fn sealing_key(&self) -> std::result::Result<Arc<EpochKey>, Unseal> {
        let mut sealing = self.sealing.lock().map_err(|_| Unseal::Malformed)?;
        if sealing.1 >= SEALS_PER_EPOCH {
            let fresh = new_epoch(self.ring.current(), Some(sealing.0.epoch));
            *sealing = (Arc::new(fresh.map_err(|_| Unseal::NoEntropy)?), 0);
        }
        sealing.1 += 1;
        Ok(Arc::clone(&sealing.0))
    }

    /// The key of ring key `id`, epoch `epoch`, to open a value with. A key derived here is
    /// kept only once a value opens under it ([`opened`](Self::opened)), so that values with
    /// made-up epochs cannot fill the slots.
    pub(crate) fn opening_key(&self, id: u16, epoch: u16) -> std::result::Result<Held<'_>, Unseal> {
        let matches = |k: &EpochKey| k.id == id && k.epoch == epoch;
        let known = self.known.load(Ordering::Acquire).min(EPOCH_KEYS);
        if let Some(key) = self.kept[..known].iter().filter_map(OnceLock::get).find(|k| matches(k))
        {
            return Ok(Held::Kept(key));
        }
        if known == EPOCH_KEYS {
            let more = self.more.lock().map_err(|_| Unseal::Malformed)?;
            if let Some(key) = more.iter().find(|k| matches(k)) {
                return Ok(Held::Shared(Arc::clone(key)));
            }
        }
        let ring_key = self.ring.get(id).ok_or(Unseal::UnknownKey(id))?;
        let key = derive(ring_key, epoch).ok_or(Unseal::Malformed)?;
        Ok(Held::Derived(Box::new(EpochKey { id, epoch, key })))
    }

    /// Keeps a key [`opening_key`](Self::opening_key) derived, now that a value has opened
    /// under it: in the next slot of `kept`, or in `more` once the slots are full.
    pub(crate) fn opened(&self, key: Held<'_>) {
        let Held::Derived(key) = key else { return };
        let Ok(mut more) = self.more.lock() else { return };
        let known = self.known.load(Ordering::Acquire);
        let same = |k: &EpochKey| k.id == key.id && k.epoch == key.epoch;
        if self.kept[..known].iter().filter_map(OnceLock::get).any(same) {
            return; // kept meanwhile
        }
        if known < EPOCH_KEYS {
            if self.kept[known].set(*key).is_ok() {
                self.known.store(known + 1, Ordering::Release);
            }
            return;
        }
        if more.iter().any(|k| same(k)) {
            return;
        }
        if more.len() >= EPOCH_KEYS {
            more.clear();
        }
        more.push(Arc::from(key));
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
    use crate::seal::envelope;
    use crate::seal::keys::EncryptionKey;

    fn encryption() -> Encryption {
        Encryption::new(EncryptionKey::from_bytes(1, [0x11; 32]))
    }

    #[test]
    fn processes_seal_under_epochs_of_their_own_and_open_each_others() {
        let (one, two) =
            (Sealer::new(&encryption()).expect("one"), Sealer::new(&encryption()).expect("two"));
        let random = SystemRandom::new();
        let other = two.sealing_key().expect("key");
        let sealed = envelope::seal(&other, b"a", b"\x01", &random).expect("seal");
        let derived = one.opening_key(1, other.epoch).expect("derived");
        assert!(matches!(derived, Held::Derived(_)), "not kept before a value opens");
        assert_eq!(envelope::open(&derived.key, b"a", &sealed).expect("opens"), b"\x01");
        one.opened(derived);
        assert!(matches!(one.opening_key(1, other.epoch), Ok(Held::Kept(_))), "kept since");
        assert!(matches!(one.opening_key(1, other.epoch ^ 1), Ok(Held::Derived(_))));
        assert_eq!(one.opening_key(2, 0).err(), Some(Unseal::UnknownKey(2)));
    }

    #[test]
    fn a_new_epoch_is_drawn_after_its_share_of_seals_whatever_is_kept() {
        let sealer = Sealer::new(&encryption()).expect("sealer");
        let first = sealer.sealing_key().expect("key");
        // The slots full of others' epochs change nothing for sealing.
        for epoch in (0..=u16::MAX).filter(|e| *e != first.epoch).take(EPOCH_KEYS + 3) {
            sealer.opened(sealer.opening_key(1, epoch).expect("derived"));
        }
        assert!(Arc::ptr_eq(&first, &sealer.sealing_key().expect("same epoch")));
        sealer.sealing.lock().expect("lock").1 = SEALS_PER_EPOCH;
        let next = sealer.sealing_key().expect("key");
        assert_ne!(next.epoch, first.epoch);
        assert_eq!(sealer.sealing.lock().expect("lock").1, 1);
    }

    #[test]
    fn past_the_kept_slots_epoch_keys_are_kept_behind_a_lock() {
        let sealer = Sealer::new(&encryption()).expect("sealer");
        for epoch in 0..EPOCH_KEYS as u16 {
            sealer.opened(sealer.opening_key(1, epoch).expect("derived"));
        }
        assert!(matches!(sealer.opening_key(1, 0), Ok(Held::Kept(_))));
        let past = EPOCH_KEYS as u16 + 1;
        assert!(matches!(sealer.opening_key(1, past), Ok(Held::Derived(_))));
        sealer.opened(sealer.opening_key(1, past).expect("derived"));
        let Ok(Held::Shared(first)) = sealer.opening_key(1, past) else { panic!("shared") };
        let Ok(Held::Shared(again)) = sealer.opening_key(1, past) else { panic!("shared") };
        assert!(Arc::ptr_eq(&first, &again), "derived once");
    }
}
