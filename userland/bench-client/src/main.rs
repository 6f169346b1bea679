//! bench-client: the measuring half of `cargo xtask bench`.
//!
//! Started by the kernel harness (`kernel/src/harness/kbench.rs`, `ktest=bench`) beside
//! `bench-server`, at the same priority, with the caps in [`proto::client_slots`]. It times
//! each operation with the time-stamp counter, the way `bench/linux-peer` times Linux: a
//! warm-up of [`proto::WARMUP`] rounds, then [`proto::ITERATIONS`] measured rounds, each
//! reported as median, minimum, 99th percentile, maximum, mean and standard deviation on one
//! line `DAIOS-BENCH {json}`. Every figure has the median of the bare timing sequence
//! (`rdtsc` then `rdtscp`, `tsc_overhead`) subtracted, as sel4bench does.
//!
//! # Units
//!
//! TSC ticks. Under QEMU TCG with `-icount shift=0` one tick is one executed guest
//! instruction (user and kernel alike), which the calibration line checks: counted
//! `dec`/`jnz` loops of known length, fitted by least squares; xtask refuses the run unless
//! the slope is 1.000. The timer interrupt still fires (guest time advances one nanosecond
//! per instruction), and a round it lands in counts the interrupt's instructions too: that
//! inflates max, p99 and stddev, rarely the median.
//!
//! # Figures
//!
//! - `null_syscall`: a syscall number the kernel refuses at once (`bench::NULL_SYSCALL`),
//!   less the same sequence with the `syscall` replaced by a no-op (`bench::null_syscall_dry`).
//! - `yield_alone`: `Yield` with no other thread ready (the server is blocked in its
//!   receive, the harness in its join), so the kernel returns at once.
//! - `cap_copy`, `cap_delete`: copy a notification cap into an empty slot, delete it again.
//! - `ipc_round_trip`: `Call` + the server's `ReplyRecv`, one word each way, registers only,
//!   across address spaces; `ipc_round_trip_0w` and `ipc_round_trip_10w` the same with 0
//!   and 10 words (the server echoes the call; 8 words in registers, 2 through the IPC
//!   buffers). Each less the same call sequence with the syscall replaced by a no-op
//!   (`bench::call_dry`), as sel4bench subtracts its no-op sequence.
//! - `ipc_one_way`, `ipc_reply_one_way` (0 words), `_1w`, `_10w`: the sel4bench method:
//!   the sender reads `rdtsc` right before its syscall, the receiver `rdtscp` right after
//!   its own returns; the server records its stamps and the client fetches them after the
//!   rounds. Less the dry call sequence of the same shape.
//! - with `cargo xtask bench`, every `ipc_*` figure again as `ipc_*_slowpath`: the same
//!   programs booted with `ipc_fastpath=off`.
//! - `ipc_round_trip_long`: 480 words (3,840 bytes: the ABI's longest message; 8 words in
//!   registers, 472 copied between the IPC buffers) each way.
//! - `ipc_round_trip_cap`: one cap granted with the call; the server deletes the received
//!   cap (one `CapDelete`, see `cap_delete`) before it replies, so the slot is free again.
//! - `notification_round_trip`: signal the server's notification, wait on our own; the
//!   server waits, then signals back. `notification_one_way`: from `rdtsc` before our
//!   `Signal` to the server's `rdtscp` after its `Wait` returned (our own `Wait` blocking
//!   and the switch included: at equal priority the signalled thread runs only when we
//!   block).
//! - `yield_round_trip`: `Yield` to the server, which yields back: two yields, two switches.
//! - `map_4k`, `unmap_4k`, `map_unmap_4k`: map a frame into an address space we do not run
//!   in, and unmap it.
//! - `boot_reset_to_client_main`: the TSC when this `main` began, once: instructions since
//!   the virtual CPU's reset (firmware, kernel boot, harness, loading both programs).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libcap::bench::{self, RawMessage, rdtsc, rdtscp};
use libcap::process::{self, Access};
use libcap::{CapSlot, ErrorCode, MessageInfo, println, sys};

#[path = "../../bench-server/src/proto.rs"]
mod proto;

use proto::{ITERATIONS, WARMUP, client_slots as slots, label};

libcap::entry!(main);

const MARKER: &str = "DAIOS-BENCH";
const ROUNDS: usize = WARMUP + ITERATIONS;
const ENDPOINT: CapSlot = CapSlot::new(slots::ENDPOINT);
/// Where the frame is mapped in the other address space.
const MAP_ADDRESS: u64 = 0x0000_1000_0000_0000;

