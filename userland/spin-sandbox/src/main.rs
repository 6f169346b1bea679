//! spin-sandbox: a hostile model sandbox for the tests (`[models.spinner]` in
//! tests/manifests/ai.toml). It accepts `load`, then spins forever on the first inference
//! request, as a model stuck on an input would. Its CPU budget keeps it from starving
//! anyone; the AI server's deadline (`SetCallTimeout`) keeps it from stalling the server.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ai_api::{Classification, DIGITS_PIXELS, Embedding, Layout, MAX_TEXT, SandboxError, sandbox};
use libcap::heapless::{String, Vec};
use libcap::ipc::SendCaps;
use libcap::{Badge, CapSlot, ErrorCode};

libcap::entry!(main, caps);

libcap::caps!();

/// Where `load`'s frame lands; the server loop clears it after the reply.
const ARRIVING: CapSlot = CapSlot::new(8);

struct Spinner;

fn spin() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

impl sandbox::Server for Spinner {
    fn load(&mut self, _badge: Badge, _layout: Layout, _arrived: &[CapSlot]) -> (Result<(), SandboxError>, SendCaps) {
        (Ok(()), SendCaps::new())
    }

    fn classify(&mut self, _badge: Badge, _pixels: Vec<u8, DIGITS_PIXELS>) -> Result<Classification, SandboxError> {
        spin()
    }

    fn embed(&mut self, _badge: Badge, _text: String<MAX_TEXT>) -> Result<Embedding, SandboxError> {
        spin()
    }
}

fn main() -> Result<(), ErrorCode> {
    Err(sandbox::serve_with_caps(caps::REQUESTS, &[ARRIVING], &mut Spinner))
}
