//! Fuzz target: arbitrary bytes as a container; must never panic, never load.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_container::{SigningKey, TrustedKeys, verify};

fuzz_target!(|data: &[u8]| {
    let mut keys = TrustedKeys::new();
    let _ = keys.add("fuzz", SigningKey::from_seed([7; 32]).public_key());
    // Nothing the fuzzer writes is signed by the key, so nothing may load.
    assert!(verify(data, &keys).is_err());
});
