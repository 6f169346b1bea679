//! The packer: builds and signs containers (feature `pack`; xtask and tests only).
//!
//! [`pack`] builds the manifest from a [`ModelSpec`], signs, and then runs the loader on the
//! result with only the signing key trusted, so it never writes a container the loader would
//! refuse. [`pack_raw`] signs whatever manifest it is given: the tampering tests use it to
//! make containers that are signed correctly and still wrong.

use alloc::vec::Vec;
use core::fmt;

use ed25519_compact::{KeyPair, Seed};
use sha2::{Digest, Sha256};

use crate::arch::Architecture;
use crate::error::ContainerError;
use crate::format::{CpuBudget, FORMAT_VERSION, MAGIC, MAX_MANIFEST_LEN, Manifest, Section};
use crate::keys::{KeyId, TrustedKeys};
use crate::verify::verify;

/// An Ed25519 signing key, from its 32-byte seed.
pub struct SigningKey {
    pair: KeyPair,
}

impl SigningKey {
    /// The key whose RFC 8032 private seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey {
            pair: KeyPair::from_seed(Seed::new(seed)),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        *self.pair.pk
    }

    /// The id of the public key.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.public_key())
    }

    /// A deterministic signature (RFC 8032, no added noise), so packing is reproducible.
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        *self.pair.sk.sign(message, None)
    }
}

/// What to say about a model in its manifest, apart from what the payload determines.
#[derive(Debug, Clone)]
pub struct ModelSpec<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: Architecture,
    pub memory_budget_bytes: u64,
    pub cpu_budget: CpuBudget,
}

/// Why [`pack`] refused to write a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    /// The manifest would be over [`MAX_MANIFEST_LEN`].
    ManifestTooLarge,
    /// The container would not load: the text names the check.
    WouldNotLoad(ContainerError),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::ManifestTooLarge => write!(f, "manifest over {MAX_MANIFEST_LEN} bytes"),
            PackError::WouldNotLoad(e) => write!(f, "the packed container would not load: {e}"),
        }
    }
}

impl core::error::Error for PackError {}

/// Builds, signs and self-checks a container: safetensors, then the vocabulary, as payload.
pub fn pack(
    spec: &ModelSpec<'_>,
    safetensors: &[u8],
    vocab: Option<&[u8]>,
    key: &SigningKey,
) -> Result<Vec<u8>, PackError> {
    let mut payload = Vec::with_capacity(safetensors.len() + vocab.map_or(0, <[u8]>::len));
    payload.extend_from_slice(safetensors);
    let st = Section {
        offset: 0,
        size: safetensors.len() as u64,
    };
    let vocab_section = vocab.map(|v| {
        payload.extend_from_slice(v);
        Section {
            offset: st.size,
            size: v.len() as u64,
        }
    });
    let manifest = Manifest {
        name: spec.name,
        version: spec.version,
        architecture: spec.architecture.name(),
        tokenizer: spec.architecture.tokenizer(),
        payload_size: payload.len() as u64,
        payload_sha256: Sha256::digest(&payload).into(),
        safetensors: st,
        vocab: vocab_section,
        memory_budget_bytes: spec.memory_budget_bytes,
        cpu_budget: spec.cpu_budget,
    };
    let container = pack_raw(&manifest, &payload, key)?;
    let mut trusted = TrustedKeys::new();
    // A fresh set cannot hold a duplicate.
    let _ = trusted.add("packer self-check", key.public_key());
    verify(&container, &trusted).map_err(PackError::WouldNotLoad)?;
    Ok(container)
}

/// Signs `manifest` as given and appends `payload` as given: no consistency checks.
pub fn pack_raw(
    manifest: &Manifest<'_>,
    payload: &[u8],
    key: &SigningKey,
) -> Result<Vec<u8>, PackError> {
    let manifest_bytes =
        postcard::to_allocvec(manifest).map_err(|_| PackError::ManifestTooLarge)?;
    let manifest_len = u32::try_from(manifest_bytes.len())
        .ok()
        .filter(|&n| n <= MAX_MANIFEST_LEN)
        .ok_or(PackError::ManifestTooLarge)?;
    let mut out = Vec::with_capacity(24 + manifest_bytes.len() + 64 + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&key.key_id().0);
    out.extend_from_slice(&manifest_len.to_le_bytes());
    out.extend_from_slice(&manifest_bytes);
    let signature = key.sign(&out);
    out.extend_from_slice(&signature);
    out.extend_from_slice(payload);
    Ok(out)
}
