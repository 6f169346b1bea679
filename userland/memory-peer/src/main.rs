//! memory-peer: the memory server's in-QEMU test, second side (see memory-test). Answers
//! memory-test's requests on `share`; ends by faulting on a page the memory server revoked.
//!
//! Authority: console (1), `memory` as client 2 with a quota of 4 pages (2), its own address
//! space (3), and receive on `share` (4), where frame caps arrive.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::process::{self, Access};
use libcap::sys::{self, Message, Received};
use libcap::{CapSlot, ErrorCode, println, window};
use libcap::memory::Memory;

libcap::entry!(main);

const MEMORY: Memory = Memory::new(CapSlot::new(2));
const OWN_SPACE: CapSlot = CapSlot::new(3);
const SHARE: CapSlot = CapSlot::new(4);
/// Where received caps land.
const READ_ONLY: CapSlot = CapSlot::new(10);
const READ_WRITE: CapSlot = CapSlot::new(11);
const BASE: u64 = window::WINDOW_LOW;
const PAGE: u64 = memory_api::PAGE_SIZE;

fn main() -> Result<(), ErrorCode> {
    // Caps arrive in the order the test sends them: the read-only one, then the read-write.
    let mut next_slot = READ_ONLY.index();
    let mut received = receive(&[READ_ONLY])?;
    loop {
        next_slot += received.message.info().caps() as u32;
        let code = match handle(&received) {
            Ok(()) => 0,
            Err(why) => {
                println!("memory-peer: FAILED: {why}");
                1
            }
        };
        let answer = Message::new(0, &[code])?;
        received = sys::reply_recv_with_caps(SHARE, &answer, &[], &[CapSlot::new(next_slot)])?;
    }
}

fn receive(into: &[CapSlot]) -> Result<Received, ErrorCode> {
    sys::set_transfer_slots(&[], into)?;
    sys::recv(SHARE)
}

fn check(ok: bool, what: &'static str) -> Result<(), &'static str> {
    if ok { Ok(()) } else { Err(what) }
}

fn handle(received: &Received) -> Result<(), &'static str> {
    match received.message.label() {
        1 => {
            let region = MEMORY.create(2, 0).map_err(|_| "the peer could not allocate beside a full client")?;
            check(MEMORY.stats().map(|s| (s.used_pages, s.quota_pages)) == Ok((2, 4)), "peer stats 2 of 4")?;
            MEMORY.free(region.id).map_err(|_| "peer free")?;
            Ok(())
        }
        2 => {
            check(received.message.info().caps() == 1, "one cap arrived")?;
            check(
                process::map(OWN_SPACE, READ_ONLY, BASE, Access::ReadWrite) == Err(ErrorCode::InsufficientRights),
                "a read-only cap must not map writable",
            )?;
            process::map(OWN_SPACE, READ_ONLY, BASE, Access::Read).map_err(|_| "mapping read-only")?;
            let mut seen = [0u8; 11];
            window::read(BASE, &mut seen).map_err(|_| "reading")?;
            check(&seen == b"first words", "the words the owner wrote")
        }
        3 => {
            let mut seen = [0u8; 11];
            window::read(BASE, &mut seen).map_err(|_| "reading")?;
            check(&seen == b"later words", "the owner's later words")
        }
        4 => {
            check(received.message.info().caps() == 1, "one cap arrived")?;
            process::map(OWN_SPACE, READ_WRITE, BASE + PAGE, Access::ReadWrite).map_err(|_| "mapping read-write")?;
            window::write(BASE + PAGE, b"peer writes").map_err(|_| "writing")
        }
        5 => {
            check(sys::cap_identify(READ_ONLY) == Err(ErrorCode::EmptySlot), "the revoked cap is gone from our space")?;
            println!("memory-peer: my cap to the shared page is revoked; reading it at {BASE:#x} (must fault)");
            let mut seen = [0u8; 1];
            let _ = window::read(BASE, &mut seen);
            Err("reading a revoked page did not fault")
        }
        _ => Err("unknown request"),
    }
}
