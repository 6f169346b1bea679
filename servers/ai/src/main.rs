//! ai: the AI-inference server.
//!
//! At boot it reads the boot manifest (a `file` cap to `etc/system.bin`) for the models
//! (`[models.NAME]`) and verifies each one's container before any weight is used: the
//! Ed25519 signature against the manifest's trusted keys, the payload's size and SHA-256,
//! the header's bounds (`model_container::verify`); then that the key is the one the
//! manifest names for the model, and that the memory the container claims fits what its
//! sandbox is given (its heap, beyond the weights, which are mapped). A container that fails
//! is refused with the named check, on the console and in `models`, and the system goes on
//! without it. A valid one is handed, as the same read-only frame (a slice of the boot
//! image, never copied), to the model's own sandbox (`userland/model-sandbox`) with `load`.
//!
//! Requests (`ai_api::ai`, on `caps::REQUESTS`) name a model; the server checks the input
//! against the model's `max_input_bytes` and passes it to that model's sandbox. A sandbox
//! that dies with a request gets the caller `SandboxFailed`; init restarts it, and the next
//! request loads it again first.
//!
//! Its authority (system.toml): the console (write), receive on `ai`, the manifest file, a
//! heap, and per model its container (read) and a call cap to its sandbox (write, grant).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use ai_api::{
    AiError, Architecture, Classification, DIGITS_PIXELS, Embedding, Layout, MAX_MODELS, MAX_TEXT, ModelName,
    ModelState, ModelStatus, SandboxError, ai, sandbox,
};
use libcap::heapless::{self, String};
use libcap::ipc::{CallError, Caps};
use libcap::{Badge, CapSlot, ErrorCode, println, slots, sys};
use manifest::{CompiledManifest, Model};
use model_container::TrustedKeys;

libcap::entry!(main, caps);

libcap::caps!();

/// The kernel's tick, the unit of `SetCallTimeout`.
const TICK_MS: u64 = 10;
/// How long a sandbox may take to load its model (MiniLM builds its tokenizer under TCG).
const LOAD_DEADLINE_TICKS: u64 = 60_000 / TICK_MS;

/// A model of the manifest and what the server knows of it.
struct Served {
    name: ModelName,
    /// The manifest's `deadline_ms`, in kernel ticks (10 ms), rounded up.
    deadline_ticks: u64,
    architecture: String<32>,
    state: State,
    max_input_bytes: u32,
    sandbox: sandbox::Client,
    served: u32,
}

