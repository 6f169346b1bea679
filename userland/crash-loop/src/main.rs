//! crash-loop: faults as soon as it starts, every time (the supervision test). init
//! restarts it with a back-off that doubles from 10 ms up to the manifest's 80 ms; xtask
//! reads the kernel's timestamped fault lines and checks the spacing.
//!
//! Authority: none but the console (1).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::window;

libcap::entry!(main);

/// Nothing is ever mapped here in this process.
const FAULT_ADDRESS: u64 = window::WINDOW_LOW + 0xbad;

fn main() {
    let mut byte = [0u8; 1];
    let _ = window::read(FAULT_ADDRESS, &mut byte);
}
