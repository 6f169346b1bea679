//! model-sandbox: one model, run in a process that holds only what the model needs.
//!
//! Its authority (a `[models.NAME]` entry of system.toml, expanded by the manifest
//! checker): receive on its request endpoint (`caps::REQUESTS`), and a heap through the
//! memory server with its own quota (`libcap::slots::HEAP_MEMORY`, `HEAP_SPACE`). No
//! console, no other endpoint, no device, no audit, no supervisor: `[security.sandbox]`
//! and the leak suite (AUDIT-BOOT-005, against the manifest) hold it to that.
//!
//! Only the AI server holds a cap to the endpoint (the checker refuses any other holder),
//! so every request comes from it. The first is `load`: the verified container as a
//! read-only frame (an immutable slice of the boot image, mapped here, never copied) and
//! where its payload lies. Until then, inference is refused with `NotLoaded`; after it, a
//! second `load` with `AlreadyLoaded`. A fault here ends only this process: init restarts
//! it (with back-off) and the AI server loads it again.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use ai_api::{Architecture, Classification, DIGITS_PIXELS, Embedding, Layout, MAX_TEXT, SandboxError, sandbox};
use ai_engine::Embedder;
use ai_engine::digits::DigitsMlp;
use libcap::heapless::{String, Vec};
use libcap::ipc::SendCaps;
use libcap::{Badge, CapSlot, ErrorCode, slots, sys};

libcap::entry!(main, caps);

libcap::caps!();

/// Where the container frame sent with `load` lands (the manifest's caps end below it); the
/// server loop clears it after each reply, so `load` moves the frame on to [`WEIGHTS`].
const ARRIVING: CapSlot = CapSlot::new(8);
/// Where the loaded container's frame stays for the life of the process (deleting it would
/// unmap the weights); the leak suite expects it there.
const WEIGHTS: CapSlot = CapSlot::new(manifest::SANDBOX_WEIGHTS_SLOT);

enum Model {
    None,
    Digits(DigitsMlp<'static>),
    MiniLm(alloc::boxed::Box<Embedder<'static>>),
}

struct Sandbox {
    model: Model,
}

/// The bytes of `file` at `(offset, length)`, if they lie inside it.
fn part(file: &'static [u8], (offset, length): (u64, u64)) -> Result<&'static [u8], SandboxError> {
    let start = usize::try_from(offset).map_err(|_| SandboxError::BadLoad)?;
    let length = usize::try_from(length).map_err(|_| SandboxError::BadLoad)?;
    start.checked_add(length).and_then(|end| file.get(start..end)).ok_or(SandboxError::BadLoad)
}

impl Sandbox {
    fn load(&mut self, layout: Layout, arrived: &[CapSlot]) -> Result<(), SandboxError> {
        if !matches!(self.model, Model::None) {
            return Err(SandboxError::AlreadyLoaded);
        }
        let [frame] = arrived else { return Err(SandboxError::BadLoad) };
        sys::cap_move(*frame, WEIGHTS).map_err(|_| SandboxError::BadLoad)?;
        let built = Self::build(layout);
        if built.is_err() {
            // Unmaps it too: a later `load` starts clean.
            let _ = sys::cap_delete(WEIGHTS);
        }
        self.model = built?;
        Ok(())
    }

    /// The model from the frame in [`WEIGHTS`], mapped read-only for the life of the process.
    fn build(layout: Layout) -> Result<Model, SandboxError> {
        let file = libcap::files::map(slots::HEAP_SPACE, WEIGHTS).map_err(|_| SandboxError::BadLoad)?;
        let weights = part(file, layout.safetensors)?;
        Ok(match layout.architecture {
            Architecture::DigitsMlp => {
                Model::Digits(DigitsMlp::from_safetensors(weights).map_err(|_| SandboxError::Engine)?)
            }
            Architecture::MiniLmL6V2 => {
                let vocab = part(file, layout.vocab)?;
                Model::MiniLm(alloc::boxed::Box::new(Embedder::minilm(weights, vocab).map_err(|_| SandboxError::Engine)?))
            }
        })
    }
}

impl sandbox::Server for Sandbox {
    fn load(&mut self, _badge: Badge, layout: Layout, arrived: &[CapSlot]) -> (Result<(), SandboxError>, SendCaps) {
        (Sandbox::load(self, layout, arrived), SendCaps::new())
    }

    fn classify(&mut self, _badge: Badge, pixels: Vec<u8, DIGITS_PIXELS>) -> Result<Classification, SandboxError> {
        let model = match &self.model {
            Model::Digits(model) => model,
            Model::None => return Err(SandboxError::NotLoaded),
            Model::MiniLm(_) => return Err(SandboxError::WrongKind),
        };
        let image: &[u8; DIGITS_PIXELS] = pixels.as_slice().try_into().map_err(|_| SandboxError::BadInput)?;
        if image.iter().any(|&pixel| pixel > 16) {
            return Err(SandboxError::BadInput);
        }
        let prediction = model.classify(image);
        let score = prediction.logits.get(usize::from(prediction.digit)).copied().unwrap_or(f32::NAN);
        Ok(Classification { class: prediction.digit, score })
    }

    fn embed(&mut self, _badge: Badge, text: String<MAX_TEXT>) -> Result<Embedding, SandboxError> {
        let embedder = match &mut self.model {
            Model::MiniLm(embedder) => embedder,
            Model::None => return Err(SandboxError::NotLoaded),
            Model::Digits(_) => return Err(SandboxError::WrongKind),
        };
        let ids = embedder.tokenizer.encode(&text);
        let vector = embedder.embed_ids(&ids).map_err(|_| SandboxError::Engine)?;
        Ok(Embedding {
            vector: Vec::from_slice(&vector).map_err(|_| SandboxError::Engine)?,
            token_ids: Vec::from_slice(&ids).map_err(|_| SandboxError::Engine)?,
        })
    }
}

fn main() -> Result<(), ErrorCode> {
    let mut sandbox = Sandbox { model: Model::None };
    // `serve_with_caps` only returns if the endpoint itself fails.
    Err(sandbox::serve_with_caps(caps::REQUESTS, &[ARRIVING], &mut sandbox))
}
