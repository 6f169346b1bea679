//! The model architectures this loader knows, and the tensors each one needs.
//!
//! The check is structural: names, dtype (F32) and shapes. Extra tensors are allowed (the
//! MiniLM export carries `embeddings.position_ids` and a pooler the engine does not use).

use alloc::format;
use alloc::string::String;

use safetensors::{Dtype, SafeTensors};

use crate::error::ContainerError;

/// Inputs of the digits classifier: an 8x8 image.
pub const DIGITS_INPUTS: usize = 64;
/// Classes of the digits classifier: 0 to 9.
pub const DIGITS_CLASSES: usize = 10;
/// Largest hidden layer the loader accepts for the digits MLP (keeps its buffers small).
pub const MAX_DIGITS_HIDDEN: usize = 1024;

const MINILM_VOCAB: usize = 30522;
const MINILM_HIDDEN: usize = 384;
const MINILM_INTERMEDIATE: usize = 1536;
const MINILM_POSITIONS: usize = 512;
const MINILM_LAYERS: usize = 6;

/// A model architecture the loader knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// sentence-transformers all-MiniLM-L6-v2: BERT, 6 layers, hidden 384, WordPiece vocab.
    MiniLmL6V2,
    /// The bundled digits classifier: 64 -> hidden (ReLU) -> 10, tensors `fc1.*`, `fc2.*`.
    DigitsMlp,
}

impl Architecture {
    /// Every known architecture.
    pub const ALL: [Architecture; 2] = [Architecture::MiniLmL6V2, Architecture::DigitsMlp];

    /// The name used in manifests and on the xtask command line.
    pub const fn name(self) -> &'static str {
        match self {
            Architecture::MiniLmL6V2 => "minilm-l6-v2",
            Architecture::DigitsMlp => "digits-mlp",
        }
    }

    /// The architecture called `name`, if known.
    pub fn from_name(name: &str) -> Option<Architecture> {
        Architecture::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The tokenizer the manifest must name.
    pub const fn tokenizer(self) -> &'static str {
        match self {
            Architecture::MiniLmL6V2 => "bert-wordpiece-uncased",
            Architecture::DigitsMlp => "none",
        }
    }

    /// Whether the payload must carry a vocabulary (and must not, if false).
    pub const fn needs_vocab(self) -> bool {
        match self {
            Architecture::MiniLmL6V2 => true,
            Architecture::DigitsMlp => false,
        }
    }

    /// Checks that the tensors this architecture needs are present, F32, and well shaped.
    pub(crate) fn check_tensors(self, tensors: &SafeTensors<'_>) -> Result<(), ContainerError> {
        match self {
            Architecture::DigitsMlp => check_digits(tensors),
            Architecture::MiniLmL6V2 => check_minilm(tensors),
        }
    }
}

fn shape_of(
    tensors: &SafeTensors<'_>,
    name: &str,
) -> Result<alloc::vec::Vec<usize>, ContainerError> {
    let view = tensors
        .tensor(name)
        .map_err(|_| ContainerError::MissingTensor {
            name: String::from(name),
        })?;
    if view.dtype() != Dtype::F32 {
        return Err(ContainerError::TensorMismatch {
            name: String::from(name),
            reason: format!("dtype is {:?}, expected F32", view.dtype()),
        });
    }
    Ok(view.shape().into())
}

fn expect_shape(
    tensors: &SafeTensors<'_>,
    name: &str,
    want: &[usize],
) -> Result<(), ContainerError> {
    let got = shape_of(tensors, name)?;
    if got.as_slice() == want {
        Ok(())
    } else {
        Err(ContainerError::TensorMismatch {
            name: String::from(name),
            reason: format!("shape is {got:?}, expected {want:?}"),
        })
    }
}

fn check_digits(tensors: &SafeTensors<'_>) -> Result<(), ContainerError> {
    let fc1 = shape_of(tensors, "fc1.weight")?;
    let hidden = match fc1.as_slice() {
        [h, DIGITS_INPUTS] if (1..=MAX_DIGITS_HIDDEN).contains(h) => *h,
        _ => {
            return Err(ContainerError::TensorMismatch {
                name: String::from("fc1.weight"),
                reason: format!(
                    "shape is {fc1:?}, expected [hidden, {DIGITS_INPUTS}] with 1 <= hidden <= \
                     {MAX_DIGITS_HIDDEN}"
                ),
            });
        }
    };
    expect_shape(tensors, "fc1.bias", &[hidden])?;
    expect_shape(tensors, "fc2.weight", &[DIGITS_CLASSES, hidden])?;
    expect_shape(tensors, "fc2.bias", &[DIGITS_CLASSES])
}

fn check_minilm(tensors: &SafeTensors<'_>) -> Result<(), ContainerError> {
    const H: usize = MINILM_HIDDEN;
    expect_shape(
        tensors,
        "embeddings.word_embeddings.weight",
        &[MINILM_VOCAB, H],
    )?;
    expect_shape(
        tensors,
        "embeddings.position_embeddings.weight",
        &[MINILM_POSITIONS, H],
    )?;
    expect_shape(tensors, "embeddings.token_type_embeddings.weight", &[2, H])?;
    expect_shape(tensors, "embeddings.LayerNorm.weight", &[H])?;
    expect_shape(tensors, "embeddings.LayerNorm.bias", &[H])?;
    for layer in 0..MINILM_LAYERS {
        let p = format!("encoder.layer.{layer}.");
        for name in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            expect_shape(tensors, &format!("{p}{name}.weight"), &[H, H])?;
            expect_shape(tensors, &format!("{p}{name}.bias"), &[H])?;
        }
        for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
            expect_shape(tensors, &format!("{p}{name}.weight"), &[H])?;
            expect_shape(tensors, &format!("{p}{name}.bias"), &[H])?;
        }
        expect_shape(
            tensors,
            &format!("{p}intermediate.dense.weight"),
            &[MINILM_INTERMEDIATE, H],
        )?;
        expect_shape(
            tensors,
            &format!("{p}intermediate.dense.bias"),
            &[MINILM_INTERMEDIATE],
        )?;
        expect_shape(
            tensors,
            &format!("{p}output.dense.weight"),
            &[H, MINILM_INTERMEDIATE],
        )?;
        expect_shape(tensors, &format!("{p}output.dense.bias"), &[H])?;
    }
    Ok(())
}
