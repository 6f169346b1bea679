//! Pure kernel logic: everything the kernel decides that does not touch hardware.
//!
//! This crate is `no_std` for the kernel and `std` under `cargo test`, so the logic that
//! enforces the kernel's invariants is exercised on the host, including by property tests.
//! The `kernel` crate holds the architecture glue and wires these pieces together.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod bootinfo;
pub mod cap;
pub mod cmdline;
pub mod elf;
pub mod err;
pub mod frames;
pub mod memmap;
pub mod model;
pub mod pci;
pub mod queue;
pub mod rand;
pub mod scale;
pub mod ustar;
pub mod xsave;
