//! The bundled digits classifier: accuracy on the held-out split, size, and bad input.
//!
//! `models/digits/heldout.bin` layout: magic `DIGHELD1`, u32 LE sample count N, then N
//! records of 65 bytes: 64 pixels (0..=16, row-major 8x8) and the label (0..=9).

use ai_engine::Error;
use ai_engine::digits::{CLASSES, DigitsMlp, INPUTS};

const MODEL: &[u8] = include_bytes!("../../../models/digits/digits-mlp.safetensors");
const HELDOUT: &[u8] = include_bytes!("../../../models/digits/heldout.bin");

fn heldout() -> Vec<([u8; INPUTS], u8)> {
    assert_eq!(&HELDOUT[..8], b"DIGHELD1");
    let n = u32::from_le_bytes(HELDOUT[8..12].try_into().unwrap()) as usize;
    let records = &HELDOUT[12..];
    assert_eq!(records.len(), n * 65, "heldout.bin length");
    records
        .chunks_exact(65)
        .map(|r| (r[..64].try_into().unwrap(), r[64]))
        .collect()
}

#[test]
fn accuracy_on_the_heldout_split_is_at_least_97_percent() {
    let model = DigitsMlp::from_safetensors(MODEL).unwrap();
    assert_eq!(model.hidden(), 32);
    let samples = heldout();
    assert_eq!(samples.len(), 450);
    let correct = samples
        .iter()
        .filter(|(px, label)| model.classify(px).digit == *label)
        .count();
    let accuracy = correct as f64 / samples.len() as f64;
    println!(
        "digits held-out accuracy: {correct}/{} = {:.2} %",
        samples.len(),
        100.0 * accuracy
    );
    assert!(accuracy >= 0.97, "accuracy {accuracy}");
    // Every class is in the split (it is stratified).
    for class in 0..CLASSES as u8 {
        assert!(samples.iter().any(|(_, l)| *l == class));
    }
}

#[test]
fn model_file_is_under_100_kb() {
    assert!(MODEL.len() < 100 * 1024, "{} bytes", MODEL.len());
}

#[test]
fn any_pixels_classify_without_panic() {
    let model = DigitsMlp::from_safetensors(MODEL).unwrap();
    for fill in [0u8, 16, 17, 255] {
        let p = model.classify(&[fill; INPUTS]);
        assert!(p.digit < 10);
    }
}

/// A safetensors file with the given F32 tensors, each filled with `value`.
fn file(tensors: &[(&str, &[usize])], value: f32) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let n: usize = shape.iter().product();
        let start = data.len();
        for _ in 0..n {
            data.extend_from_slice(&value.to_le_bytes());
        }
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
            data.len()
        ));
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

#[test]
fn bad_models_are_refused() {
    let good: [(&str, &[usize]); 4] = [
        ("fc1.weight", &[8, 64]),
        ("fc1.bias", &[8]),
        ("fc2.weight", &[10, 8]),
        ("fc2.bias", &[10]),
    ];
    assert_eq!(
        DigitsMlp::from_safetensors(&file(&good, 0.5))
            .unwrap()
            .hidden(),
        8
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", MODEL[..MODEL.len() - 1].to_vec()),
        ("missing fc2.bias", file(&good[..3], 0.5)),
        (
            "input width 63",
            file(&[("fc1.weight", &[8, 63]), good[1], good[2], good[3]], 0.5),
        ),
        (
            "hidden 0",
            file(
                &[
                    ("fc1.weight", &[0, 64]),
                    ("fc1.bias", &[0]),
                    ("fc2.weight", &[10, 0]),
                    good[3],
                ],
                0.5,
            ),
        ),
        (
            "hidden 1025",
            file(
                &[
                    ("fc1.weight", &[1025, 64]),
                    ("fc1.bias", &[1025]),
                    ("fc2.weight", &[10, 1025]),
                    good[3],
                ],
                0.5,
            ),
        ),
        (
            "bias mismatch",
            file(&[good[0], ("fc1.bias", &[7]), good[2], good[3]], 0.5),
        ),
        (
            "fc2 mismatch",
            file(&[good[0], good[1], ("fc2.weight", &[10, 7]), good[3]], 0.5),
        ),
        (
            "11 classes",
            file(
                &[
                    good[0],
                    good[1],
                    ("fc2.weight", &[11, 8]),
                    ("fc2.bias", &[11]),
                ],
                0.5,
            ),
        ),
        ("NaN weights", file(&good, f32::NAN)),
        ("infinite weights", file(&good, f32::INFINITY)),
    ];
    for (what, bytes) in cases {
        let err = DigitsMlp::from_safetensors(&bytes).expect_err(what);
        assert!(
            matches!(
                err,
                Error::BadSafetensors(_) | Error::MissingTensor(_) | Error::BadTensor(_)
            ),
            "{what}: {err}"
        );
    }
}

#[test]
fn every_truncation_and_header_byte_flip_is_handled_without_panic() {
    for len in 0..MODEL.len() {
        let _ = DigitsMlp::from_safetensors(&MODEL[..len]);
    }
    let header_end = 8 + u64::from_le_bytes(MODEL[..8].try_into().unwrap()) as usize;
    for i in 0..header_end {
        for bit in 0..8 {
            let mut m = MODEL.to_vec();
            m[i] ^= 1 << bit;
            if let Ok(model) = DigitsMlp::from_safetensors(&m) {
                let _ = model.classify(&[8; INPUTS]);
            }
        }
    }
}
