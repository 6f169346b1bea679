//! The loader: every check, in order, before any weight is handed out.

use alloc::format;
use alloc::string::String;

use ed25519_compact::Signature;
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use crate::arch::Architecture;
use crate::error::{ContainerError, Region};
use crate::format::{
    FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_MANIFEST_LEN, Manifest, SIGNATURE_LEN, Section,
};
use crate::keys::{KeyId, TrustedKeys};

/// A container that passed every check. Its payload slices borrow the container bytes.
///
/// # Invariants
///
/// Built only by [`verify`], after all of its checks passed: the signature verified with a
/// trusted key, the payload matches the signed size and SHA-256, the architecture is known,
/// and the safetensors header parsed with the tensors the architecture needs.
pub struct VerifiedModel<'a> {
    manifest: Manifest<'a>,
    architecture: Architecture,
    key_id: KeyId,
    safetensors: &'a [u8],
    vocab: Option<&'a [u8]>,
    tensors: SafeTensors<'a>,
}

impl<'a> VerifiedModel<'a> {
    /// The signed manifest.
    pub fn manifest(&self) -> &Manifest<'a> {
        &self.manifest
    }

    /// The architecture, known to this loader.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The id of the trusted key that signed the container.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The safetensors file, in place.
    pub fn safetensors_bytes(&self) -> &'a [u8] {
        self.safetensors
    }

    /// The parsed safetensors file; tensor data borrows the container.
    pub fn tensors(&self) -> &SafeTensors<'a> {
        &self.tensors
    }

    /// The vocabulary, in place, if the architecture has one.
    pub fn vocab(&self) -> Option<&'a [u8]> {
        self.vocab
    }
}

impl core::fmt::Debug for VerifiedModel<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifiedModel")
            .field("manifest", &self.manifest)
            .field("architecture", &self.architecture)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// `bytes[at..at + N]` as an array; the caller has checked the length.
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = bytes.get(at..).and_then(|b| b.get(..N)) {
        out.copy_from_slice(src);
    }
    out
}

fn truncated(region: Region, needed: usize, actual: usize) -> ContainerError {
    ContainerError::Truncated {
        region,
        needed: needed as u64,
        actual: actual as u64,
    }
}

