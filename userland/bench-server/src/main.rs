//! bench-server: the passive half of `cargo xtask bench`.
//!
//! Started by the kernel harness (`kernel/src/harness/kbench.rs`, `ktest=bench`) with the caps in
//! [`proto::server_slots`]. It receives on the benchmark endpoint and answers each request
//! by its label ([`proto::label`]): a register-only reply, an echo of the call, a reply
//! after recording its own timestamps (the sel4bench one-way method), the longest message, a reply after deleting a
//! granted cap, or a phase of notification ping-pong or yields with the client. `DONE` ends
//! it with exit code 0. It prints nothing while measuring, so the console stays out of the
//! figures.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libcap::bench::{self, RawMessage, rdtsc, rdtscp};
use libcap::{CapSlot, ErrorCode, MessageInfo, sys};

#[path = "proto.rs"]
mod proto;

use proto::{label, server_slots as slots};

libcap::entry!(main);

const ENDPOINT: CapSlot = CapSlot::new(slots::ENDPOINT);

fn main() -> Result<(), ErrorCode> {
    let short = MessageInfo::new(0, 1, 0)?;
    let long = MessageInfo::new(0, libcap::abi::msg::MAX_MESSAGE_WORDS, 0)?;
    let empty = MessageInfo::new(0, 0, 0)?;
    let mut stamps: Vec<u64> = Vec::new();
    let mut received = bench::recv(ENDPOINT)?;
    loop {
        // First thing after the receive returned: the one-way end stamp.
        let arrived = rdtscp();
        let request = received.message;
        let words = request.words;
        let reply = match request.info.label() {
            label::PING => RawMessage { info: short, words: [words[0], 0, 0, 0, 0, 0, 0, 0] },
            label::STAMPED => {
                let reply = RawMessage { info: MessageInfo::new(0, request.info.length(), 0)?, words: [0; 8] };
                stamps.push(arrived);
                // Last thing before the ReplyRecv: the reply's one-way start stamp.
                stamps.push(rdtsc());
                received = bench::reply_recv(ENDPOINT, &reply)?;
                continue;
            }
            label::ECHO => RawMessage { info: MessageInfo::new(0, request.info.length(), 0)?, words },
            label::RESET_STAMPS => {
                stamps.clear();
                stamps.reserve(usize::try_from(words[0]).unwrap_or(0));
                RawMessage { info: empty, words: [0; 8] }
            }
            label::LONG => RawMessage { info: long, words },
            label::CAP => {
                // Make the receive slot empty again for the next granted cap.
                if request.info.caps() == 1 {
                    sys::cap_delete(CapSlot::new(slots::RECEIVED))?;
                }
                RawMessage { info: short, words: [request.info.caps() as u64, 0, 0, 0, 0, 0, 0, 0] }
            }
            label::NOTIFY => {
                let rounds = usize::try_from(words[0]).unwrap_or(0);
                reply_now(empty)?;
                stamps = notification_rounds(rounds, stamps)?;
                received = bench::recv(ENDPOINT)?;
                continue;
            }
            label::YIELD => {
                reply_now(empty)?;
                // The first yield lets the client start; then one per client yield; one
                // spare, which returns at once if the client is already blocked on a call.
                for _ in 0..words[0].saturating_add(2) {
                    sys::yield_now()?;
                }
                received = bench::recv(ENDPOINT)?;
                continue;
            }
            label::FETCH => {
                let start = usize::try_from(words[0]).unwrap_or(usize::MAX);
                let mut batch = [0u64; 8];
                for (slot, stamp) in batch.iter_mut().zip(stamps.iter().skip(start)) {
                    *slot = *stamp;
                }
                RawMessage { info: MessageInfo::new(0, 8, 0)?, words: batch }
            }
            label::DONE => {
                reply_now(empty)?;
                return Ok(());
            }
            _ => RawMessage { info: empty, words: [0; 8] },
        };
        received = bench::reply_recv(ENDPOINT, &reply)?;
    }
}

/// Answers the pending call at once (the phases run after it).
fn reply_now(info: MessageInfo) -> Result<(), ErrorCode> {
    let message = sys::Message::new(info.label(), &[])?;
    sys::reply(libcap::slots::NULL, &message)
}

/// `rounds` of: wait for the client's signal, stamp, signal back. Returns the stamps (taken
/// right after each wait returned), reusing `stamps`' memory.
fn notification_rounds(rounds: usize, mut stamps: Vec<u64>) -> Result<Vec<u64>, ErrorCode> {
    let ping = CapSlot::new(slots::PING);
    let pong = CapSlot::new(slots::PONG);
    stamps.clear();
    stamps.reserve(rounds);
    for _ in 0..rounds {
        sys::wait(ping)?;
        stamps.push(rdtscp());
        sys::signal(pong)?;
    }
    Ok(stamps)
}
