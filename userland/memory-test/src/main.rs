//! memory-test: the memory server's in-QEMU test, first side (tests/memory.toml; the other
//! side is memory-peer). Each step prints one line; xtask's `memory` test waits for them.
//!
//! Authority: console (1), `memory` as client 1 with a quota of 8 pages (2), its own address
//! space (3), and `share` (4: call and grant) to hand frame caps to memory-peer.
//!
//! Steps: quota enforced (8 pages fit, the 9th is `OverQuota`, the peer is unaffected);
//! contiguous, aligned and below-4-GiB regions placed as asked; a multi-frame region
//! mapped as one run; reuse zeroed; a read-only share (the peer cannot map it
//! writable, reads what we write, live); a read-write share (we read what the peer wrote);
//! free revokes the peer's cap and unmaps its page (the peer faults reading it, and init
//! reports it); finally our own write through a read-only mapping faults, and init reports
//! that too.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::process::{self, Access};
use libcap::sys::{self, Message};
use libcap::{CapSlot, ErrorCode, println, window};
use libcap::memory::Memory;
use memory_api::{MemError, flags};

libcap::entry!(main);

const MEMORY: Memory = Memory::new(CapSlot::new(2));
const OWN_SPACE: CapSlot = CapSlot::new(3);
const SHARE: CapSlot = CapSlot::new(4);
/// Where this test maps pages: the first pages of the window.
const BASE: u64 = window::WINDOW_LOW;
const PAGE: u64 = memory_api::PAGE_SIZE;

/// Labels of the messages to the peer (its `share` endpoint).
const PEER_OWN_REGION: u32 = 1;
const PEER_MAP_READ_ONLY: u32 = 2;
const PEER_READ_AGAIN: u32 = 3;
const PEER_MAP_READ_WRITE: u32 = 4;
const PEER_TOUCH_REVOKED: u32 = 5;

fn main() -> Result<(), ErrorCode> {
    match run() {
        Ok(()) => Ok(()),
        Err(why) => {
            println!("memory-test: FAILED: {why}");
            Err(ErrorCode::IllegalOperation)
        }
    }
}

fn check(ok: bool, what: &'static str) -> Result<(), &'static str> {
    if ok { Ok(()) } else { Err(what) }
}

fn slot(index: u32) -> CapSlot {
    CapSlot::new(index)
}

/// Asks the peer to do `label` (with `caps` if any); its answer is word 0, 0 for success.
fn peer(label: u32, caps: &[CapSlot]) -> Result<u64, ErrorCode> {
    let message = Message::new(label, &[])?;
    let answer = sys::call_with_caps(SHARE, &message, caps, &[])?;
    Ok(answer.words().first().copied().unwrap_or(u64::MAX))
}

/// Contiguous, aligned and below-4-GiB regions: one frame each, placed as asked.
fn placement() -> Result<(), &'static str> {
    let contiguous = MEMORY.create(3, flags::CONTIGUOUS).map_err(|_| "a contiguous region of 3 pages")?;
    check(contiguous.pages == 4 && contiguous.frames == 1, "3 contiguous pages are one 4-page frame, charged 4")?;
    MEMORY.frames(contiguous.id, 0, &[slot(20)], true).map_err(|_| "its cap")?;
    let info = sys::frame_info(slot(20)).map_err(|_| "FrameInfo")?;
    check(info.bytes == 4 * PAGE && info.phys % (4 * PAGE) == 0, "16 KiB, physically contiguous and 16 KiB-aligned")?;
    MEMORY.free(contiguous.id).map_err(|_| "freeing it")?;

    let aligned = MEMORY.create_aligned(1, 8, 0).map_err(|_| "one page aligned to 8")?;
    check(aligned.pages == 8 && aligned.frames == 1, "aligned to 8 pages: one 8-page frame")?;
    MEMORY.frames(aligned.id, 0, &[slot(20)], true).map_err(|_| "its cap")?;
    let info = sys::frame_info(slot(20)).map_err(|_| "FrameInfo")?;
    check(info.phys % (8 * PAGE) == 0, "32 KiB-aligned")?;
    MEMORY.free(aligned.id).map_err(|_| "freeing it")?;

    let low = MEMORY.create(2, flags::CONTIGUOUS | flags::BELOW_4GIB).map_err(|_| "2 contiguous pages below 4 GiB")?;
    MEMORY.frames(low.id, 0, &[slot(20)], true).map_err(|_| "its cap")?;
    let info = sys::frame_info(slot(20)).map_err(|_| "FrameInfo")?;
    check(info.phys + info.bytes <= 1 << 32, "below 4 GiB")?;
    MEMORY.free(low.id).map_err(|_| "freeing it")?;

    check(MEMORY.create(513, flags::CONTIGUOUS) == Err(MemError::Unsupported), "contiguous above 2 MiB: Unsupported")?;
    check(MEMORY.create_aligned(1, 1024, 0) == Err(MemError::Unsupported), "aligned above 2 MiB: Unsupported")?;
    println!("memory-test: placement: contiguous, aligned and below-4-GiB regions are one frame each, as asked (FrameInfo); above 2 MiB: Unsupported");
    Ok(())
}

