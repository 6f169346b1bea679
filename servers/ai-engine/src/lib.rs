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
//! `cargo xtask bench ai` compares against candle 0.11 (one thread each). On the 2-core
//! AMD EPYC dev machine, quiet: 4.1 ms at 16 tokens and 29.6 ms at 128 tokens (AVX2+FMA),
//! about 0.45-0.6x candle's time; the GEMM runs at roughly 80-90 GFLOP/s, near the AVX2
//! FMA peak of one core, so the next step up would be AVX-512, not more tuning. Heap
//! beyond the weights: about 6 MB for 256-token sequences (4.3 MB of it activation
//! scratch). The int8 option costs 10.8 MB more, is faster only at short sequences, and
//! drops the worst fixture cosine to 0.9965.
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
