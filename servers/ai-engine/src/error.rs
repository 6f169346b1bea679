//! The engine's one error type.

use core::fmt;

/// Everything that can go wrong in the engine. No engine function panics on any input;
/// it returns one of these instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The safetensors file is malformed (truncated, bad header, offsets out of range).
    BadSafetensors(&'static str),
    /// A tensor the model needs is absent from the file.
    MissingTensor(alloc::string::String),
    /// A tensor has the wrong dtype, shape or byte length.
    BadTensor(&'static str),
    /// The vocabulary is malformed (e.g. lacks `[CLS]`, `[SEP]` or `[UNK]`).
    BadVocab(&'static str),
    /// A token id is outside the embedding table.
    TokenOutOfRange(u32),
    /// More tokens than the model's position table (or the scratch space) holds.
    TooManyTokens { got: usize, max: usize },
    /// No tokens at all (an encoded text always has at least `[CLS]` and `[SEP]`).
    NoTokens,
    /// Buffer sizes passed to a kernel do not match the shapes.
    BadShape,
    /// An allocation failed.
    OutOfMemory,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadSafetensors(why) => write!(f, "malformed safetensors file: {why}"),
            Error::MissingTensor(name) => write!(f, "tensor `{name}` is missing"),
            Error::BadTensor(why) => write!(f, "bad tensor: {why}"),
            Error::BadVocab(why) => write!(f, "bad vocabulary: {why}"),
            Error::TokenOutOfRange(id) => write!(f, "token id {id} is outside the vocabulary"),
            Error::TooManyTokens { got, max } => write!(f, "{got} tokens, at most {max} allowed"),
            Error::NoTokens => write!(f, "no tokens to embed"),
            Error::BadShape => write!(f, "buffer sizes do not match tensor shapes"),
            Error::OutOfMemory => write!(f, "out of memory"),
        }
    }
}

impl core::error::Error for Error {}