/// Verifies a container against `trusted` and returns its payload in place.
///
/// Checks, in this order, stopping at the first failure: magic, format version, flags,
/// lengths (header, manifest bound, manifest and signature present), key trusted, signature,
/// manifest decodes, payload size (truncation, trailing bytes), payload SHA-256, manifest
/// fields (sections, budgets, names), architecture known, tokenizer and vocabulary, safetensors
/// header, tensors. See the crate invariants for why in this order.
pub fn verify<'a>(
    bytes: &'a [u8],
    trusted: &TrustedKeys,
) -> Result<VerifiedModel<'a>, ContainerError> {
    // Magic first, so a file of the wrong kind says so whatever its length.
    let magic_len = MAGIC.len();
    if bytes.get(..magic_len.min(bytes.len())) != MAGIC.get(..magic_len.min(bytes.len())) {
        return Err(ContainerError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        if bytes.len() < magic_len {
            return Err(truncated(Region::Header, HEADER_LEN, bytes.len()));
        }
        // Version and flags are checked on what is there, so a truncated file of a newer
        // version still reports its version.
        if bytes.len() >= 10 {
            let version = u16::from_le_bytes(field(bytes, 8));
            if version != FORMAT_VERSION {
                return Err(ContainerError::UnsupportedVersion {
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
        }
        return Err(truncated(Region::Header, HEADER_LEN, bytes.len()));
    }
    let version = u16::from_le_bytes(field(bytes, 8));
    if version != FORMAT_VERSION {
        return Err(ContainerError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let flags = u16::from_le_bytes(field(bytes, 10));
    if flags != 0 {
        return Err(ContainerError::ReservedFlags { found: flags });
    }
    let key_id = KeyId(field(bytes, 12));
    let manifest_len = u32::from_le_bytes(field(bytes, 20));
    if manifest_len > MAX_MANIFEST_LEN {
        return Err(ContainerError::ManifestTooLarge {
            len: u64::from(manifest_len),
            max: u64::from(MAX_MANIFEST_LEN),
        });
    }
    // Bounded by MAX_MANIFEST_LEN above: these sums cannot overflow.
    let manifest_end = HEADER_LEN + manifest_len as usize;
    let signature_end = manifest_end + SIGNATURE_LEN;
    if bytes.len() < manifest_end {
        return Err(truncated(Region::Manifest, signature_end, bytes.len()));
    }
    if bytes.len() < signature_end {
        return Err(truncated(Region::Signature, signature_end, bytes.len()));
    }
    let (signed, rest) = bytes.split_at(manifest_end);
    let (signature, payload) = rest.split_at(SIGNATURE_LEN);
    let manifest_bytes = signed.get(HEADER_LEN..).unwrap_or_default();

    let Some(public_key) = trusted.get(key_id) else {
        return Err(ContainerError::UntrustedKey { key_id });
    };
    let signature =
        Signature::from_slice(signature).map_err(|_| ContainerError::BadSignature { key_id })?;
    public_key
        .verify(signed, &signature)
        .map_err(|_| ContainerError::BadSignature { key_id })?;

    // From here on the header and manifest are authentic.
    let manifest = match postcard::take_from_bytes::<Manifest<'a>>(manifest_bytes) {
        Ok((manifest, [])) => manifest,
        _ => return Err(ContainerError::MalformedManifest),
    };

    let actual = payload.len() as u64;
    if actual < manifest.payload_size {
        return Err(ContainerError::Truncated {
            region: Region::Payload,
            needed: (signature_end as u64).saturating_add(manifest.payload_size),
            actual: bytes.len() as u64,
        });
    }
    if actual > manifest.payload_size {
        return Err(ContainerError::TrailingBytes {
            declared: manifest.payload_size,
            actual,
        });
    }
    let digest: [u8; 32] = Sha256::digest(payload).into();
    if digest != manifest.payload_sha256 {
        return Err(ContainerError::PayloadHashMismatch);
    }

    // From here on the payload is authentic too.
    let (safetensors, vocab) = check_fields(&manifest, payload)?;

    let Some(architecture) = Architecture::from_name(manifest.architecture) else {
        return Err(ContainerError::UnknownArchitecture {
            name: String::from(manifest.architecture),
        });
    };
    if manifest.tokenizer != architecture.tokenizer() {
        return Err(ContainerError::TokenizerMismatch {
            reason: format!(
                "architecture {} needs tokenizer {:?}, manifest names {:?}",
                architecture.name(),
                architecture.tokenizer(),
                manifest.tokenizer
            ),
        });
    }
    match (architecture.needs_vocab(), vocab) {
        (true, None) => {
            return Err(ContainerError::TokenizerMismatch {
                reason: format!(
                    "architecture {} needs a vocabulary, payload has none",
                    architecture.name()
                ),
            });
        }
        (false, Some(_)) => {
            return Err(ContainerError::TokenizerMismatch {
                reason: format!(
                    "architecture {} takes no vocabulary, payload has one",
                    architecture.name()
                ),
            });
        }
        (true, Some(v)) if core::str::from_utf8(v).is_err() => {
            return Err(ContainerError::TokenizerMismatch {
                reason: String::from("vocabulary is not UTF-8"),
            });
        }
        _ => {}
    }

    let tensors =
        SafeTensors::deserialize(safetensors).map_err(|e| ContainerError::Safetensors {
            reason: format!("{e}"),
        })?;
    architecture.check_tensors(&tensors)?;

    Ok(VerifiedModel {
        manifest,
        architecture,
        key_id,
        safetensors,
        vocab,
        tensors,
    })
}

fn invalid(reason: &'static str) -> ContainerError {
    ContainerError::InvalidManifest { reason }
}

fn section(payload: &[u8], s: Section) -> Option<&[u8]> {
    let start = usize::try_from(s.offset).ok()?;
    let len = usize::try_from(s.size).ok()?;
    payload.get(start..)?.get(..len)
}

/// Manifest fields that depend on nothing but the manifest and the payload length.
fn check_fields<'a>(
    manifest: &Manifest<'_>,
    payload: &'a [u8],
) -> Result<(&'a [u8], Option<&'a [u8]>), ContainerError> {
    let printable =
        |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic());
    if !printable(manifest.name) {
        return Err(invalid("name must be 1 to 64 printable ASCII characters"));
    }
    if !printable(manifest.version) {
        return Err(invalid(
            "version must be 1 to 64 printable ASCII characters",
        ));
    }
    // Sections are contiguous from offset 0 and cover the payload exactly.
    let st = manifest.safetensors;
    if st.offset != 0 {
        return Err(invalid(
            "safetensors section must start at payload offset 0",
        ));
    }
    let Some(st_end) = st.offset.checked_add(st.size) else {
        return Err(invalid("safetensors section overflows"));
    };
    let end = match manifest.vocab {
        None => st_end,
        Some(v) => {
            if v.offset != st_end {
                return Err(invalid(
                    "vocabulary section must follow the safetensors section",
                ));
            }
            v.offset
                .checked_add(v.size)
                .ok_or(invalid("vocabulary section overflows"))?
        }
    };
    if end != manifest.payload_size {
        return Err(invalid("payload sections do not cover the payload exactly"));
    }
    let safetensors = section(payload, st).ok_or(invalid("safetensors section out of bounds"))?;
    let vocab = match manifest.vocab {
        None => None,
        Some(v) => Some(section(payload, v).ok_or(invalid("vocabulary section out of bounds"))?),
    };
    if manifest.memory_budget_bytes < manifest.payload_size {
        return Err(invalid("memory budget is smaller than the payload"));
    }
    let cpu = manifest.cpu_budget;
    if cpu.period_us == 0 || cpu.budget_us == 0 || cpu.budget_us > cpu.period_us {
        return Err(invalid(
            "CPU budget must satisfy 0 < budget_us <= period_us",
        ));
    }
    Ok((safetensors, vocab))
}
