//! End to end: sign the bundled digits model, verify the container, run the classifier on
//! the weights in place, and get the same accuracy as from the bare file.

use ai_engine::digits::DigitsMlp;
use model_container::{Architecture, CpuBudget, ModelSpec, SigningKey, TrustedKeys, pack, verify};

const MODEL: &[u8] = include_bytes!("../../../models/digits/digits-mlp.safetensors");
const HELDOUT: &[u8] = include_bytes!("../../../models/digits/heldout.bin");

#[test]
fn signed_digits_model_loads_and_classifies() {
    let key = SigningKey::from_seed([42; 32]);
    let spec = ModelSpec {
        name: "digits-mlp",
        version: "1.0.0",
        architecture: Architecture::DigitsMlp,
        memory_budget_bytes: 1 << 20,
        cpu_budget: CpuBudget { budget_us: 1_000, period_us: 10_000 },
    };
    let container = pack(&spec, MODEL, None, &key).unwrap();
    let mut trusted = TrustedKeys::new();
    trusted.add("test", key.public_key()).unwrap();

    let verified = verify(&container, &trusted).unwrap();
    assert_eq!(verified.architecture(), Architecture::DigitsMlp);
    let model = DigitsMlp::from_safetensors(verified.safetensors_bytes()).unwrap();

    let n = u32::from_le_bytes(HELDOUT[8..12].try_into().unwrap()) as usize;
    let correct = HELDOUT[12..]
        .chunks_exact(65)
        .filter(|r| model.classify(r[..64].try_into().unwrap()).digit == r[64])
        .count();
    println!("signed container, held-out accuracy: {correct}/{n}");
    assert!(correct * 100 >= n * 97, "{correct}/{n}");

    // One flipped payload bit and nothing loads, so nothing classifies.
    let mut tampered = container.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(verify(&tampered, &trusted).is_err());
}
