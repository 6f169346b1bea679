//! memory-bench: a benchmark, never a test. Times, in TSC ticks (guest instructions under
//! `cargo xtask bench memory`, which runs QEMU's TCG with `-icount shift=0`), the memory
//! server's allocation path, the kernel's map/unmap, and the heap growing through the
//! server:
//!
//! - `alloc_free_page`: `Create` one page, then `Free` it (two calls; the server creates
//!   the frame and later revokes and deletes it);
//! - `page_lifecycle`: the whole life of a page a client uses (create, fetch its cap, map,
//!   unmap, free);
//! - `map_unmap_page`: mapping one frame into the client's own window and unmapping it;
//! - `alloc_free_2mib`: a 2 MiB contiguous region created and freed (the kernel zeroes it);
//! - `map_unmap_2mib`: mapping a 2 MiB frame (512 page-table entries) and unmapping it;
//! - `heap_grow_1mib`: pushing 1 MiB into an empty `Vec`, which grows the heap through
//!   the server (once; a cold figure).
//!
//! Each line is `memory-bench: NAME ROUNDS TICKS_PER_ROUND`; the run ends with
//! `memory-bench: done`.
//!
//! Authority: console (1), `memory` as client 1 with 512 pages (2), its own address space
//! (3), and a heap (client 2, 512 pages).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libcap::bench::rdtsc;
use libcap::memory::{Memory, flags, kernel};
use libcap::process::{self, Access};
use libcap::{CapSlot, ErrorCode, println, window};
use memory_api::MemError;

libcap::entry!(main);

const MEMORY: Memory = Memory::new(CapSlot::new(2));
const OWN_SPACE: CapSlot = CapSlot::new(3);
const ROUNDS: u64 = 2000;
/// Rounds of the 2 MiB figures: each zeroes or maps 512 pages.
const LARGE_ROUNDS: u64 = 20;

fn main() -> Result<(), ErrorCode> {
    run().map_err(|error| {
        println!("memory-bench: failed: {error:?}");
        ErrorCode::IllegalOperation
    })
}

fn report(name: &str, rounds: u64, start: u64) {
    println!("memory-bench: {name} {rounds} {}", (rdtsc() - start) / rounds);
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
    report("alloc_free_page", ROUNDS, start);

    let page = CapSlot::new(10);
    let start = rdtsc();
    for _ in 0..ROUNDS {
        let region = MEMORY.create(1, 0)?;
        MEMORY.frames(region.id, 0, &[page], true)?;
        process::map(OWN_SPACE, page, window::WINDOW_LOW, Access::ReadWrite).map_err(kernel)?;
        process::unmap(OWN_SPACE, window::WINDOW_LOW).map_err(kernel)?;
        MEMORY.free(region.id)?;
    }
    report("page_lifecycle", ROUNDS, start);

    let region = MEMORY.create(1, 0)?;
    MEMORY.frames(region.id, 0, &[page], true)?;
    let start = rdtsc();
    for _ in 0..ROUNDS {
        process::map(OWN_SPACE, page, window::WINDOW_LOW, Access::ReadWrite).map_err(kernel)?;
        process::unmap(OWN_SPACE, window::WINDOW_LOW).map_err(kernel)?;
    }
    report("map_unmap_page", ROUNDS, start);
    MEMORY.free(region.id)?;

    let start = rdtsc();
    for _ in 0..LARGE_ROUNDS {
        let region = MEMORY.create(512, flags::CONTIGUOUS)?;
        MEMORY.free(region.id)?;
    }
    report("alloc_free_2mib", LARGE_ROUNDS, start);

    let region = MEMORY.create(512, flags::CONTIGUOUS)?;
    MEMORY.frames(region.id, 0, &[page], true)?;
    let start = rdtsc();
    for _ in 0..LARGE_ROUNDS {
        process::map(OWN_SPACE, page, window::WINDOW_LOW, Access::ReadWrite).map_err(kernel)?;
        process::unmap(OWN_SPACE, window::WINDOW_LOW).map_err(kernel)?;
    }
    report("map_unmap_2mib", LARGE_ROUNDS, start);
    MEMORY.free(region.id)?;

    let start = rdtsc();
    let mut bytes: Vec<u8> = Vec::new();
    bytes.resize(1 << 20, 1);
    report("heap_grow_1mib", 1, start);
    let grown = libcap::heap::usage().grown;
    println!("memory-bench: the heap grew by {} KiB", grown / 1024);
    drop(bytes);
    println!("memory-bench: done");
    Ok(())
}