enum State {
    /// Verified; the sandbox has it loaded.
    Ready { container: CapSlot, layout: Layout },
    /// Verified, but the sandbox must load it (again) before the next request.
    Reload { container: CapSlot, layout: Layout },
    /// Refused at boot, with the failed check's name.
    Refused(&'static str),
}

/// Verifies `model`'s container and works out its payload's layout, or says which check failed.
fn admit(manifest: &CompiledManifest, model: &Model, trusted: &TrustedKeys) -> (String<32>, State) {
    let container = CapSlot::new(model.container_slot);
    let mut architecture = String::new();
    let file = match libcap::files::map(slots::HEAP_SPACE, container) {
        Ok(file) => file,
        Err(code) => {
            println!("ai: model {}: refused: its container cannot be mapped ({code:?})", model.name);
            return (architecture, State::Refused("container not mapped"));
        }
    };
    let verified = match model_container::verify(file, trusted) {
        Ok(verified) => verified,
        Err(error) => {
            println!("ai: model {}: refused: check \"{}\" failed: {error}", model.name, error.check());
            return (architecture, State::Refused(error.check().name()));
        }
    };
    let _ = architecture.push_str(verified.architecture().name());
    let signer = trusted.name(verified.key_id()).unwrap_or("?");
    if signer != model.key {
        println!(
            "ai: model {}: refused: check \"signing key\" failed: signed by \"{signer}\", the manifest wants \"{}\"",
            model.name, model.key
        );
        return (architecture, State::Refused("signing key"));
    }
    let claim = verified.manifest().memory_budget_bytes;
    let heap = sandbox_heap_bytes(manifest, model);
    let allowed = heap.saturating_add(verified.manifest().payload_size);
    if claim > allowed {
        println!(
            "ai: model {}: refused: check \"memory budget\" failed: the container claims {claim} bytes, \
             its sandbox has {heap} of heap beyond {} of mapped weights",
            model.name,
            verified.manifest().payload_size
        );
        return (architecture, State::Refused("memory budget"));
    }
    let at = |part: &[u8]| (part.as_ptr() as u64 - file.as_ptr() as u64, part.len() as u64);
    let layout = Layout {
        architecture: match verified.architecture() {
            model_container::Architecture::DigitsMlp => Architecture::DigitsMlp,
            model_container::Architecture::MiniLmL6V2 => Architecture::MiniLmL6V2,
        },
        safetensors: at(verified.safetensors_bytes()),
        vocab: verified.vocab().map_or((0, 0), at),
    };
    println!("ai: model {}: verified ({}, signed by \"{signer}\")", model.name, architecture);
    (architecture, State::Reload { container, layout })
}

/// Records in init's security log that model `index` was refused by `check`, through the
/// supervisor cap the manifest gives this server (`supervisor = "report"`), if it does.
fn report_refused(manifest: &CompiledManifest, index: usize, check: &str) {
    let me = manifest.ai_server.as_deref().and_then(|name| manifest.program(name));
    let Some(supervisor) = me.and_then(|p| p.caps.iter().find(|c| c.object == manifest::ObjectRef::Supervisor)) else {
        return;
    };
    let request = init_api::Request::ReportModelRefused {
        model: u16::try_from(index).unwrap_or(u16::MAX),
        check: init_api::check_bytes(check),
    };
    match libcap::ipc::call::<_, init_api::Reply>(supervisor.slot(), init_api::LABEL, &request) {
        Ok(init_api::Reply::Done) => {}
        other => println!("ai: init did not record the refusal: {other:?}"),
    }
}

/// The heap the manifest gives `model`'s sandbox, in bytes (its memory-server quota).
fn sandbox_heap_bytes(manifest: &CompiledManifest, model: &Model) -> u64 {
    let badge = manifest.program(&model.sandbox).and_then(|sandbox| sandbox.memory_badges(manifest.memory_server).next());
    badge.map_or(0, |badge| u64::from(badge.quota_pages()) * 4096)
}

struct Server {
    models: Vec<Served>,
}

impl Server {
    /// The model called `name`, loaded in its sandbox (loading it first if needed).
    fn ready(&mut self, name: &str) -> Result<&mut Served, AiError> {
        let model = self.models.iter_mut().find(|m| m.name == name).ok_or(AiError::UnknownModel)?;
        if let State::Reload { container, layout } = model.state {
            let caps = Caps { send: &[container], receive: &[] };
            sys::set_call_timeout(LOAD_DEADLINE_TICKS);
            let loaded = model.sandbox.load(layout, caps);
            sys::set_call_timeout(0);
            match loaded {
                Ok((Ok(()), _)) => {
                    println!("ai: model {}: loaded in its sandbox", model.name);
                    model.state = State::Ready { container, layout };
                }
                Ok((Err(error), _)) => {
                    println!("ai: model {}: its sandbox refused to load it: {error:?}", model.name);
                    return Err(AiError::SandboxFailed);
                }
                Err(error) => {
                    println!("ai: model {}: its sandbox did not answer the load: {error:?}", model.name);
                    return Err(AiError::SandboxFailed);
                }
            }
        }
        match model.state {
            State::Refused(_) => Err(AiError::Refused),
            _ => Ok(model),
        }
    }
}

impl Server {
    /// One request of `input_bytes` to model `name`: within its `max_input_bytes`, made by
    /// `call` to its sandbox under its deadline, answered as the client sees it.
    fn infer<T>(
        &mut self,
        name: &str,
        input_bytes: usize,
        call: impl FnOnce(&sandbox::Client) -> Result<Result<T, SandboxError>, CallError>,
    ) -> Result<T, AiError> {
        let model = self.ready(name)?;
        if input_bytes as u64 > u64::from(model.max_input_bytes) {
            return Err(AiError::BadInput);
        }
        sys::set_call_timeout(model.deadline_ticks);
        let reply = call(&model.sandbox);
        sys::set_call_timeout(0);
        answer(model, reply)
    }
}

/// A sandbox's answer as the client sees it. A transport failure (the sandbox died with the
/// request: `PeerGone`) marks the model for reloading: init restarts the sandbox empty.
fn answer<T>(model: &mut Served, reply: Result<Result<T, SandboxError>, CallError>) -> Result<T, AiError> {
    match reply {
        Ok(Ok(value)) => {
            model.served = model.served.saturating_add(1);
            Ok(value)
        }
        Ok(Err(SandboxError::WrongKind)) => Err(AiError::WrongKind),
        Ok(Err(SandboxError::BadInput)) => Err(AiError::BadInput),
        Err(CallError::Transport(ErrorCode::TimedOut)) => {
            println!("ai: model {}: no answer within its deadline; gave up on the request", model.name);
            Err(AiError::Timeout)
        }
        Ok(Err(SandboxError::NotLoaded)) | Err(_) => {
            if let State::Ready { container, layout } = model.state {
                println!("ai: model {}: its sandbox failed with a request; it loads again on the next", model.name);
                model.state = State::Reload { container, layout };
            }
            Err(AiError::SandboxFailed)
        }
        Ok(Err(_)) => Err(AiError::Engine),
    }
}

impl ai::Server for Server {
    fn models(&mut self, _badge: Badge) -> heapless::Vec<ModelStatus, MAX_MODELS> {
        self.models
            .iter()
            .take(MAX_MODELS)
            .map(|m| ModelStatus {
                name: m.name.clone(),
                architecture: m.architecture.clone(),
                state: match &m.state {
                    State::Ready { .. } => ModelState::Ready,
                    State::Reload { .. } => ModelState::Unavailable,
                    State::Refused(check) => ModelState::Refused((*check).try_into().unwrap_or_default()),
                },
                max_input_bytes: m.max_input_bytes,
                served: m.served,
            })
            .collect()
    }

