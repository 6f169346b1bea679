//! ai-client: a program in the OS using the AI server through `ai_api::ai`, the way any
//! service would. It lists the models and their states; then, if a `digits` model serves,
//! it classifies every image of its held-out split (a `file` cap:
//! `models/digits-heldout.bin`, the file `models/digits/README.md` describes), prints the
//! accuracy and checks that the server refuses what it must (an unknown model, a refused
//! one, a request of the wrong kind, a pixel out of range, an image of the wrong size); if a
//! `minilm` model serves, it embeds the reference sentences (`models/minilm-reference.bin`,
//! from PyTorch) and compares token ids and vectors. `qemu::ai` and `qemu::ai_minilm` read
//! its lines.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

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

    refusals_logged(&models);
    if models.iter().any(|m| m.name == "digits") {
        digits(&server, &models)?;
    }
    if models.iter().any(|m| m.name == "hostile") {
        hostile(&server)?;
    }
    if models.iter().any(|m| m.name == "minilm") {
        minilm(&server)?;
    }
    println!("ai-client: done");
    Ok(())
}

/// The security log's records of refused models (init's, through the status supervisor
/// cap the manifest gives this program; found by its badge).
fn refusals_logged(models: &[ai_api::ModelStatus]) {
    let supervisor = (2..64).map(libcap::CapSlot::new).find(|&slot| {
        libcap::sys::cap_identify(slot).is_ok_and(|info| info.badge.value() == init_api::STATUS_BADGE)
    });
    let Some(supervisor) = supervisor else { return };
    // Only the AI server's report badge may add such a record: a forged one is refused.
    let forged = init_api::Request::ReportModelRefused { model: 0, check: init_api::check_bytes("forged") };
    match libcap::ipc::call::<_, init_api::Reply>(supervisor, init_api::LABEL, &forged) {
        Ok(init_api::Reply::NotPermitted) => println!("ai-client: a refusal reported through a status cap: NotPermitted"),
        other => println!("ai-client: a refusal reported through a status cap: FAILED: {other:?}"),
    }
    let ask = |number| libcap::ipc::call::<_, init_api::Reply>(supervisor, init_api::LABEL, &init_api::Request::Log { number });
    let mut number = 0;
    while let Ok(init_api::Reply::Log(record)) = ask(number) {
        if let init_api::LogEvent::ModelRefused { model, check } = record.event {
            let name = models.get(usize::from(model)).map_or("?", |m| m.name.as_str());
            println!(
                "ai-client: security log #{}: {} refused model {name} at boot (check {})",
                record.number,
                record.program,
                init_api::check_name(&check)
            );
        }
        number = record.number + 1;
    }
}

/// The held-out split through the `digits` model, and the server's refusals.
fn digits(server: &ai::Client, models: &[ai_api::ModelStatus]) -> Result<(), ErrorCode> {
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
    Ok(())
}

/// The `hostile` model's sandbox crashes on an embedding and spins on a classification:
/// the server answers SandboxFailed, then (after init restarted the sandbox and the server
/// reloaded it) Timeout, and the digits model answers all along.
fn hostile(server: &ai::Client) -> Result<(), ErrorCode> {
    let image: Vec<u8, DIGITS_PIXELS> = Vec::from_slice(&[0; DIGITS_PIXELS]).unwrap_or_default();
    refusal("a sandbox that crashes on the request", server.embed(name("hostile"), "x".try_into().unwrap_or_default()), AiError::SandboxFailed);
    refusal("a sandbox that spins forever", server.classify(name("hostile"), image.clone()), AiError::Timeout);
    match server.classify(name("digits"), image) {
        Ok(Ok(_)) => println!("ai-client: the digits model still answers beside the hostile one"),
        other => println!("ai-client: the digits model after the hostile one: FAILED: {other:?}"),
    }
    Ok(())
}

/// Reads a little-endian u32 at `*at`, moving past it.
fn take_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let word = bytes.get(*at..*at + 4)?;
    *at += 4;
    Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
}

/// The reference sentences through the `minilm` model: token ids exact, cosine >= 0.9999.
fn minilm(server: &ai::Client) -> Result<(), ErrorCode> {
    let reference = libcap::files::map(slots::HEAP_SPACE, caps::REFERENCE.slot())?;
    let bad = || {
        println!("ai-client: the reference file is not MINIREF1");
        ErrorCode::InvalidArgument
    };
    if reference.get(..8) != Some(b"MINIREF1".as_slice()) {
        return Err(bad());
    }
    let mut at = 8;
    let count = take_u32(reference, &mut at).ok_or_else(bad)?;
    let mut worst = f32::INFINITY;
    for index in 0..count {
        let length = take_u32(reference, &mut at).ok_or_else(bad)? as usize;
        let text = reference.get(at..at + length).and_then(|t| core::str::from_utf8(t).ok()).ok_or_else(bad)?;
        at += length;
        let ids = take_u32(reference, &mut at).ok_or_else(bad)? as usize;
        let token_ids: Option<alloc::vec::Vec<u32>> = (0..ids).map(|_| take_u32(reference, &mut at)).collect();
        let dim = take_u32(reference, &mut at).ok_or_else(bad)? as usize;
        let expected: Option<alloc::vec::Vec<f32>> = (0..dim).map(|_| take_u32(reference, &mut at).map(f32::from_bits)).collect();
        let (token_ids, expected) = (token_ids.ok_or_else(bad)?, expected.ok_or_else(bad)?);
        let embedding = match server.embed(name("minilm"), text.try_into().unwrap_or_default()) {
            Ok(Ok(embedding)) => embedding,
            other => {
                println!("ai-client: minilm: sentence {index}: FAILED: {other:?}");
                return Err(ErrorCode::InvalidArgument);
            }
        };
        let dot: f32 = embedding.vector.iter().zip(&expected).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| libm::sqrtf(v.iter().map(|x| x * x).sum());
        let cosine = dot / (norm(&embedding.vector) * norm(&expected));
        let ids_exact = embedding.token_ids.as_slice() == token_ids.as_slice();
        let verdict = if ids_exact && cosine >= 0.9999 && embedding.vector.len() == dim { "matches" } else { "FAILED" };
        println!(
            "ai-client: minilm: sentence {index}: {} token ids {}, cosine {cosine:.6} against PyTorch: {verdict}",
            embedding.token_ids.len(),
            if ids_exact { "exact" } else { "DIFFER" }
        );
        worst = worst.min(cosine);
    }
    println!("ai-client: minilm: {count} sentences embedded through IPC, worst cosine {worst:.6}");
    Ok(())
}
