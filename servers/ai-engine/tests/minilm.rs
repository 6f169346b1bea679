//! all-MiniLM-L6-v2 against the PyTorch / sentence-transformers reference fixture, on every
//! instruction set this CPU supports, plus awkward inputs and the int8 option.
//!
//! The weights are not in git: `cargo xtask models` caches them (the test runner does so
//! before host tests). Set `DAIOS_MINILM_DIR` to use another directory.

use std::path::PathBuf;

use ai_engine::{Embedder, Error, Isa};

struct Sentence {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn model_dir() -> PathBuf {
    std::env::var_os("DAIOS_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/all-MiniLM-L6-v2")
    })
}

/// (model.safetensors, vocab.txt); fails loudly when the cache is missing.
fn model_files() -> (Vec<u8>, Vec<u8>) {
    let dir = model_dir();
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}\nthe MiniLM weights are missing: run `cargo xtask models` \
                 (or set DAIOS_MINILM_DIR)",
                dir.join(name).display()
            )
        })
    };
    (read("model.safetensors"), read("vocab.txt"))
}

fn fixture() -> Vec<Sentence> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/minilm-reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    json["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| Sentence {
            text: s["text"].as_str().expect("text").to_string(),
            ids: s["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect(),
            embedding: s["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect(),
        })
        .collect()
}

/// (cosine similarity, max absolute difference).
fn compare(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    let maxdiff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    (dot / (na * nb), maxdiff)
}

#[test]
fn token_ids_match_reference_exactly() {
    let (model, vocab) = model_files();
    let e = Embedder::minilm(&model, &vocab).unwrap();
    for s in fixture() {
        assert_eq!(e.tokenizer.encode(&s.text), s.ids, "{:?}", s.text);
    }
}

#[test]
fn embeddings_match_reference_on_every_isa() {
    let (model, vocab) = model_files();
    let base = Embedder::minilm(&model, &vocab).unwrap();
    let sentences = fixture();
    for isa in Isa::all_supported() {
        let mut e = Embedder::new(base.tokenizer.clone(), base.model.clone().with_isa(isa)).unwrap();
        for s in &sentences {
            let got = e.embed(&s.text).unwrap();
            let (cos, maxdiff) = compare(&got, &s.embedding);
            println!("{:?} cos {cos:.7} maxdiff {maxdiff:.2e} {:?}", isa.level(), s.text);
            assert!(cos >= 0.9999 && maxdiff <= 1e-4, "{isa:?} {:?}: cos {cos}, maxdiff {maxdiff}", s.text);
        }
    }
}

#[test]
fn int8_weights_stay_close_to_reference() {
    let (model, vocab) = model_files();
    let base = Embedder::minilm(&model, &vocab).unwrap();
    let sentences = fixture();
    // Every ISA: on VNNI CPUs this is the integer path (u8 activations, `vpdpbusd`).
    for isa in Isa::all_supported() {
        let q = base.model.clone().with_isa(isa).quantized_int8().unwrap();
        let mut e = Embedder::new(base.tokenizer.clone(), q).unwrap();
        let mut worst = 1.0f32;
        for s in &sentences {
            let (cos, maxdiff) = compare(&e.embed(&s.text).unwrap(), &s.embedding);
            println!("{:?} int8 cos {cos:.6} maxdiff {maxdiff:.2e} {:?}", isa.level(), s.text);
            worst = worst.min(cos);
        }
        // Per-row int8 weights (and, on VNNI, per-row u8 activations) are not held to the
        // f32 tolerance; this bounds the damage.
        assert!(worst >= 0.99, "{isa:?} int8 worst cosine {worst}");
    }
}

#[test]
fn awkward_utf8_never_panics() {
    let (model, vocab) = model_files();
    let mut e = Embedder::minilm(&model, &vocab).unwrap();
    let long_word = "x".repeat(100_000);
    let long_text = "word ".repeat(20_000);
    let emoji = "🚀🦀👩‍👩‍👧‍👦".repeat(1000);
    let cjk = "東京都庁舎、日本語の文章。".repeat(500);
    let combining = "a\u{301}\u{302}\u{303}\u{304}".repeat(5000);
    let controls: String = (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32).collect();
    let mixed = "\u{feff}\u{200b}\u{fffd}\u{e000}\u{10ffff}İ\u{0}ﬁ Ǆ ß";
    let cases: [&str; 10] =
        ["", " ", "\n\t\r", &long_word, &long_text, &emoji, &cjk, &combining, &controls, mixed];
    for text in cases {
        let ids = e.tokenizer.encode(text);
        assert!(ids.len() >= 2 && ids.len() <= 256, "{} ids", ids.len());
        let v = e.embed(text).unwrap();
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(v.iter().all(|x| x.is_finite()) && (norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    assert_eq!(e.tokenizer.encode(&long_text).len(), 256);
}

#[test]
fn bad_ids_are_errors() {
    let (model, vocab) = model_files();
    let mut e = Embedder::minilm(&model, &vocab).unwrap();
    assert_eq!(e.embed_ids(&[]), Err(Error::NoTokens));
    assert_eq!(e.embed_ids(&[101, 30522, 102]), Err(Error::TokenOutOfRange(30522)));
    assert_eq!(e.embed_ids(&[101; 257]), Err(Error::TooManyTokens { got: 257, max: 256 }));
    assert!(Embedder::minilm(&model[..1000], &vocab).is_err());
}