fn main() -> Result<(), ErrorCode> {
    let started = rdtsc();
    let mut a: Vec<u64> = Vec::with_capacity(ROUNDS);
    let mut b: Vec<u64> = Vec::with_capacity(ROUNDS);

    calibration();
    report_single("boot_reset_to_client_main", started);

    measure(&mut a, || {
        let t0 = rdtsc();
        rdtscp() - t0
    });
    report("tsc_overhead", &mut a, 0);
    // `report` sorted the measured rounds: this is their (upper) median.
    let overhead = a.get(WARMUP + ITERATIONS / 2).copied().unwrap_or(0);

    // Make sure the server is up and blocked in its receive before anything else.
    call(label::PING, 1, [0; 8])?;

    measure(&mut a, || {
        let t0 = rdtsc();
        let _ = bench::null_syscall_dry();
        rdtscp() - t0
    });
    let null_overhead = median(&mut a);
    measure(&mut a, || {
        let t0 = rdtsc();
        let _ = bench::null_syscall();
        rdtscp() - t0
    });
    report("null_syscall", &mut a, null_overhead);

    measure(&mut a, || {
        let t0 = rdtsc();
        let _ = sys::yield_now();
        rdtscp() - t0
    });
    report("yield_alone", &mut a, overhead);

    let (source, scratch) = (CapSlot::new(slots::PING), CapSlot::new(slots::SCRATCH));
    a.clear();
    b.clear();
    for _ in 0..ROUNDS {
        let t0 = rdtsc();
        let copied = sys::cap_copy(source, scratch);
        let t1 = rdtscp();
        let deleted = sys::cap_delete(scratch);
        let t2 = rdtscp();
        copied?;
        deleted?;
        a.push(t1 - t0);
        b.push(t2 - t1);
    }
    report("cap_copy", &mut a, overhead);
    report("cap_delete", &mut b, overhead);

    let ping = RawMessage { info: info(label::PING, 1, 0)?, words: [7, 0, 0, 0, 0, 0, 0, 0] };
    let ping_overhead = dry_call_overhead(&mut a, &ping);
    measure(&mut a, || {
        let t0 = rdtsc();
        let _ = bench::call(ENDPOINT, &ping);
        rdtscp() - t0
    });
    report("ipc_round_trip", &mut a, ping_overhead);

    for (words, name) in [(0, "ipc_round_trip_0w"), (10, "ipc_round_trip_10w")] {
        let echo = RawMessage { info: info(label::ECHO, words, 0)?, words: [1, 2, 3, 4, 5, 6, 7, 8] };
        let echo_overhead = dry_call_overhead(&mut a, &echo);
        let mut failed = None;
        measure(&mut a, || {
            let t0 = rdtsc();
            let reply = bench::call(ENDPOINT, &echo);
            let t1 = rdtscp();
            match reply {
                Ok(r) if r.message.info.length() == words => {}
                other => failed = Some(other.map(|r| r.message.info)),
            }
            t1 - t0
        });
        if let Some(what) = failed {
            println!("bench-client: the {words}-word echo did not come back whole: {what:?}");
            return Err(ErrorCode::InvalidArgument);
        }
        report(name, &mut a, echo_overhead);
    }

    let shapes = [(0, "ipc_one_way", "ipc_reply_one_way"), (1, "ipc_one_way_1w", "ipc_reply_one_way_1w"), (10, "ipc_one_way_10w", "ipc_reply_one_way_10w")];
    for (words, call_name, reply_name) in shapes {
        one_way(&mut a, &mut b, words, call_name, reply_name)?;
    }

    let long = info(label::LONG, libcap::abi::msg::MAX_MESSAGE_WORDS, 0)?;
    let mut failed = None;
    measure(&mut a, || {
        let message = RawMessage { info: long, words: [1, 2, 3, 4, 5, 6, 7, 8] };
        let t0 = rdtsc();
        let reply = bench::call(ENDPOINT, &message);
        let t1 = rdtscp();
        match reply {
            Ok(r) if r.message.info.length() == libcap::abi::msg::MAX_MESSAGE_WORDS => {}
            other => failed = Some(other.map(|r| r.message.info)),
        }
        t1 - t0
    });
    if let Some(what) = failed {
        println!("bench-client: the long message did not come back whole: {what:?}");
        return Err(ErrorCode::InvalidArgument);
    }
    report("ipc_round_trip_long", &mut a, overhead);

    let cap = info(label::CAP, 0, 1)?;
    let mut transferred = 0u64;
    measure(&mut a, || {
        let message = RawMessage { info: cap, words: [0; 8] };
        let t0 = rdtsc();
        let reply = bench::call(ENDPOINT, &message);
        let t1 = rdtscp();
        transferred += reply.map_or(0, |r| r.message.words[0]);
        t1 - t0
    });
    if transferred != ROUNDS as u64 {
        println!("bench-client: {transferred} of {ROUNDS} granted caps arrived");
        return Err(ErrorCode::InvalidArgument);
    }
    report("ipc_round_trip_cap", &mut a, overhead);

    notifications(&mut a, &mut b, overhead)?;

    call(label::YIELD, 1, [ITERATIONS as u64 + WARMUP as u64, 0, 0, 0, 0, 0, 0, 0])?;
    measure(&mut a, || {
        let t0 = rdtsc();
        let _ = sys::yield_now();
        rdtscp() - t0
    });
    report("yield_round_trip", &mut a, overhead);

    map_unmap(&mut a, &mut b, overhead)?;

    call(label::DONE, 0, [0; 8])?;
    println!("{MARKER}-DONE");
    Ok(())
}

