//! lifecycle-child: one incarnation of the churn test (`ktest=lifecycle`,
//! tests/manifests/lifecycle.toml). init restarts it after every crash, so it is built and
//! torn down by init's real path again and again; the memory server's region numbers count
//! the incarnations (it is the server's only client).
//!
//! Each incarnation, before ending: creates an endpoint, a notification, a thread and a
//! frame of its own (charged to its quota, never deleted: its teardown must reclaim them),
//! takes a page from the memory server, maps it, writes it, and frees it (the page goes
//! back to the server, every mapping with it). Incarnations 1..1000 end with exit code 1
//! (a crash: init restarts them); the 1000th exits 0 and init leaves it ended.
//!
//! Authority: console (1), `memory` as client 3 (2), its own address space (3).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::process::{self, Access, NewObject};
use libcap::{CapSlot, println, window};
use libcap::memory::Memory;

libcap::entry!(main);

const MEMORY: Memory = Memory::new(CapSlot::new(2));
const OWN_SPACE: CapSlot = CapSlot::new(3);
/// Incarnations in all.
const INCARNATIONS: u32 = 1000;

fn main() -> u64 {
    for (slot, object) in [(10, NewObject::Endpoint), (11, NewObject::Notification), (12, NewObject::Thread), (13, NewObject::Frame)] {
        if let Err(error) = process::create(CapSlot::new(slot), object) {
            println!("lifecycle-child: FAILED: creating {object:?}: {}", error.as_str());
            return 2;
        }
    }
    let page = CapSlot::new(14);
    let result = MEMORY.create(1, 0).and_then(|region| {
        MEMORY.frames(region.id, 0, &[page], true)?;
        process::map(OWN_SPACE, page, window::WINDOW_LOW, Access::ReadWrite).map_err(libcap::memory::kernel)?;
        window::write(window::WINDOW_LOW, &region.id.0.to_le_bytes()).map_err(libcap::memory::kernel)?;
        MEMORY.free(region.id)?;
        Ok(region.id.0)
    });
    match result {
        Ok(incarnation) if incarnation >= INCARNATIONS => {
            println!("lifecycle-child: incarnation {incarnation}: done");
            0
        }
        Ok(incarnation) => {
            if incarnation % 100 == 0 {
                println!("lifecycle-child: incarnation {incarnation}");
            }
            1
        }
        Err(error) => {
            println!("lifecycle-child: FAILED: {error:?}");
            2
        }
    }
}
