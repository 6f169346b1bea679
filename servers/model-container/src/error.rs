//! What went wrong, named by the check that failed.
//!
//! [`ContainerError`] carries the detail for a human (its `Display`); [`Check`] is the stable,
//! copyable name of the failed check, for tests and for callers that branch on the cause.

use alloc::string::String;
use core::fmt;

use crate::keys::KeyId;

/// The checks [`crate::verify`] runs, in the order it runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// The file starts with [`crate::format::MAGIC`].
    Magic,
    /// The format version is one this loader reads.
    Version,
    /// The reserved flags are zero.
    Flags,
    /// Header, manifest and signature are all present; the manifest length is within bounds.
    Length,
    /// The signing key id names a trusted key.
    KeyTrusted,
    /// The Ed25519 signature over header and manifest verifies with that key.
    Signature,
    /// The signed manifest decodes.
    ManifestDecode,
    /// The payload is exactly as long as the manifest says: no truncation, no trailing bytes.
    PayloadSize,
    /// The payload's SHA-256 matches the manifest.
    PayloadHash,
    /// The manifest's fields are consistent (sections, budgets, names).
    ManifestFields,
    /// The architecture is one this loader knows.
    Architecture,
    /// Tokenizer and vocabulary are what the architecture needs.
    Tokenizer,
    /// The safetensors header parses and its offsets are consistent.
    Safetensors,
    /// The tensors the architecture needs are there, with the right dtype and shape.
    Tensors,
}

impl Check {
    /// Short name, as used in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Check::Magic => "magic",
            Check::Version => "format version",
            Check::Flags => "flags",
            Check::Length => "length",
            Check::KeyTrusted => "trusted key",
            Check::Signature => "signature",
            Check::ManifestDecode => "manifest decode",
            Check::PayloadSize => "payload size",
            Check::PayloadHash => "payload hash",
            Check::ManifestFields => "manifest fields",
            Check::Architecture => "architecture",
            Check::Tokenizer => "tokenizer",
            Check::Safetensors => "safetensors header",
            Check::Tensors => "tensors",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which part of the file a truncation cut into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The fixed header.
    Header,
    /// The manifest.
    Manifest,
    /// The signature.
    Signature,
    /// The payload.
    Payload,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Region::Header => "header",
            Region::Manifest => "manifest",
            Region::Signature => "signature",
            Region::Payload => "payload",
        })
    }
}

/// Why a container was refused. Nothing from a refused container is handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerError {
    /// The file does not start with the container magic: not a model container.
    BadMagic,
    /// A format version this loader does not read.
    UnsupportedVersion { found: u16, supported: u16 },
    /// Reserved flag bits are set.
    ReservedFlags { found: u16 },
    /// The file ends inside `region`: it needs at least `needed` bytes and has `actual`.
    Truncated {
        region: Region,
        needed: u64,
        actual: u64,
    },
    /// The header's manifest length is over [`crate::format::MAX_MANIFEST_LEN`].
    ManifestTooLarge { len: u64, max: u64 },
    /// No trusted key has this id.
    UntrustedKey { key_id: KeyId },
    /// The signature does not verify with the trusted key of this id: the header, manifest
    /// or signature was altered, or another key signed it.
    BadSignature { key_id: KeyId },
    /// The manifest is signed but does not decode (a packer bug, or an incompatible packer).
    MalformedManifest,
    /// Bytes follow the payload the manifest declares.
    TrailingBytes { declared: u64, actual: u64 },
    /// The payload's SHA-256 is not the one in the signed manifest.
    PayloadHashMismatch,
    /// A manifest field is inconsistent; the text says which.
    InvalidManifest { reason: &'static str },
    /// The architecture is not one this loader knows.
    UnknownArchitecture { name: String },
    /// The tokenizer or vocabulary does not fit the architecture.
    TokenizerMismatch { reason: String },
    /// The safetensors header does not parse; the text is the parser's.
    Safetensors { reason: String },
    /// A tensor the architecture needs is missing.
    MissingTensor { name: String },
    /// A tensor has the wrong dtype or shape.
    TensorMismatch { name: String, reason: String },
}

impl ContainerError {
    /// The check that failed.
    pub const fn check(&self) -> Check {
        match self {
            ContainerError::BadMagic => Check::Magic,
            ContainerError::UnsupportedVersion { .. } => Check::Version,
            ContainerError::ReservedFlags { .. } => Check::Flags,
            ContainerError::Truncated {
                region: Region::Payload,
                ..
            } => Check::PayloadSize,
            ContainerError::Truncated { .. } | ContainerError::ManifestTooLarge { .. } => {
                Check::Length
            }
            ContainerError::UntrustedKey { .. } => Check::KeyTrusted,
            ContainerError::BadSignature { .. } => Check::Signature,
            ContainerError::MalformedManifest => Check::ManifestDecode,
            ContainerError::TrailingBytes { .. } => Check::PayloadSize,
            ContainerError::PayloadHashMismatch => Check::PayloadHash,
            ContainerError::InvalidManifest { .. } => Check::ManifestFields,
            ContainerError::UnknownArchitecture { .. } => Check::Architecture,
            ContainerError::TokenizerMismatch { .. } => Check::Tokenizer,
            ContainerError::Safetensors { .. } => Check::Safetensors,
            ContainerError::MissingTensor { .. } | ContainerError::TensorMismatch { .. } => {
                Check::Tensors
            }
        }
    }
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "model container refused, {} check failed: ",
            self.check()
        )?;
        match self {
            ContainerError::BadMagic => f.write_str("not a model container (bad magic)"),
            ContainerError::UnsupportedVersion { found, supported } => {
                write!(
                    f,
                    "format version {found}, this loader reads version {supported}"
                )
            }
            ContainerError::ReservedFlags { found } => {
                write!(f, "reserved flags are {found:#06x}, must be 0")
            }
            ContainerError::Truncated {
                region,
                needed,
                actual,
            } => write!(
                f,
                "file truncated in the {region}: needs at least {needed} bytes, has {actual}"
            ),
            ContainerError::ManifestTooLarge { len, max } => {
                write!(f, "manifest length {len} is over the limit of {max} bytes")
            }
            ContainerError::UntrustedKey { key_id } => {
                write!(f, "signed by key {key_id}, which is not a trusted key")
            }
            ContainerError::BadSignature { key_id } => write!(
                f,
                "Ed25519 signature does not verify with trusted key {key_id}: header, manifest \
                 or signature altered, or signed by another key"
            ),
            ContainerError::MalformedManifest => f.write_str("signed manifest does not decode"),
            ContainerError::TrailingBytes { declared, actual } => write!(
                f,
                "manifest declares a {declared}-byte payload, file has {actual} bytes after the \
                 signature"
            ),
            ContainerError::PayloadHashMismatch => {
                f.write_str("payload SHA-256 does not match the signed manifest")
            }
            ContainerError::InvalidManifest { reason } => f.write_str(reason),
            ContainerError::UnknownArchitecture { name } => {
                write!(f, "unknown architecture {name:?}")
            }
            ContainerError::TokenizerMismatch { reason } => f.write_str(reason),
            ContainerError::Safetensors { reason } => write!(f, "{reason}"),
            ContainerError::MissingTensor { name } => write!(f, "tensor {name:?} is missing"),
            ContainerError::TensorMismatch { name, reason } => {
                write!(f, "tensor {name:?}: {reason}")
            }
        }
    }
}

impl core::error::Error for ContainerError {}
