//! echo-client: the example client. Asks the echo service who it is, then calls it three
//! times, checks that each answer is what it sent, and prints it.
//!
//! Its authority (system.toml): the console (slot 1) and call on `echo` (slot 2), a cap
//! init minted with badge 7. The client cannot change that badge; the server sees it with
//! every request, which is how the client learns the identity the server knows it by.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use echo_api::{LABEL, MAX_TEXT, Reply, Request};
use libcap::{CapSlot, ErrorCode, heapless, println};

libcap::entry!(main);

/// Call on the echo endpoint (manifest: the first `caps` entry).
const ECHO: CapSlot = CapSlot::new(2);

fn main() -> Result<(), ErrorCode> {
    let me = match libcap::ipc::call(ECHO, LABEL, &Request::WhoAmI)? {
        Reply::You { badge } => badge,
        other => return unexpected(other),
    };
    println!("echo-client: I am client {me} (the badge the server sees on my calls)");
    for round in 1..=3u32 {
        let values = [u64::from(round), u64::from(round * round), 0xec40];
        let reply: Reply = libcap::ipc::call(ECHO, LABEL, &Request::Echo { round, values })?;
        println!("echo-client: round {round}: reply {reply:?}");
        if reply != (Reply::Echo { round, values }) {
            return unexpected(reply);
        }
    }
    // A message past the registers: 1,000 bytes each way through the IPC buffers.
    let text: heapless::String<MAX_TEXT> = (0..1000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let expected: heapless::String<MAX_TEXT> = text.chars().rev().collect();
    match libcap::ipc::call(ECHO, LABEL, &Request::Reverse { text })? {
        Reply::Reversed { text } if text == expected => println!("echo-client: 1000 bytes came back reversed (through the IPC buffers)"),
        other => return unexpected(other),
    }
    println!("echo-client: done");
    Ok(())
}

fn unexpected(reply: Reply) -> Result<(), ErrorCode> {
    println!("echo-client: unexpected reply {reply:?}");
    Err(ErrorCode::InvalidArgument)
}
