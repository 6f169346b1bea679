//! denier: what the kernel's denial record sees (`qemu::kernel_denials`).
//!
//! It signals through an empty slot, then names its notification where an endpoint is needed: the kernel
//! refuses both and records them; init moves the records into the security log under this
//! program's name. Then it spins, so the kernel throttles it at the end of its budget in
//! every period: a budget overrun each time, recorded the same way.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::{CapSlot, ErrorCode, println, sys};

libcap::caps!();
libcap::entry!(main, caps);

/// A slot the manifest leaves empty.
const NOTHING_HERE: CapSlot = CapSlot::new(100);

fn main() -> Result<(), ErrorCode> {
    let empty = sys::signal(NOTHING_HERE).err();
    let wrong_kind = sys::nb_recv(caps::BELL.slot()).err();
    println!("denier: refused: {empty:?}, {wrong_kind:?}; now spinning past my budget");
    let mut spins = 0u64;
    loop {
        spins = core::hint::black_box(spins.wrapping_add(1));
    }
}
