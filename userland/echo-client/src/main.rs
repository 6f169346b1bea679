//! echo-client: the example client. Calls the echo service three times, checks that each
//! answer is what it sent, and prints it.
//!
//! Its authority (system.toml): the console (slot 1) and call on `echo` (slot 2), a cap
//! init minted with badge 7. The client cannot change that badge; it can only read it
//! (`CapIdentify`), which is how it learns the identity the server sees.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::sys::{self, Message};
use libcap::{CapSlot, ErrorCode, println};

libcap::entry!(main);

/// Call on the echo endpoint (manifest: the first `caps` entry).
const ECHO: CapSlot = CapSlot::new(2);
/// The protocol has one request, "echo this", with any words.
const LABEL_ECHO: u32 = 1;

fn main() -> Result<(), ErrorCode> {
    let me = sys::cap_identify(ECHO)?.badge.value();
    println!("echo-client: I am client {me} (the badge on my echo cap)");
    for round in 1..=3u64 {
        let request = Message::new(LABEL_ECHO, &[round, round * round, 0xec40])?;
        let answer = sys::call(ECHO, &request)?;
        println!("echo-client: round {round}: reply {:?}", answer.words());
        if answer.label() != LABEL_ECHO || answer.words() != request.words() {
            println!("echo-client: the reply is not what I sent");
            return Err(ErrorCode::InvalidArgument);
        }
    }
    println!("echo-client: done");
    Ok(())
}
