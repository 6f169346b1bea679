//! memory-bench: a benchmark, never a test. Times, in TSC cycles (the kernel's boot log
//! gives the TSC rate), the memory server's allocation path and the kernel's map/unmap:
//!
//! - `alloc+free`: `Create` one page, then `Free` it (two calls; the server creates the frame
//!   and later revokes and deletes it);
//! - `alloc+frames+map+unmap+free`: the whole life of a page a client uses;
//! - `map+unmap`: mapping one frame into the client's own window and unmapping it.
//!
//! Run: see servers/memory/README.md ("Benchmark").
//!
//! Authority: console (1), `memory` as client 1 with 8 pages (2), its own address space (3).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::bench::rdtsc;
use libcap::process::{self, Access};
use libcap::{CapSlot, ErrorCode, println, window};
use libcap::memory::{Memory, kernel};
use memory_api::MemError;

libcap::entry!(main);

const MEMORY: Memory = Memory::new(CapSlot::new(2));
const OWN_SPACE: CapSlot = CapSlot::new(3);
const ROUNDS: u64 = 2000;

fn main() -> Result<(), ErrorCode> {
    run().map_err(|error| {
        println!("memory-bench: failed: {error:?}");
        ErrorCode::IllegalOperation
    })
}

fn run() -> Result<(), MemError> {
    // Warm up.
    let region = MEMORY.create(1, 0)?;
    MEMORY.free(region.id)?;

    let start = rdtsc();
    for _ in 0..ROUNDS {
        let region = MEMORY.create(1, 0)?;
        MEMORY.free(region.id)?;
    }
    let alloc_free = (rdtsc() - start) / ROUNDS;

    let page = CapSlot::new(10);
    let start = rdtsc();
    for _ in 0..ROUNDS {
        let region = MEMORY.create(1, 0)?;
        MEMORY.frames(region.id, 0, &[page], true)?;
        process::map(OWN_SPACE, page, window::WINDOW_LOW, Access::ReadWrite).map_err(kernel)?;
        process::unmap(OWN_SPACE, window::WINDOW_LOW).map_err(kernel)?;
        MEMORY.free(region.id)?;
    }
    let whole = (rdtsc() - start) / ROUNDS;

    let region = MEMORY.create(1, 0)?;
    MEMORY.frames(region.id, 0, &[page], true)?;
    let start = rdtsc();
    for _ in 0..ROUNDS {
        process::map(OWN_SPACE, page, window::WINDOW_LOW, Access::ReadWrite).map_err(kernel)?;
        process::unmap(OWN_SPACE, window::WINDOW_LOW).map_err(kernel)?;
    }
    let map_unmap = (rdtsc() - start) / ROUNDS;
    MEMORY.free(region.id)?;

    println!("memory-bench: {ROUNDS} rounds, TSC cycles per round:");
    println!("memory-bench:   alloc+free (1 page)                  {alloc_free}");
    println!("memory-bench:   alloc+frames+map+unmap+free (1 page) {whole}");
    println!("memory-bench:   map+unmap (1 page, own window)       {map_unmap}");
    Ok(())
}
