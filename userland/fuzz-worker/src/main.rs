//! fuzz-worker: real work beside the syscall fuzzer (issue 5), in one of three roles.
//!
//! The harness (`kernel/src/harness/kfuzz.rs`) starts this program three times with the role in
//! `rdi` ([`libcap::rt::start_args`]); slot 2 is an endpoint and slot 3 a notification:
//!
//! - [`ECHO_SERVER`]: answers every message on slot 2 with word 0 + 1 and the sender's badge
//!   in word 1, forever (the harness kills it). The fuzzer calls it too, with junk.
//! - [`ECHO_CLIENT`]: calls slot 2 with 0, 1, 2, ... and checks every answer, until the
//!   notification in slot 3 is signalled (the harness does so once the fuzzer is done).
//!   Exit code: the number of correct round trips; a wrong answer exits with
//!   [`WRONG_ANSWER`] + what was wrong.
//! - [`PINGER`]: sends 0, 1, 2, ... on slot 2 (the fuzzer's receive side) and signals slot 3
//!   after each, forever, so the fuzzer's blocking receives have someone to hear.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::sys::{self, Message};
use libcap::{CapSlot, ErrorCode};

libcap::entry!(main);

pub const ECHO_SERVER: u64 = 1;
pub const ECHO_CLIENT: u64 = 2;
pub const PINGER: u64 = 3;
/// Exit codes of a client that got a wrong answer: this + 1 (call failed), 2 (word 0), 3
/// (badge echo), 4 (an error from the stop notification).
pub const WRONG_ANSWER: u64 = 0xbad0_0000;
/// The badge of the client's cap to the echo endpoint, which the server echoes back.
pub const CLIENT_BADGE: u64 = 0xc11e;

const ENDPOINT: CapSlot = CapSlot::new(2);
const NOTIFICATION: CapSlot = CapSlot::new(3);

/// Exit code of the server and the pinger, which end only on an error (as libcap's
/// `Result` termination numbers them).
fn failed(code: ErrorCode) -> u64 {
    libcap::rt::ERROR_EXIT_BASE + u64::from(code.as_u32())
}

fn main() -> u64 {
    let (role, _) = libcap::rt::start_args();
    match role {
        ECHO_SERVER => echo_server().map_or_else(failed, |()| 0),
        ECHO_CLIENT => echo_client(),
        PINGER => pinger().map_or_else(failed, |()| 0),
        _ => failed(ErrorCode::InvalidArgument),
    }
}

fn echo_server() -> Result<(), ErrorCode> {
    let mut next = sys::recv(ENDPOINT);
    loop {
        next = match next {
            Ok(received) => {
                let word = received.message.words().first().copied().unwrap_or(0);
                let answer = Message::new(0, &[word.wrapping_add(1), received.badge.value()])?;
                sys::reply_recv(ENDPOINT, &answer)
            }
            // The endpoint or a sender went away under us: keep serving.
            Err(_) => sys::recv(ENDPOINT),
        };
    }
}

fn echo_client() -> u64 {
    let mut count = 0u64;
    loop {
        match sys::poll(NOTIFICATION) {
            Ok(0) => {}
            Ok(_) => break,
            Err(_) => return WRONG_ANSWER + 4,
        }
        let Ok(question) = Message::new(1, &[count]) else {
            return WRONG_ANSWER + 1;
        };
        let answer = match sys::call(ENDPOINT, &question) {
            Ok(answer) => answer,
            Err(_) => return WRONG_ANSWER + 1,
        };
        if answer.words().first() != Some(&count.wrapping_add(1)) {
            return WRONG_ANSWER + 2;
        }
        if answer.words().get(1) != Some(&CLIENT_BADGE) {
            return WRONG_ANSWER + 3;
        }
        count += 1;
    }
    libcap::println!("fuzz-worker: echo client: {count} correct round trips");
    count
}

fn pinger() -> Result<(), ErrorCode> {
    let mut count = 0u64;
    loop {
        let ping = Message::new(2, &[count])?;
        if sys::send(ENDPOINT, &ping).is_err() {
            sys::yield_now()?;
        }
        // The notification may be gone (the fuzzer may have deleted it): keep pinging.
        let _ = sys::signal(NOTIFICATION);
        count = count.wrapping_add(1);
    }
}
