//! crash-server: a deliberately crashing service (the supervision test,
//! tests/manifests/supervision.toml). Answers each call on `crashy` with how many calls this
//! incarnation has answered; a call with word 0 = [`CRASH`] makes it fault (a read of an
//! unmapped page) while holding that call. init restarts it; the endpoint stays, so clients
//! reach the new incarnation through the cap they already hold.
//!
//! Authority: console (1), receive on `crashy` (2).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::sys::{self, Message};
use libcap::{CapSlot, ErrorCode, println, window};

libcap::entry!(main);

const CRASHY: CapSlot = CapSlot::new(2);
/// The request that crashes the server.
const CRASH: u64 = 1;
/// Where it faults: nothing is ever mapped there in this process.
const FAULT_ADDRESS: u64 = window::WINDOW_LOW + 0x5e7;

fn main() -> Result<(), ErrorCode> {
    println!("crash-server: serving");
    let mut answered = 0u64;
    let mut received = sys::recv(CRASHY)?;
    loop {
        if received.message.words().first() == Some(&CRASH) {
            println!("crash-server: crashing on request (read at {FAULT_ADDRESS:#x})");
            let mut byte = [0u8; 1];
            let _ = window::read(FAULT_ADDRESS, &mut byte);
        }
        answered += 1;
        received = sys::reply_recv(CRASHY, &Message::new(0, &[answered])?)?;
    }
}
