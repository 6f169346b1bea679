//! Property tests: no input makes the loader panic, and no altered container loads.
//!
//! This is the fuzzing CI runs (stable Rust); `fuzz/` has the same targets for cargo-fuzz.

use model_container::{
    Architecture, CpuBudget, ModelSpec, SigningKey, TrustedKeys, pack, pack_raw, verify,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const DIGITS: &[u8] = include_bytes!("../../../models/digits/digits-mlp.safetensors");

fn key() -> SigningKey {
    SigningKey::from_seed([7; 32])
}

fn trusted() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.add("test", key().public_key()).unwrap();
    keys
}

fn container() -> Vec<u8> {
    let spec = ModelSpec {
        name: "digits-mlp",
        version: "1.0.0",
        architecture: Architecture::DigitsMlp,
        memory_budget_bytes: 1 << 20,
        cpu_budget: CpuBudget {
            budget_us: 1_000,
            period_us: 10_000,
        },
    };
    pack(&spec, DIGITS, None, &key()).unwrap()
}

/// A container whose manifest is signed and consistent with `payload`: the loader gets past
/// the signature and hash checks, so the safetensors parser sees `payload`.
fn signed_around(payload: &[u8]) -> Vec<u8> {
    let manifest = model_container::Manifest {
        name: "fuzz",
        version: "0",
        architecture: "digits-mlp",
        tokenizer: "none",
        payload_size: payload.len() as u64,
        payload_sha256: Sha256::digest(payload).into(),
        safetensors: model_container::Section {
            offset: 0,
            size: payload.len() as u64,
        },
        vocab: None,
        memory_budget_bytes: u64::MAX,
        cpu_budget: CpuBudget {
            budget_us: 1,
            period_us: 1,
        },
    };
    pack_raw(&manifest, payload, &key()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(verify(&bytes, &trusted()).is_err());
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = container()[..24].to_vec();
        bytes.extend_from_slice(&tail);
        prop_assert!(verify(&bytes, &trusted()).is_err());
    }

    #[test]
    fn mutated_container_never_loads(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let original = container();
        let mut bytes = original.clone();
        for (at, xor) in edits {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let result = verify(&bytes, &trusted());
        prop_assert!(result.is_err() || bytes == original);
    }

    #[test]
    fn random_safetensors_behind_a_valid_signature_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        header_len in 0u64..600,
    ) {
        // Random bytes, and random bytes with a plausible header length up front.
        let _ = verify(&signed_around(&payload), &trusted());
        let mut framed = header_len.to_le_bytes().to_vec();
        framed.extend_from_slice(&payload);
        let _ = verify(&signed_around(&framed), &trusted());
    }

    #[test]
    fn mutated_safetensors_behind_a_valid_signature_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        // Edits aimed at the JSON header, where the parser's interesting paths are.
        let header_end = 8 + u64::from_le_bytes(DIGITS[..8].try_into().unwrap()) as usize;
        let mut payload = DIGITS.to_vec();
        for (at, value) in edits {
            payload[at.index(header_end)] = value;
        }
        if let Some(cut) = cut {
            payload.truncate(cut.index(payload.len()));
        }
        let _ = verify(&signed_around(&payload), &trusted());
    }
}
