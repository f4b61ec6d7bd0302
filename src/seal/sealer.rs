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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::rand::SystemRandom;

use crate::error::{Error, Result, Unseal};
use crate::seal::keys::{Encryption, KeyRing, RingKey};

/// Seals under one epoch before the process draws another: small beside 2^32, so that the
/// draws spread the seals evenly over the epochs.
const SEALS_PER_EPOCH: u64 = 1 << 24;

/// Most epoch keys kept for opening; dropped all but the sealing one when full. Each is an AES
/// key schedule and its GHASH table, about 600 bytes.
const EPOCH_KEYS: usize = 256;

/// A ring key expanded with an epoch: what seals and opens values.
pub(crate) struct EpochKey {
    pub(crate) id: u16,
    pub(crate) epoch: u16,
    pub(crate) key: LessSafeKey,
}

/// The store's encryption: its key ring, its rule for unsealed values, and the epoch keys.
pub(crate) struct Sealer {
    pub(crate) ring: KeyRing,
    pub(crate) accept_unsealed: bool,
    pub(crate) random: SystemRandom,
    /// The key this process seals with: the current ring key, this process's epoch.
    sealing: RwLock<Arc<EpochKey>>,
    /// Seals under `sealing` so far.
    seals: AtomicU64,
    /// Keys of other epochs met when opening.
    opening: RwLock<Vec<Arc<EpochKey>>>,
}

impl Sealer {
    /// Loads the keys of `encryption` and draws this process's epoch.
    ///
    /// # Errors
    ///
    /// [`Error::Config`], as [`KeyRing::load`]; [`Error::Entropy`] when no epoch can be drawn.
    pub(crate) fn new(encryption: &Encryption) -> Result<Sealer> {
        let ring = KeyRing::load(encryption)?;
        let sealing = new_epoch(ring.current(), None)?;
        Ok(Sealer {
            ring,
            accept_unsealed: encryption.accept_unsealed,
            random: SystemRandom::new(),
            sealing: RwLock::new(Arc::new(sealing)),
            seals: AtomicU64::new(0),
            opening: RwLock::new(Vec::new()),
        })
    }

    /// The key to seal one value with; a new epoch's once this one has sealed its share.
    pub(crate) fn sealing_key(&self) -> std::result::Result<Arc<EpochKey>, Unseal> {
        if self.seals.fetch_add(1, Ordering::Relaxed) >= SEALS_PER_EPOCH {
            let mut sealing = self.sealing.write().map_err(|_| Unseal::NoEntropy)?;
            let fresh = new_epoch(self.ring.current(), Some(sealing.epoch));
            let fresh = fresh.map_err(|_| Unseal::NoEntropy)?;
            *sealing = Arc::new(fresh);
            self.seals.store(1, Ordering::Relaxed);
        }
        let sealing = self.sealing.read().map_err(|_| Unseal::NoEntropy)?;
        Ok(Arc::clone(&sealing))
    }

    /// The key of ring key `id`, epoch `epoch`, to open a value with.
    pub(crate) fn opening_key(
        &self,
        id: u16,
        epoch: u16,
    ) -> std::result::Result<Arc<EpochKey>, Unseal> {
        let matches = |k: &Arc<EpochKey>| k.id == id && k.epoch == epoch;
        if let Ok(sealing) = self.sealing.read() {
            if matches(&sealing) {
                return Ok(Arc::clone(&sealing));
            }
        }
        if let Some(key) =
            self.opening.read().ok().and_then(|keys| keys.iter().find(|k| matches(k)).cloned())
        {
            return Ok(key);
        }
        let ring_key = self.ring.get(id).ok_or(Unseal::UnknownKey(id))?;
        let key = Arc::new(EpochKey {
            id,
            epoch,
            key: derive(ring_key, epoch).ok_or(Unseal::Malformed)?,
        });
        if let Ok(mut keys) = self.opening.write() {
            if keys.len() >= EPOCH_KEYS {
                keys.clear();
            }
            keys.push(Arc::clone(&key));
        }
        Ok(key)
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
        assert!(Arc::ptr_eq(&opened, &one.opening_key(1, other.epoch).expect("kept")));
        assert!(Arc::ptr_eq(&sealing, &one.opening_key(1, sealing.epoch).expect("its own")));
        assert_eq!(one.opening_key(2, 0).err(), Some(Unseal::UnknownKey(2)));
    }

    #[test]
    fn a_new_epoch_is_drawn_after_its_share_of_seals() {
        let sealer = Sealer::new(&encryption()).expect("sealer");
        let first = sealer.sealing_key().expect("key");
        assert!(Arc::ptr_eq(&first, &sealer.sealing_key().expect("same epoch")));
        sealer.seals.store(SEALS_PER_EPOCH, Ordering::Relaxed);
        let next = sealer.sealing_key().expect("key");
        assert_ne!(next.epoch, first.epoch);
        assert_eq!(sealer.seals.load(Ordering::Relaxed), 1);
        let reopened = sealer.opening_key(1, first.epoch).expect("the old epoch still opens");
        assert_eq!(reopened.epoch, first.epoch);
    }
}