    fn classify(
        &mut self,
        _badge: Badge,
        name: ModelName,
        pixels: heapless::Vec<u8, DIGITS_PIXELS>,
    ) -> Result<Classification, AiError> {
        self.infer(&name, pixels.len(), |sandbox| sandbox.classify(pixels))
    }

    fn embed(&mut self, _badge: Badge, name: ModelName, text: String<MAX_TEXT>) -> Result<Embedding, AiError> {
        self.infer(&name, text.len(), |sandbox| sandbox.embed(text))
    }
}

fn main() -> Result<(), ErrorCode> {
    let blob = libcap::files::map(slots::HEAP_SPACE, caps::MANIFEST.slot())?;
    let manifest = manifest::decode(blob).map_err(|error| {
        println!("ai: the boot manifest does not decode: {error}");
        ErrorCode::InvalidArgument
    })?;
    let mut trusted = TrustedKeys::new();
    for key in &manifest.trusted_keys {
        if let Err(error) = trusted.add(&key.name, key.public_key) {
            println!("ai: trusted key \"{}\" is not usable: {error}", key.name);
        }
    }
    let mut models = Vec::new();
    for (index, model) in manifest.models.iter().enumerate() {
        let (architecture, state) = admit(&manifest, model, &trusted);
        if let State::Refused(check) = state {
            report_refused(&manifest, index, check);
        }
        models.push(Served {
            name: model.name.as_str().try_into().unwrap_or_default(),
            architecture,
            state,
            max_input_bytes: model.max_input_bytes,
            deadline_ticks: u64::from(model.deadline_ms).div_ceil(TICK_MS),
            sandbox: sandbox::Client::new(libcap::caps::Endpoint::at(model.sandbox_slot)),
            served: 0,
        });
    }
    let refused = models.iter().filter(|m| matches!(m.state, State::Refused(_))).count();
    println!("ai: serving {} models ({refused} refused)", models.len() - refused);
    let mut server = Server { models };
    // Load every verified model now, so a broken sandbox shows at boot, not at the first request.
    let names: Vec<ModelName> = server.models.iter().map(|m| m.name.clone()).collect();
    for name in names {
        let _ = server.ready(&name);
    }
    Err(ai::serve(caps::REQUESTS, &mut server))
}
