//! The store's encryption: the loaded key ring, the rule for unsealed values, and the random
//! source of nonces, shared by every session of the store.

use ring::rand::SystemRandom;

use crate::error::Result;
use crate::seal::keys::{Encryption, KeyRing};

/// The store's encryption: its key ring and its rule for unsealed values.
pub(crate) struct Sealer {
    pub(crate) ring: KeyRing,
    pub(crate) accept_unsealed: bool,
    pub(crate) random: SystemRandom,
}

impl Sealer {
    /// Loads the keys of `encryption`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`], as [`KeyRing::load`].
    pub(crate) fn new(encryption: &Encryption) -> Result<Sealer> {
        let ring = KeyRing::load(encryption)?;
        Ok(Sealer {
            ring,
            accept_unsealed: encryption.accept_unsealed,
            random: SystemRandom::new(),
        })
    }
}
