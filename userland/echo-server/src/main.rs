//! echo-server: the example service. Answers every message on the `echo` endpoint with the
//! same label and words, and logs who called, by badge.
//!
//! Its authority (system.toml): the console (slot 1) and receive on `echo` (slot 2). It
//! cannot tell its clients apart by anything they send, only by the badge init stamped on
//! each client's cap: that is the point of badges.
//!
//! The loop is the classic server shape: one `Recv` to get the first request, then
//! `ReplyRecv` forever, which answers the caller and waits for the next in one syscall.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::sys::{self, Received};
use libcap::{CapSlot, ErrorCode, println};

libcap::entry!(main);

/// Receive on the echo endpoint (manifest: the first `caps` entry).
const ECHO: CapSlot = CapSlot::new(2);

fn main() -> Result<(), ErrorCode> {
    println!("echo-server: serving");
    let mut request = sys::recv(ECHO)?;
    loop {
        log_request(&request);
        // The answer is the request itself; the kernel routes it to the caller waiting in
        // `Call`, whoever that is.
        request = sys::reply_recv(ECHO, &request.message)?;
    }
}

fn log_request(request: &Received) {
    println!(
        "echo-server: client {} sent label {} words {:?}",
        request.badge.value(),
        request.message.label(),
        request.message.words()
    );
}
