//! The container's byte layout (format version 1) and the manifest's wire form.
//!
//! ```text
//! offset       size  field
//! 0            8     magic, b"DAIOSMDL"
//! 8            2     format version, u16 little-endian (this crate reads 1)
//! 10           2     flags, u16 little-endian, must be 0 (reserved)
//! 12           8     signing key id: the first 8 bytes of SHA-256(Ed25519 public key)
//! 20           4     manifest length M, u32 little-endian, at most MAX_MANIFEST_LEN
//! 24           M     manifest, postcard encoding of `Manifest`
//! 24+M         64    Ed25519 signature over bytes [0, 24+M): header and manifest
//! 88+M         P     payload: exactly `manifest.payload_size` bytes, then end of file
//! ```
//!
//! The signature covers the header, so the key id, version and flags are signed too; the
//! manifest carries the payload's SHA-256 and size, so the signature binds the payload as well.
//! The key id sits in the header rather than the manifest so the loader can pick the key
//! without decoding unsigned manifest bytes (crate invariant 1).
//!
//! Inside the payload the sections are contiguous: safetensors at offset 0, then the
//! vocabulary if the architecture has one; the sections cover the payload exactly.
//!
//! The manifest's `architecture` and `tokenizer` are strings on the wire, not enums, so that
//! an unknown architecture decodes fine and is refused by its own, named check.

use serde::{Deserialize, Serialize};

/// The first 8 bytes of every container.
pub const MAGIC: [u8; 8] = *b"DAIOSMDL";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the fixed header, up to and excluding the manifest.
pub const HEADER_LEN: usize = 24;
/// Size of the Ed25519 signature that follows the manifest.
pub const SIGNATURE_LEN: usize = 64;
/// Upper bound on the manifest, so a hostile length cannot make the loader hash gigabytes
/// before the signature is even checked. Real manifests are about 200 bytes.
pub const MAX_MANIFEST_LEN: u32 = 16 * 1024;

/// What the model is, what the payload holds, and what running it may cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest<'a> {
    /// Human-readable model name, e.g. `digits-mlp`.
    pub name: &'a str,
    /// Model version, free-form, e.g. `1.0.0`.
    pub version: &'a str,
    /// Architecture name as in [`crate::Architecture::name`]; unknown names are refused.
    pub architecture: &'a str,
    /// Tokenizer name as in [`crate::Architecture::tokenizer`] (`none` for the digits MLP).
    pub tokenizer: &'a str,
    /// Exact payload length in bytes.
    pub payload_size: u64,
    /// SHA-256 of the whole payload.
    pub payload_sha256: [u8; 32],
    /// Where the safetensors file sits in the payload.
    pub safetensors: Section,
    /// Where the vocabulary (one token per line, UTF-8) sits in the payload, if any.
    pub vocab: Option<Section>,
    /// Memory the model needs to run: weights plus working buffers, in bytes.
    pub memory_budget_bytes: u64,
    /// CPU time the model may use per period.
    pub cpu_budget: CpuBudget,
}

/// A byte range inside the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Offset from the start of the payload.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

/// CPU budget: at most `budget_us` microseconds of CPU in every `period_us` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuBudget {
    /// CPU time per period, in microseconds; 0 < budget_us <= period_us.
    pub budget_us: u64,
    /// Length of the period, in microseconds.
    pub period_us: u64,
}
