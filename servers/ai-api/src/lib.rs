//! The AI server's two interfaces, one crate for every side (Hubris's `*-api` pattern).
//!
//! - [`ai`]: what a program in the OS asks the AI server (`servers/ai`): which models there
//!   are and in what state, and inference on one of them by name.
//! - [`sandbox`]: what the AI server asks a model's sandbox (`userland/model-sandbox`):
//!   first `load` (the verified container, as a read-only frame cap, and where its payload
//!   lies), then inference. Only the AI server holds a cap to a sandbox's endpoint (the
//!   manifest checker refuses any other holder), so a sandbox answers nobody else.
//!
//! Every message fits one IPC message (`libcap::ipc::MAX_BYTES`): texts are bounded
//! ([`MAX_TEXT`]), an embedding has at most [`MAX_DIM`] numbers.
#![no_std]
#![forbid(unsafe_code)]

use libcap::heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// The longest model name.
pub const MAX_NAME: usize = 32;
/// The longest text an `embed` request carries, in bytes (a model's own `max_input_bytes`
/// may be lower).
pub const MAX_TEXT: usize = 2048;
/// The most numbers in an embedding (MiniLM has 384).
pub const MAX_DIM: usize = 384;
/// The most token ids an embedding reports (MiniLM truncates at 256).
pub const MAX_TOKENS: usize = 256;
/// The pixels of a digits image: 8x8, each 0..=16.
pub const DIGITS_PIXELS: usize = 64;
/// The most models `models` lists.
pub const MAX_MODELS: usize = 8;

/// A model's name.
pub type ModelName = String<MAX_NAME>;

/// Why a request was not answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AiError {
    /// No model of this name is in the manifest.
    UnknownModel,
    /// The model was refused at boot; the check that failed is in `models`.
    Refused,
    /// The model does not do this kind of request (an image for a text model, say).
    WrongKind,
    /// The input is larger than the model's `max_input_bytes`, or malformed (a pixel above
    /// 16, a digits image that is not 64 pixels).
    BadInput,
    /// The sandbox died with the request (it is being restarted); ask again.
    SandboxFailed,
    /// The model did not answer within its `deadline_ms`; the server gave up on it.
    Timeout,
    /// The model failed on this input (the engine's error).
    Engine,
}

/// A model's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelState {
    /// Verified, loaded in its sandbox, answering.
    Ready,
    /// Refused at boot: the named check of the container that failed (`signature`,
    /// `payload hash`, `untrusted key`, `memory budget`...).
    Refused(String<64>),
    /// Verified, but its sandbox would not load it (or is down); retried on the next request.
    Unavailable,
}

/// One model as `models` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStatus {
    pub name: ModelName,
    /// The container's architecture (`digits-mlp`, `minilm-l6-v2`), or empty if refused
    /// before it could be read.
    pub architecture: String<32>,
    pub state: ModelState,
    pub max_input_bytes: u32,
    /// Requests answered since boot.
    pub served: u32,
}

/// A digits classification.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub class: u8,
    /// The winning logit.
    pub score: f32,
}

/// A sentence embedding and the tokens it was computed from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// L2-normalised.
    pub vector: Vec<f32, MAX_DIM>,
    /// The tokenizer's ids, `[CLS]` and `[SEP]` included.
    pub token_ids: Vec<u32, MAX_TOKENS>,
}

libcap::interface! {
    /// The AI server, for programs in the OS.
    pub interface ai (label = 40) {
        /// Every model of the manifest, in name order, with its state.
        fn models() -> Vec<ModelStatus, MAX_MODELS>;
        /// Classify an 8x8 digits image (64 pixels, each 0..=16).
        fn classify(model: ModelName, pixels: Vec<u8, DIGITS_PIXELS>) -> Result<Classification, AiError>;
        /// Embed a text.
        fn embed(model: ModelName, text: String<MAX_TEXT>) -> Result<Embedding, AiError>;
    }
}

/// What a container's payload is, for `load`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    DigitsMlp,
    MiniLmL6V2,
}

/// Where, inside the container frame `load` carries, the verified payload's parts lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub architecture: Architecture,
    /// The safetensors file: byte offset and length.
    pub safetensors: (u64, u64),
    /// The vocabulary (MiniLM), or (0, 0).
    pub vocab: (u64, u64),
}

/// Why a sandbox could not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxError {
    /// Inference before `load`, or a second `load`.
    NotLoaded,
    AlreadyLoaded,
    /// `load` came without exactly one frame cap, or the layout lies outside it.
    BadLoad,
    /// The request's kind does not fit the loaded model.
    WrongKind,
    BadInput,
    /// The engine refused the weights or the input.
    Engine,
}

libcap::interface! {
    /// A model's sandbox, for the AI server only.
    pub interface sandbox (label = 41) {
        /// Take the verified container (the one cap sent: a read-only frame) and build the
        /// model from the payload at `layout`.
        fn load(layout: Layout) -> Result<(), SandboxError>, with caps;
        fn classify(pixels: Vec<u8, DIGITS_PIXELS>) -> Result<Classification, SandboxError>;
        fn embed(text: String<MAX_TEXT>) -> Result<Embedding, SandboxError>;
    }
}