fn info(label: u32, length: usize, caps: usize) -> Result<MessageInfo, ErrorCode> {
    MessageInfo::new(label, length, caps)
}

fn call(label: u32, length: usize, words: [u64; 8]) -> Result<[u64; 8], ErrorCode> {
    let message = RawMessage { info: info(label, length, 0)?, words };
    Ok(bench::call(ENDPOINT, &message)?.message.words)
}

/// The (upper) median of the measured rounds of `samples` (sorts them).
fn median(samples: &mut [u64]) -> u64 {
    let measured = samples.get_mut(WARMUP..).unwrap_or(&mut []);
    measured.sort_unstable();
    measured.get(measured.len() / 2).copied().unwrap_or(0)
}

/// The median cost of `message`'s call sequence with the syscall replaced by a no-op: what
/// each IPC figure of that shape has subtracted (the sel4bench method).
fn dry_call_overhead(samples: &mut Vec<u64>, message: &RawMessage) -> u64 {
    measure(samples, || {
        let t0 = rdtsc();
        let _ = bench::call_dry(ENDPOINT, message);
        rdtscp() - t0
    });
    median(samples)
}

/// Each direction of a `words`-word call and its `words`-word reply, one way: from our
/// `rdtsc` before the `Call` to the server's `rdtscp` after its receive returned, and from
/// its `rdtsc` before its `ReplyRecv` to our `rdtscp` after the `Call` returned. The
/// server records its stamps; we fetch them after the rounds, eight per call.
fn one_way(starts: &mut Vec<u64>, ends: &mut Vec<u64>, words: usize, call_name: &str, reply_name: &str) -> Result<(), ErrorCode> {
    let message = RawMessage { info: info(label::STAMPED, words, 0)?, words: [0; 8] };
    let overhead = dry_call_overhead(starts, &message);
    call(label::RESET_STAMPS, 1, [2 * ROUNDS as u64, 0, 0, 0, 0, 0, 0, 0])?;
    starts.clear();
    ends.clear();
    for _ in 0..ROUNDS {
        let t0 = rdtsc();
        let reply = bench::call(ENDPOINT, &message);
        let t3 = rdtscp();
        reply?;
        starts.push(t0);
        ends.push(t3);
    }
    // The server's stamps, [arrived, leaving] per round: four rounds per fetch, each turned
    // into its two figures in place.
    for first in (0..ROUNDS).step_by(4) {
        let batch = call(label::FETCH, 1, [2 * first as u64, 0, 0, 0, 0, 0, 0, 0])?;
        for (offset, pair) in batch.chunks_exact(2).enumerate() {
            let round = first + offset;
            if let (Some(start), Some(end), [arrived, leaving]) = (starts.get_mut(round), ends.get_mut(round), pair) {
                *start = arrived.wrapping_sub(*start);
                *end = end.wrapping_sub(*leaving);
            }
        }
    }
    report(call_name, starts, overhead);
    report(reply_name, ends, overhead);
    Ok(())
}

/// Runs `round` [`ROUNDS`] times into `samples` (warm-up rounds first).
fn measure(samples: &mut Vec<u64>, mut round: impl FnMut() -> u64) {
    samples.clear();
    for _ in 0..ROUNDS {
        samples.push(round());
    }
}

fn notifications(t0s: &mut Vec<u64>, round_trips: &mut Vec<u64>, overhead: u64) -> Result<(), ErrorCode> {
    let (ping, pong) = (CapSlot::new(slots::PING), CapSlot::new(slots::PONG));
    call(label::NOTIFY, 1, [ROUNDS as u64, 0, 0, 0, 0, 0, 0, 0])?;
    t0s.clear();
    round_trips.clear();
    for _ in 0..ROUNDS {
        let t0 = rdtsc();
        let signalled = sys::signal(ping);
        let waited = sys::wait(pong);
        let t1 = rdtscp();
        signalled?;
        waited?;
        t0s.push(t0);
        round_trips.push(t1 - t0);
    }
    report("notification_round_trip", round_trips, overhead);
    // The server's stamps, eight per call; the one-way figure replaces t0 in place.
    let mut index = 0;
    while index < ROUNDS {
        let stamps = call(label::FETCH, 1, [index as u64, 0, 0, 0, 0, 0, 0, 0])?;
        for (offset, stamp) in stamps.iter().enumerate() {
            if let Some(t0) = t0s.get_mut(index + offset) {
                *t0 = stamp.wrapping_sub(*t0);
            }
        }
        index += 8;
    }
    report("notification_one_way", t0s, overhead);
    Ok(())
}

