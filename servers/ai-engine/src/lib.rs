//! ai-engine: a small `no_std` inference engine for the models Democratizing AI OS ships.
//!
//! It turns text into all-MiniLM-L6-v2 sentence embeddings: a BERT WordPiece
//! [`tokenizer`], a zero-copy [`safetensors`] view (weights stay in the loaded file, read
//! only), SIMD [`tensor`] kernels and the [`bert`] encoder with mean pooling and L2
//! normalisation. Quantised int8 weights are an option ([`bert::Bert::quantized_int8`]).
//!
//! # Design
//!
//! 1. Target-neutral: `no_std` + `alloc`, no std-only feature detection. Inside the OS the
//!    engine runs in a user process built with hardware floats.
//! 2. All `unsafe` is in [`simd`] (feature dispatch and vector loads); the rest of the crate
//!    denies it. An [`simd::Isa`] value is the proof that a SIMD path may run.
//! 3. No panics on any input: every failure is an [`Error`].
//! 4. No copy of the weights: the big matrices are `&[u8]` into the file, read unaligned.
//!
//! # Performance
//!
//! `cargo xtask bench ai` compares against ONNX Runtime 1.32 and candle 0.11 (one thread
//! each, same run); `README.md` has the figures and the profile. On the shared 2-core AMD
//! EPYC dev machine (AVX-512 with VNNI) the f32 engine takes 1.1-1.3x ONNX Runtime's f32
//! time (AVX-512 gives only ~13% over AVX2 there: a 512-bit FMA issues about once a cycle),
//! about half of candle's; the int8 option with VNNI takes 0.4-0.65x ORT's f32 time. Heap
//! beyond the weights: about 6 MB for 256-token sequences (4.3 MB of it activation
//! scratch). The int8 option costs 10.9 MB more (plus 0.4 MB of u8 activation scratch on
//! VNNI) and drops the worst fixture cosine to 0.9922 with VNNI (0.9965 without).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod bert;
pub mod digits;
pub mod error;
pub mod safetensors;
pub mod simd;
pub mod tensor;
pub mod tokenizer;

pub use bert::{Bert, Config, Embedder, Scratch};
pub use error::Error;
pub use simd::Isa;
