//! Fuzz target: arbitrary bytes as the payload of a correctly signed digits container, so
//! the safetensors parser and the tensor checks see them. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_container::{CpuBudget, Manifest, Section, SigningKey, TrustedKeys, pack_raw, verify};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_seed([7; 32]);
    let mut keys = TrustedKeys::new();
    let _ = keys.add("fuzz", key.public_key());
    let manifest = Manifest {
        name: "fuzz",
        version: "0",
        architecture: "digits-mlp",
        tokenizer: "none",
        payload_size: data.len() as u64,
        payload_sha256: Sha256::digest(data).into(),
        safetensors: Section { offset: 0, size: data.len() as u64 },
        vocab: None,
        memory_budget_bytes: u64::MAX,
        cpu_budget: CpuBudget { budget_us: 1, period_us: 1 },
    };
    if let Ok(container) = pack_raw(&manifest, data, &key) {
        let _ = verify(&container, &keys);
    }
});
