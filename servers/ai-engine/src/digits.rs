//! The bundled digits classifier: an MLP on 8x8 images (scikit-learn's digits data set).
//!
//! Layers: `hidden = relu(fc1.weight · x + fc1.bias)`, `logits = fc2.weight · hidden + fc2.bias`,
//! with `x = pixel / 16` (pixels are 0..=16). Weights are F32 in PyTorch layout (`[out, in]`),
//! as `models/digits/train.py` writes them; the hidden width is read from the file (the
//! bundled model has 32). It is the default model when MiniLM has not been fetched, and the
//! fast one for in-QEMU tests.
//!
//! The weight matrices are read in place from the safetensors bytes (decoded per use, no
//! copy); the two bias vectors are copied (42 floats). Shapes are validated and non-finite
//! weights refused when the model is built, so inference itself cannot fail.

use alloc::vec::Vec;

use crate::error::Error;
use crate::safetensors::SafeTensors;

/// Pixels per image (8x8).
pub const INPUTS: usize = 64;
/// Classes: the digits 0 to 9.
pub const CLASSES: usize = 10;
/// Largest hidden layer accepted (bounds the per-call work and the stack buffer).
pub const MAX_HIDDEN: usize = 1024;
/// Highest pixel value in the training data; inputs are divided by it.
pub const PIXEL_MAX: u8 = 16;

/// The classifier, borrowing its weight matrices from the safetensors file.
///
/// # Invariants
///
/// `1 <= hidden <= MAX_HIDDEN`; `fc1_w.len() == hidden * INPUTS * 4`,
/// `fc2_w.len() == CLASSES * hidden * 4`, `fc1_b.len() == hidden`; every weight is finite.
/// Kept by [`DigitsMlp::from_safetensors`], the only constructor.
#[derive(Clone, Debug)]
pub struct DigitsMlp<'a> {
    hidden: usize,
    fc1_w: &'a [u8],
    fc1_b: Vec<f32>,
    fc2_w: &'a [u8],
    fc2_b: [f32; CLASSES],
}

/// A classification: the digit and the logits it won with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    pub digit: u8,
    pub logits: [f32; CLASSES],
}

fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

impl<'a> DigitsMlp<'a> {
    /// Validates `file` (a safetensors file with `fc1.weight [H,64]`, `fc1.bias [H]`,
    /// `fc2.weight [10,H]`, `fc2.bias [10]`, all F32) and borrows its weights.
    pub fn from_safetensors(file: &'a [u8]) -> Result<Self, Error> {
        let st = SafeTensors::parse(file)?;
        let fc1 = st.get("fc1.weight")?;
        let hidden = match fc1.shape() {
            [h, INPUTS] if (1..=MAX_HIDDEN).contains(h) => *h,
            _ => return Err(Error::BadTensor("fc1.weight must be [hidden <= 1024, 64]")),
        };
        fc1.matrix(hidden, INPUTS)?;
        let fc2 = st.get("fc2.weight")?;
        fc2.matrix(CLASSES, hidden)?;
        let fc1_b = st.get("fc1.bias")?.vector(hidden)?;
        let mut fc2_b = [0.0; CLASSES];
        fc2_b.copy_from_slice(&st.get("fc2.bias")?.vector(CLASSES)?);
        let (fc1_w, fc2_w) = (fc1.bytes(), fc2.bytes());
        let all_finite = floats(fc1_w)
            .chain(floats(fc2_w))
            .chain(fc1_b.iter().copied())
            .chain(fc2_b.iter().copied())
            .all(f32::is_finite);
        if !all_finite {
            return Err(Error::BadTensor("digits weights must be finite"));
        }
        Ok(DigitsMlp {
            hidden,
            fc1_w,
            fc1_b,
            fc2_w,
            fc2_b,
        })
    }

    /// Hidden layer width.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Logits for an input already scaled to the training range (pixel / 16).
    pub fn logits(&self, input: &[f32; INPUTS]) -> [f32; CLASSES] {
        let mut hidden = [0.0f32; MAX_HIDDEN];
        let rows = self.fc1_w.chunks_exact(INPUTS * 4);
        for ((h, row), b) in hidden.iter_mut().zip(rows).zip(&self.fc1_b) {
            let sum = floats(row).zip(input).fold(*b, |acc, (w, x)| acc + w * x);
            *h = sum.max(0.0);
        }
        let hidden = hidden.get(..self.hidden).unwrap_or_default();
        let mut logits = self.fc2_b;
        for (l, row) in logits
            .iter_mut()
            .zip(self.fc2_w.chunks_exact(self.hidden * 4))
        {
            *l += floats(row).zip(hidden).fold(0.0, |acc, (w, h)| acc + w * h);
        }
        logits
    }

    /// Classifies an 8x8 image, row-major, pixel values 0..=16 (larger values are accepted
    /// and simply lie outside the training range).
    pub fn classify(&self, pixels: &[u8; INPUTS]) -> Prediction {
        let mut input = [0.0f32; INPUTS];
        for (x, &p) in input.iter_mut().zip(pixels) {
            *x = f32::from(p) / f32::from(PIXEL_MAX);
        }
        let logits = self.logits(&input);
        Prediction {
            digit: argmax(&logits),
            logits,
        }
    }
}

/// Index of the largest logit; the first on ties. Total order, so no panic on any value.
fn argmax(logits: &[f32; CLASSES]) -> u8 {
    let mut best = (0u8, logits[0]);
    for (i, &l) in (0u8..).zip(logits).skip(1) {
        if l.total_cmp(&best.1).is_gt() {
            best = (i, l);
        }
    }
    best.0
}
