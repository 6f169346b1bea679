//! echo-server: the example service. Answers every request on the `echo` endpoint
//! (`echo-api`) and logs who called, by badge.
//!
//! Its authority (system.toml): the console (slot 1) and receive on `echo` (slot 2). It
//! cannot tell its clients apart by anything they send, only by the badge init stamped on
//! each client's cap: that is the point of badges. `libcap::ipc::serve` runs the classic
//! server loop (one receive, then reply-and-receive forever) and decodes the typed requests.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use echo_api::{Reply, Request};
use libcap::{Badge, CapSlot, ErrorCode, println};

libcap::entry!(main);

/// Receive on the echo endpoint (manifest: the first `caps` entry).
const ECHO: CapSlot = CapSlot::new(2);

fn main() -> Result<(), ErrorCode> {
    println!("echo-server: serving");
    let error = libcap::ipc::serve(ECHO, handle);
    // `serve` only returns if the endpoint itself fails.
    Err(error)
}

fn handle(badge: Badge, _label: u32, request: Request) -> Reply {
    match &request {
        Request::Reverse { text } => println!("echo-server: client {} sent {} bytes to reverse", badge.value(), text.len()),
        _ => println!("echo-server: client {} sent {request:?}", badge.value()),
    }
    match request {
        Request::Echo { round, values } => Reply::Echo { round, values },
        Request::Reverse { text } => Reply::Reversed { text: text.chars().rev().collect() },
        Request::WhoAmI => Reply::You { badge: badge.value() },
    }
}
