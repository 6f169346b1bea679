//! hostile-sandbox: a misbehaving model sandbox for the tests (`[models.hostile]` in
//! tests/manifests/ai.toml). It accepts `load`; then it spins forever on a classification,
//! as a model stuck on an input would, and crashes (a read of address 0) on an embedding.
//! Its CPU budget keeps the spinning from starving anyone and the AI server's deadline
//! (`SetCallTimeout`) keeps it from stalling the server; the crash ends only this process,
//! which init restarts and the AI server loads again.
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
        // A fault, as a model with a bug would take one: the window's first page is never
        // mapped here, so the read stops this thread.
        let mut byte = [0u8; 1];
        let _ = libcap::window::read(libcap::window::WINDOW_LOW, &mut byte);
        Err(SandboxError::Engine)
    }
}

fn main() -> Result<(), ErrorCode> {
    Err(sandbox::serve_with_caps(caps::REQUESTS, &[ARRIVING], &mut Spinner))
}
