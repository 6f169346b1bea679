//! Trusted public keys and key ids.
//!
//! Which keys are trusted is configuration (`keys/trusted.toml`, read by xtask and embedded
//! into the OS by the build); this module is the in-memory set the loader checks against.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ed25519_compact::PublicKey;
use sha2::{Digest, Sha256};

/// Names a signing key: the first 8 bytes of SHA-256 of its 32-byte Ed25519 public key.
///
/// An id only selects a key; the signature check is what authenticates. A collision between
/// two trusted keys is refused when the second one is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of an Ed25519 public key.
    pub fn of(public_key: &[u8; 32]) -> KeyId {
        let digest: [u8; 32] = Sha256::digest(public_key).into();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why a key was not added to a [`TrustedKeys`] set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Another trusted key already has this id (same key twice, or an id collision).
    DuplicateId(KeyId),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::DuplicateId(id) => write!(f, "a trusted key with id {id} is already set"),
        }
    }
}

struct TrustedKey {
    name: String,
    id: KeyId,
    key: PublicKey,
}

/// The public keys a loader accepts model signatures from.
#[derive(Default)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// An empty set: every container is refused.
    pub fn new() -> TrustedKeys {
        TrustedKeys { keys: Vec::new() }
    }

    /// Trusts `public_key` under a human-readable `name`; returns its id.
    pub fn add(&mut self, name: &str, public_key: [u8; 32]) -> Result<KeyId, KeyError> {
        let id = KeyId::of(&public_key);
        if self.keys.iter().any(|k| k.id == id) {
            return Err(KeyError::DuplicateId(id));
        }
        self.keys.push(TrustedKey {
            name: String::from(name),
            id,
            key: PublicKey::new(public_key),
        });
        Ok(id)
    }

    /// Number of trusted keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The name a key was trusted under.
    pub fn name(&self, id: KeyId) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .map(|k| k.name.as_str())
    }

    pub(crate) fn get(&self, id: KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.id == id).map(|k| &k.key)
    }
}