/// A region of 7 pages is three frames (4 + 2 + 1), mapped one after another: one run of
/// memory to the client.
fn scattered() -> Result<(), &'static str> {
    let region = MEMORY.create(7, 0).map_err(|_| "7 pages")?;
    check(region.pages == 7 && region.frames == 3, "7 pages in 3 frames")?;
    let bytes = MEMORY
        .map_region(region, OWN_SPACE, BASE, true, &[slot(20), slot(21), slot(22)])
        .map_err(|_| "mapping the region")?;
    check(bytes == 7 * PAGE, "28 KiB mapped")?;
    for page in 0..7u64 {
        window::write(BASE + page * PAGE + 100, &[page as u8 + 1; 8]).map_err(|_| "writing a page")?;
    }
    for page in 0..7u64 {
        let mut seen = [0u8; 8];
        window::read(BASE + page * PAGE + 100, &mut seen).map_err(|_| "reading a page")?;
        check(seen == [page as u8 + 1; 8], "every page holds what was written to it")?;
    }
    MEMORY.free(region.id).map_err(|_| "freeing it")?;
    for page in [0u64, 4, 6] {
        check(process::unmap(OWN_SPACE, BASE + page * PAGE) == Err(ErrorCode::InvalidArgument), "free unmapped every frame")?;
    }
    println!("memory-test: a 7-page region is 3 frames (4+2+1) mapped as one run; free unmaps all of it");
    Ok(())
}