fn map_unmap(maps: &mut Vec<u64>, unmaps: &mut Vec<u64>, overhead: u64) -> Result<(), ErrorCode> {
    let (space, frame) = (CapSlot::new(slots::ADDRESS_SPACE), CapSlot::new(slots::FRAME));
    maps.clear();
    unmaps.clear();
    for _ in 0..ROUNDS {
        let t0 = rdtsc();
        let mapped = process::map(space, frame, MAP_ADDRESS, Access::ReadWrite);
        let t1 = rdtscp();
        let unmapped = process::unmap(space, MAP_ADDRESS);
        let t2 = rdtscp();
        mapped?;
        unmapped?;
        maps.push(t1 - t0);
        unmaps.push(t2 - t1);
    }
    report("map_4k", maps, overhead);
    report("unmap_4k", unmaps, overhead);
    measure(maps, || {
        let t0 = rdtsc();
        let _ = process::map(space, frame, MAP_ADDRESS, Access::ReadWrite);
        let _ = process::unmap(space, MAP_ADDRESS);
        rdtscp() - t0
    });
    report("map_unmap_4k", maps, overhead);
    Ok(())
}

/// Counted `dec`/`jnz` loops of known length: ticks against instructions, least squares.
fn calibration() {
    let lengths = [1_000u64, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];
    let mut points = [(0.0f64, 0.0f64); 7];
    for (point, &n) in points.iter_mut().zip(lengths.iter()) {
        let mut samples = [0u64; 21];
        for sample in samples.iter_mut() {
            let t0 = rdtsc();
            bench::counted_loop(n);
            *sample = rdtscp() - t0;
        }
        let measured = &mut samples[1..];
        measured.sort_unstable();
        *point = ((2 * n) as f64, measured[measured.len() / 2] as f64);
    }
    let count = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / count;
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.0 - mean_x)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let max_residual = points.iter().map(|p| abs(p.1 - (slope * p.0 + intercept))).fold(0.0, f64::max);
    let mut pairs = alloc::string::String::new();
    for (index, p) in points.iter().enumerate() {
        let separator = if index == 0 { "" } else { "," };
        pairs.push_str(&alloc::format!("{separator}[{},{}]", p.0, p.1));
    }
    println!(
        "{MARKER}-CALIBRATION {{\"slope\":{slope:.6},\"intercept\":{intercept:.3},\"max_residual\":{max_residual:.3},\"points\":[{pairs}]}}"
    );
}

/// Prints one figure over the measured rounds of `samples` (the warm-up ones are skipped),
/// each less `overhead`. Sorts the measured rounds in place.
fn report(name: &str, samples: &mut [u64], overhead: u64) {
    let Some(measured) = samples.get_mut(WARMUP..) else { return };
    for sample in measured.iter_mut() {
        *sample = sample.saturating_sub(overhead);
    }
    measured.sort_unstable();
    let n = measured.len();
    if n == 0 {
        return;
    }
    let median = if n % 2 == 1 {
        measured[n / 2] as f64
    } else {
        (measured[n / 2 - 1] + measured[n / 2]) as f64 / 2.0
    };
    let p99 = measured[(n * 99).div_ceil(100) - 1];
    let mean = measured.iter().map(|&s| s as f64).sum::<f64>() / n as f64;
    let variance = measured.iter().map(|&s| (s as f64 - mean) * (s as f64 - mean)).sum::<f64>() / n as f64;
    println!(
        "{MARKER} {{\"name\":\"{name}\",\"median\":{median},\"min\":{},\"p99\":{p99},\"max\":{},\"mean\":{mean:.2},\"stddev\":{:.2},\"iterations\":{n}}}",
        measured[0],
        measured[n - 1],
        sqrt(variance),
    );
}

/// A figure measured once.
fn report_single(name: &str, value: u64) {
    println!(
        "{MARKER} {{\"name\":\"{name}\",\"median\":{value},\"min\":{value},\"p99\":{value},\"max\":{value},\"mean\":{value},\"stddev\":0,\"iterations\":1}}"
    );
}

fn abs(x: f64) -> f64 {
    if x < 0.0 { -x } else { x }
}

/// Square root by Newton's iteration (`f64::sqrt` is in `std`, not `core`).
fn sqrt(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut y = if x > 1.0 { x } else { 1.0 };
    for _ in 0..128 {
        y = 0.5 * (y + x / y);
    }
    y
}
