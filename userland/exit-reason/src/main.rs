//! exit-reason: what a developer sees when the manifest hands a program the wrong kind of cap.
//!
//! Its manifest (`tests/manifests/exit-reason.toml`) puts a notification in slot 2, where this
//! program expects its server's endpoint: the receive fails with `WrongObjectType`, `main`
//! returns it, libcap prints it under the program's name and init names the error behind the
//! exit code (`qemu::exit_reason`).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::{CapSlot, ErrorCode, sys};

libcap::entry!(main);

/// Where the program expects the endpoint it serves on.
const SERVICE: CapSlot = CapSlot::new(2);

fn main() -> Result<(), ErrorCode> {
    libcap::println!("exit-reason: receiving on slot 2");
    sys::nb_recv(SERVICE)?;
    Ok(())
}
