//! stack-overflow: runs off the bottom of its stack (the `stack_protector` test,
//! tests/manifests/stack-overflow.toml).
//!
//! It prints where its stack is, then recurses with frames of more than a page each, so
//! that only rustc's stack probes stop a frame from stepping over the guard page: the
//! first touch below the stack must fault in the unmapped guard page right under it
//! (`libcap::loader`: [`STACK_PAGES`] pages above one unmapped page). init reports the fault
//! with its address, and xtask checks that the address is in that page.
//!
//! Authority: none but the console (1).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::hint::black_box;

use libcap::loader::STACK_PAGES;

libcap::entry!(main);

/// Bytes of each frame: more than a page, so a frame without probes could skip the guard.
const FRAME: usize = 5000;

fn main() {
    let marker = 0u8;
    let here = black_box(&marker) as *const u8 as u64;
    // The stack top is page-aligned and main runs in its top page.
    let top = here.next_multiple_of(4096);
    let bottom = top - STACK_PAGES * 4096;
    libcap::println!("stack-overflow: stack {bottom:#x}..{top:#x}, guard page {:#x}..{bottom:#x}; recursing", bottom - 4096);
    let depth = deeper(0);
    libcap::println!("stack-overflow: recursion returned at depth {depth} (the guard did not stop it)");
}

/// Recurses for ever, each frame holding [`FRAME`] bytes it really uses.
fn deeper(depth: u64) -> u64 {
    // Never true (16 pages hold a dozen frames); a base case, so the recursion may end.
    if depth == u64::MAX {
        return 0;
    }
    let mut frame = [0u8; FRAME];
    frame[depth as usize % FRAME] = depth as u8;
    let frame = black_box(frame);
    deeper(depth + 1) + u64::from(frame[(depth as usize + 1) % FRAME])
}
