//! init: a placeholder first process.
//!
//! It checks its initial authority (slot 1 is a `Console` cap, see `libcap::slots`),
//! exercises the `log` backend and the heap, and exits with code 0. The boot-manifest work
//! replaces it with the real first process, which starts the servers.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libcap::log::{LevelFilter, info};
use libcap::{ErrorCode, ObjectType, slots, sys};

libcap::entry!(main);

fn main() -> Result<(), ErrorCode> {
    // Only fails if a logger is already set, which nothing else does.
    let _ = libcap::logger::init(LevelFilter::Info);
    let console = sys::cap_identify(slots::CONSOLE)?;
    info!("console cap: {console:?}");
    if console.object_type != ObjectType::Console {
        return Err(ErrorCode::WrongObjectType);
    }
    let squares: Vec<u64> = (1..=100).map(|k| k * k).collect();
    let (used, free) = libcap::heap::usage();
    info!("heap: sum of 100 squares = {}, {used} bytes used, {free} free", squares.iter().sum::<u64>());
    Ok(())
}
