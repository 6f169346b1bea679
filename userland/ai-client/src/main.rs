//! ai-client: a program in the OS using the AI server through `ai_api::ai`, the way any
//! service would. It lists the models and their states, classifies every image of the
//! digits model's held-out split (a `file` cap: `models/digits-heldout.bin`, the file
//! `models/digits/README.md` describes) and prints the accuracy, then checks that the
//! server refuses what it must: an unknown model, a refused one, a request of the wrong
//! kind, a pixel out of range, an image of the wrong size. `qemu::ai` reads its lines.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ai_api::{AiError, DIGITS_PIXELS, ModelName, ModelState, ai};
use libcap::heapless::Vec;
use libcap::{ErrorCode, println, slots};

libcap::entry!(main, caps);

libcap::caps!();

/// `heldout.bin`: the magic, a u32 count, then records of 64 pixels and the label.
const MAGIC: &[u8; 8] = b"DIGHELD1";
const RECORD: usize = DIGITS_PIXELS + 1;

fn name(text: &str) -> ModelName {
    text.try_into().unwrap_or_default()
}

/// Prints what the server answered to a request that must be refused with `expected`.
fn refusal<T: core::fmt::Debug>(what: &str, reply: Result<Result<T, AiError>, libcap::ipc::CallError>, expected: AiError) {
    match reply {
        Ok(Err(error)) if error == expected => println!("ai-client: {what}: refused as {error:?}"),
        other => println!("ai-client: {what}: FAILED: expected {expected:?}, got {other:?}"),
    }
}

fn main() -> Result<(), ErrorCode> {
    let server = ai::Client::new(caps::AI);
    let models = server.models().map_err(|_| ErrorCode::PeerGone)?;
    for model in &models {
        let (state, check) = match &model.state {
            ModelState::Ready => ("ready", ""),
            ModelState::Unavailable => ("unavailable", ""),
            ModelState::Refused(check) => ("refused", check.as_str()),
        };
        match check {
            "" => println!("ai-client: model {} [{}]: {state}", model.name, model.architecture),
            _ => println!("ai-client: model {} [{}]: {state} ({check})", model.name, model.architecture),
        }
    }

    let heldout = libcap::files::map(slots::HEAP_SPACE, caps::HELDOUT.slot())?;
    let count = match heldout.get(..12) {
        Some(head) if &head[..8] == MAGIC => u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
        _ => {
            println!("ai-client: the held-out file is not DIGHELD1");
            return Err(ErrorCode::InvalidArgument);
        }
    };
    let records = heldout.get(12..).unwrap_or(&[]).chunks_exact(RECORD).take(count);
    let (mut correct, mut asked) = (0u32, 0u32);
    for record in records {
        let pixels: Vec<u8, DIGITS_PIXELS> = Vec::from_slice(&record[..DIGITS_PIXELS]).unwrap_or_default();
        match server.classify(name("digits"), pixels) {
            Ok(Ok(answer)) => correct += u32::from(answer.class == record[DIGITS_PIXELS]),
            other => {
                println!("ai-client: image {asked}: FAILED: {other:?}");
                return Err(ErrorCode::InvalidArgument);
            }
        }
        asked += 1;
    }
    println!("ai-client: digits: {correct}/{asked} held-out images classified correctly");

    let image: Vec<u8, DIGITS_PIXELS> = Vec::from_slice(&[0; DIGITS_PIXELS]).unwrap_or_default();
    refusal("unknown model", server.classify(name("nonesuch"), image.clone()), AiError::UnknownModel);
    if models.iter().any(|m| m.name == "flipped-weights") {
        refusal("refused model", server.classify(name("flipped-weights"), image.clone()), AiError::Refused);
    }
    refusal("text to the digits model", server.embed(name("digits"), "hello".try_into().unwrap_or_default()), AiError::WrongKind);
    let mut bright = image.clone();
    bright[0] = 17;
    refusal("pixel above 16", server.classify(name("digits"), bright), AiError::BadInput);
    let short: Vec<u8, DIGITS_PIXELS> = Vec::from_slice(&[0; 10]).unwrap_or_default();
    refusal("image of 10 pixels", server.classify(name("digits"), short), AiError::BadInput);
    println!("ai-client: done");
    Ok(())
}
