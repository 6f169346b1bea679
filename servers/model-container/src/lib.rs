//! Signed model containers: one file per model, verified before any weight is used.
//!
//! A container is a small fixed header, a manifest that says what the model is and what it
//! may cost (name, version, architecture, tokenizer, payload layout, SHA-256 and size, memory
//! and CPU budget), an Ed25519 signature over header and manifest, and the payload
//! (safetensors, then an optional vocabulary). The byte layout is in [`format`].
//!
//! [`verify`] is the only way to get at a payload: it runs every check in a fixed order and
//! returns a [`VerifiedModel`] that borrows the payload in place (no copy), or a
//! [`ContainerError`] that names the check that failed. The packer ([`pack`], feature `pack`)
//! is for xtask and the tests; the OS links the loader only.
//!
//! # Invariants
//!
//! 1. No manifest byte is interpreted before the signature over it verifies; the only fields
//!    read before that are the fixed header's (magic, version, flags, key id, manifest length),
//!    and the header is itself covered by the signature.
//! 2. No payload byte is interpreted (safetensors header, tensors, vocabulary) before the
//!    payload's size and SHA-256 match the signed manifest.
//! 3. A [`VerifiedModel`] exists only if every check passed: its fields are private and
//!    [`verify`] is its single constructor.
//! 4. No input makes the loader panic (property-tested; `forbid(unsafe_code)`).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod arch;
mod error;
pub mod format;
mod keys;
#[cfg(feature = "pack")]
mod pack;
mod verify;

pub use arch::{Architecture, DIGITS_CLASSES, DIGITS_INPUTS, MAX_DIGITS_HIDDEN};
pub use error::{Check, ContainerError, Region};
pub use format::{CpuBudget, Manifest, Section};
pub use keys::{KeyError, KeyId, TrustedKeys};
#[cfg(feature = "pack")]
pub use pack::{ModelSpec, PackError, SigningKey, pack, pack_raw};
pub use verify::{VerifiedModel, verify};
