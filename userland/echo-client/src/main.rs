//! echo-client: the example client. Asks the echo service who it is, then calls it three
//! times, checks that each answer is what it sent, and prints it; then sends 1,000 bytes,
//! which travel through the IPC buffers, and checks they come back reversed.
//!
//! Its authority (system.toml): the console (slot 1) and call on `echo` (slot 2), a cap
//! init minted with badge 7. The client cannot change that badge; the server sees it with
//! every request, which is how the client learns the identity the server knows it by.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use echo_api::{MAX_TEXT, echo};
use libcap::heapless::String;
use libcap::{ErrorCode, println};

libcap::entry!(main, caps);

libcap::caps!();

/// Calls the server behind the manifest's `echo` cap.
const ECHO: echo::Client = echo::Client::new(caps::ECHO);

fn main() -> Result<(), ErrorCode> {
    let me = ECHO.who_am_i()?;
    println!("echo-client: I am client {me} (the badge the server sees on my calls)");
    for round in 1..=3u32 {
        let values = [u64::from(round), u64::from(round * round), 0xec40];
        let reply = ECHO.echo(round, values)?;
        println!("echo-client: round {round}: reply {reply:?}");
        if reply != (round, values) {
            println!("echo-client: unexpected reply");
            return Err(ErrorCode::InvalidArgument);
        }
    }
    let text: String<MAX_TEXT> = (0..1000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let expected: String<MAX_TEXT> = text.chars().rev().collect();
    if ECHO.reverse(text)? != expected {
        println!("echo-client: the reversed text is not the text reversed");
        return Err(ErrorCode::InvalidArgument);
    }
    println!("echo-client: 1000 bytes came back reversed (through the IPC buffers)");
    println!("echo-client: done");
    Ok(())
}
