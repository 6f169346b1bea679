//! heap-test: the heap grows through the memory server (tests/manifests/heap.toml; xtask's
//! `heap` test waits for each line it prints).
//!
//! Authority: the console (1) and a `heap` (the memory server as client 5 with a quota of
//! 1024 pages, 4 MiB, at slot 126; its own address space at 127). It never names either:
//! it only uses `Vec` and `Box`, and reads the heap's and the server's figures to check.
//!
//! Steps: a 1 MiB `Vec` (four times the static heap) is filled and read back; 10,000 small
//! boxes are made, checked and dropped; the server's count of the client's pages matches
//! what the heap grew by; an allocation past the quota fails cleanly (`try_reserve`) and
//! everything allocated before is intact; the program exits, and init tells the server,
//! which frees every region (the test sees the server's line).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;

use libcap::memory::Memory;
use libcap::{ErrorCode, heap, println, slots};

libcap::entry!(main);

fn main() -> Result<(), ErrorCode> {
    match run() {
        Ok(()) => Ok(()),
        Err(why) => {
            println!("heap-test: FAILED: {why}");
            Err(ErrorCode::IllegalOperation)
        }
    }
}

fn check(ok: bool, what: &'static str) -> Result<(), &'static str> {
    if ok { Ok(()) } else { Err(what) }
}

fn run() -> Result<(), &'static str> {
    let start = heap::usage();
    check(start.can_grow && start.grown == 0, "the heap can grow and has not yet")?;

    // ---- one large allocation ----
    let words = (1 << 20) / 8;
    let mut big: Vec<u64> = Vec::with_capacity(words);
    for i in 0..words as u64 {
        big.push(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    check(big.iter().enumerate().all(|(i, &w)| w == (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)), "the 1 MiB Vec reads back")?;
    let grown = heap::usage();
    check(grown.grown >= 1 << 20, "the heap grew by at least 1 MiB")?;
    println!("heap-test: a 1 MiB Vec (4 times the static heap) reads back: grown by {} KiB in {} regions", grown.grown / 1024, grown.regions);

    // ---- many small allocations ----
    let mut boxes: Vec<Box<[u8; 100]>> = Vec::new();
    for i in 0..10_000u32 {
        boxes.push(Box::new([i as u8; 100]));
    }
    check(boxes.iter().enumerate().all(|(i, b)| b.iter().all(|&x| x == i as u8)), "every box holds its byte")?;
    drop(boxes);
    println!("heap-test: 10000 boxes made, checked and dropped");

    // ---- the server agrees ----
    let usage = heap::usage();
    let stats = Memory::new(slots::HEAP_MEMORY).stats().map_err(|_| "the server's stats")?;
    check(u64::from(stats.used_pages) * 4096 == usage.grown, "the server counts exactly the pages the heap grew by")?;
    check(stats.client == 5 && stats.quota_pages == 1024, "client 5, quota 1024 pages (from the manifest)")?;
    println!("heap-test: the server counts {} of {} pages for client {}, exactly what the heap grew by", stats.used_pages, stats.quota_pages, stats.client);

    // ---- the quota ----
    let mut too_much: Vec<u8> = Vec::new();
    check(too_much.try_reserve(8 << 20).is_err(), "8 MiB past a 4 MiB quota fails")?;
    check(big.iter().enumerate().all(|(i, &w)| w == (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)), "the 1 MiB Vec is intact")?;
    // A fresh allocation, not from the reserve that just failed.
    let small = alloc::vec![1u8];
    check(small == [1], "small allocations still work")?;
    println!("heap-test: 8 MiB past the quota is refused (try_reserve fails); everything allocated before is intact");
    println!("heap-test: exiting with {} pages held", stats.used_pages);
    Ok(())
}