fn run() -> Result<(), &'static str> {
    // ---- quotas ----
    let stats = MEMORY.stats().map_err(|_| "stats")?;
    check(stats.used_pages == 0 && stats.quota_pages == 8, "the quota from the badge is 8 pages, none used")?;
    let big = MEMORY.create(6, 0).map_err(|_| "creating 6 pages")?;
    let small = MEMORY.create(2, 0).map_err(|_| "creating 2 more pages")?;
    let over = MEMORY.create(1, 0);
    check(over == Err(MemError::OverQuota { used_pages: 8, asked_pages: 1, quota_pages: 8 }), "a 9th page is OverQuota")?;
    check(peer(PEER_OWN_REGION, &[]) == Ok(0), "the peer allocates while we are at our quota")?;
    println!("memory-test: quota enforced: 8 of 8 pages, the 9th refused (OverQuota), the other client unaffected");
    MEMORY.free(big.id).map_err(|_| "freeing 6")?;
    MEMORY.free(small.id).map_err(|_| "freeing 2")?;
    check(MEMORY.stats().map(|s| s.used_pages) == Ok(0), "back to 0 pages used")?;
    placement()?;
    check(MEMORY.create(0, 0) == Err(MemError::InvalidArgument), "zero pages refused")?;
    check(MEMORY.create(1, 1 << 7) == Err(MemError::InvalidArgument), "unknown flags refused")?;
    check(MEMORY.stats().map(|s| s.used_pages) == Ok(0), "placement left nothing in use")?;
    scattered()?;

    // ---- reuse is zeroed ----
    let pattern = [0xa5u8; 64];
    for round in 0..2 {
        let region = MEMORY.create(1, 0).map_err(|_| "creating a page")?;
        MEMORY.frames(region.id, 0, &[slot(10)], true).map_err(|_| "getting its cap")?;
        process::map(OWN_SPACE, slot(10), BASE, Access::ReadWrite).map_err(|_| "mapping it")?;
        let mut seen = [0xffu8; 4096];
        window::read(BASE, &mut seen).map_err(|_| "reading it")?;
        check(seen.iter().all(|&b| b == 0), "a new page is all zero")?;
        if round == 0 {
            window::write(BASE, &pattern).map_err(|_| "writing it")?;
        }
        MEMORY.free(region.id).map_err(|_| "freeing it")?;
        // The free revoked our copy too, and the mapping went with the page.
        check(sys::cap_identify(slot(10)) == Err(ErrorCode::EmptySlot), "free revoked our cap")?;
    }
    println!("memory-test: reuse is zeroed: a page written, freed and allocated again reads all zero");

    // ---- shared, read-only ----
    let shared = MEMORY.create(1, 0).map_err(|_| "creating the shared page")?;
    MEMORY.frames(shared.id, 0, &[slot(11)], true).map_err(|_| "its read-write cap")?;
    MEMORY.frames(shared.id, 0, &[slot(12)], false).map_err(|_| "its read-only cap")?;
    check(sys::cap_identify(slot(12)).map(|i| i.rights) == Ok(libcap::Rights::READ), "the read-only cap has read only")?;
    process::map(OWN_SPACE, slot(11), BASE, Access::ReadWrite).map_err(|_| "mapping the shared page")?;
    window::write(BASE, b"first words").map_err(|_| "writing the shared page")?;
    check(peer(PEER_MAP_READ_ONLY, &[slot(12)]) == Ok(0), "the peer maps it read-only (not writable) and reads our words")?;
    window::write(BASE, b"later words").map_err(|_| "writing again")?;
    check(peer(PEER_READ_AGAIN, &[]) == Ok(0), "the peer sees the new words: the same page")?;
    println!("memory-test: read-only share: the peer cannot map it writable, and reads what we write");

    // ---- shared, read-write ----
    let both = MEMORY.create(1, 0).map_err(|_| "creating the read-write page")?;
    MEMORY.frames(both.id, 0, &[slot(13)], true).map_err(|_| "its cap")?;
    process::map(OWN_SPACE, slot(13), BASE + PAGE, Access::ReadWrite).map_err(|_| "mapping it")?;
    check(peer(PEER_MAP_READ_WRITE, &[slot(13)]) == Ok(0), "the peer maps it read-write and writes")?;
    let mut seen = [0u8; 11];
    window::read(BASE + PAGE, &mut seen).map_err(|_| "reading the peer's words")?;
    check(&seen == b"peer writes", "we read what the peer wrote")?;
    println!("memory-test: read-write share: we read what the peer wrote");
    MEMORY.free(both.id).map_err(|_| "freeing the read-write page")?;

    // ---- revoke ----
    let pages = MEMORY.free(shared.id).map_err(|_| "freeing the shared page")?;
    check(pages == 1, "one page freed")?;
    check(sys::cap_identify(slot(11)) == Err(ErrorCode::EmptySlot), "our cap is revoked")?;
    println!("memory-test: shared page freed; the peer now reads where it was mapped (it must fault)");
    // The peer checks its cap is gone, then reads the unmapped page and faults holding our
    // call: the kernel answers us with PeerGone.
    match peer(PEER_TOUCH_REVOKED, &[]) {
        Err(ErrorCode::PeerGone) => println!("memory-test: revoke unmapped the page in the peer (it faulted; PeerGone here)"),
        other => {
            println!("memory-test: the peer answered {other:?}");
            return Err("the peer did not fault on the revoked page");
        }
    }
    let totals = MEMORY.report().map_err(|_| "report")?;
    check(totals.used_pages == 0, "nothing in use at the end")?;

    // ---- a write through a read-only mapping faults ----
    let last = MEMORY.create(1, 0).map_err(|_| "creating the last page")?;
    MEMORY.frames(last.id, 0, &[slot(14)], false).map_err(|_| "its read-only cap")?;
    check(process::map(OWN_SPACE, slot(14), BASE + 2 * PAGE, Access::ReadWrite) == Err(ErrorCode::InsufficientRights), "a read-only cap cannot map writable")?;
    process::map(OWN_SPACE, slot(14), BASE + 2 * PAGE, Access::Read).map_err(|_| "mapping it read-only")?;
    println!("memory-test: writing through a read-only mapping at {:#x} (must fault)", BASE + 2 * PAGE);
    window::write(BASE + 2 * PAGE, b"x").map_err(|_| "the write")?;
    Err("a write through a read-only mapping did not fault")
}
