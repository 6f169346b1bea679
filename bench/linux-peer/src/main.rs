//! The Linux peer of `cargo xtask bench`: null syscall, pipe and futex IPC, timed with the TSC.
//!
//! `cargo xtask bench linux` builds this as a static executable, packs it with busybox into an
//! initramfs and boots Debian's kernel in the same QEMU, accelerator and `-icount` settings
//! our kernel is measured under. `/init` (a busybox script) runs it, then powers off.
//!
//! # What is measured
//!
//! - `calibration`: a counted loop of `2n + 1` instructions for several `n`; the slope of TSC
//!   ticks against instructions must be 1.000 under TCG with `-icount shift=0`, which is what
//!   makes every other figure an instruction count.
//! - `null_syscall`: `rdtsc; syscall(getppid); rdtscp`, minus the same sequence with `nop`
//!   in place of `syscall`.
//! - `pipe_round_trip` / `futex_round_trip`: a ping-pong between two processes (fork) on
//!   one CPU, timed by the parent from before its send to after its receive returns.
//! - `pipe_one_way` / `futex_one_way`: measured the way sel4bench measures IPC: the sender
//!   (parent) reads the TSC right before its send syscall and stores it in shared memory; the
//!   receiver (child) reads `rdtscp` right after its receive returns. Both subtract the cost
//!   of the same sequence with the system calls left out.
//!
//! The futex words live in a `MAP_SHARED` anonymous mapping, so the futex calls take the
//! shared (not `FUTEX_PRIVATE_FLAG`) path, as they must between processes.
//!
//! # Output
//!
//! One line per figure, `LINUX-PEER {json}`, with statistics over the iterations that follow
//! the warm-up, then `LINUX-PEER-DONE`. The values are raw TSC ticks; the host decides their
//! unit (instructions under icount, cycles under KVM) from the accelerator and the calibration.
//! Iterations and warm-up come from the `peer_iters` and `peer_warmup` environment
//! variables, which the kernel passes to init from its command line.

#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod raw;

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use raw::{rdtsc, rdtscp};

const MARKER: &str = "LINUX-PEER";

fn main() {
    let iterations = env_number("peer_iters", 10_000);
    let warmup = env_number("peer_warmup", 1_000);
    assert!(
        warmup + iterations <= raw::MAX_SAMPLES,
        "at most {} rounds in all",
        raw::MAX_SAMPLES
    );

    environment();
    calibration();

    // The overhead of the timing sequences themselves, subtracted from what they bracket.
    let null_nop = repeat(warmup + iterations, raw::timed_null_nop);
    let null_overhead = median_of(&null_nop[warmup..]);
    report("tsc_overhead_null", &null_nop[warmup..]);
    let ipc_nop = repeat(warmup + iterations, ipc_nop_sequence);
    let ipc_overhead = median_of(&ipc_nop[warmup..]);
    report("tsc_overhead_ipc", &ipc_nop[warmup..]);

    let null: Vec<u64> = repeat(warmup + iterations, raw::timed_null_syscall)
        .iter()
        .map(|t| t.saturating_sub(null_overhead))
        .collect();
    report("null_syscall", &null[warmup..]);

    for kind in [Kind::Pipe, Kind::Futex] {
        let (round_trip, one_way) = ping_pong(kind, warmup + iterations, ipc_overhead);
        report(
            &format!("{}_round_trip", kind.name()),
            &round_trip[warmup..],
        );
        report(&format!("{}_one_way", kind.name()), &one_way[warmup..]);
    }
    println!("{MARKER}-DONE");
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn repeat(count: usize, f: impl Fn() -> u64) -> Vec<u64> {
    (0..count).map(|_| f()).collect()
}

/// Prints what the host's report records about the guest: kernel, command line, CPU model
/// and the kernel's view of CPU vulnerabilities (which mitigations are on).
fn environment() {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let mut vulnerabilities = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu/vulnerabilities") {
        let mut names: Vec<_> = dir
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let value = read(&format!("/sys/devices/system/cpu/vulnerabilities/{name}"));
            vulnerabilities.push(format!("{}:{}", json_string(&name), json_string(&value)));
        }
    }
    println!(
        "{MARKER}-ENV {{\"kernel\":{},\"cmdline\":{},\"cpu\":{},\"cpus\":{},\"vulnerabilities\":{{{}}}}}",
        json_string(&read("/proc/version")),
        json_string(&read("/proc/cmdline")),
        json_string(&cpu),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        vulnerabilities.join(","),
    );
}

/// Times counted loops of several lengths and fits ticks = slope * instructions + intercept.
fn calibration() {
    let points: Vec<(f64, f64)> = [1_000u64, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000]
        .iter()
        .map(|&n| {
            let samples = repeat(21, || raw::timed_loop(n));
            ((2 * n + 1) as f64, median_of(&samples[1..]) as f64)
        })
        .collect();
    let count = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / count;
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let max_residual = points
        .iter()
        .map(|p| (p.1 - (slope * p.0 + intercept)).abs())
        .fold(0.0, f64::max);
    let pairs: Vec<String> = points
        .iter()
        .map(|p| format!("[{},{}]", p.0, p.1))
        .collect();
    println!(
        "{MARKER}-CALIBRATION {{\"slope\":{slope:.6},\"intercept\":{intercept:.3},\"max_residual\":{max_residual:.3},\"points\":[{}]}}",
        pairs.join(",")
    );
}

#[derive(Clone, Copy)]
enum Kind {
    Pipe,
    Futex,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pipe => "pipe",
            Kind::Futex => "futex",
        }
    }
}

/// The parent's timing sequence of a ping-pong round with the system calls left out:
/// what `ping_pong` subtracts from both its round trips and its one-way figures.
#[inline(never)]
fn ipc_nop_sequence() -> u64 {
    let shared = nop_shared();
    let sent = rdtsc();
    shared.sent_at.store(sent, Release);
    let received = rdtscp();
    received.wrapping_sub(shared.sent_at.load(Acquire))
}

fn nop_shared() -> &'static raw::Shared {
    static SHARED: std::sync::OnceLock<&'static raw::Shared> = std::sync::OnceLock::new();
    SHARED.get_or_init(raw::shared)
}

/// Runs `rounds` ping-pong rounds between this process and a forked child; returns the
/// parent's round trips and the child's one-way (parent to child) times, both less `overhead`.
fn ping_pong(kind: Kind, rounds: usize, overhead: u64) -> (Vec<u64>, Vec<u64>) {
    let shared = raw::shared();
    let (to_child_read, to_child_write) = raw::pipe();
    let (to_parent_read, to_parent_write) = raw::pipe();

    let child = raw::fork_with(|| {
        for round in 1..=rounds as u32 {
            match kind {
                Kind::Pipe => assert_eq!(raw::read_byte(to_child_read), 1),
                Kind::Futex => loop {
                    let seen = shared.ping.load(Acquire);
                    if seen == round {
                        break;
                    }
                    raw::futex_wait(&shared.ping, seen);
                },
            }
            let received = rdtscp();
            let one_way = received.wrapping_sub(shared.sent_at.load(Acquire));
            shared.one_way[round as usize - 1].store(one_way, Relaxed);
            match kind {
                Kind::Pipe => assert_eq!(raw::write_byte(to_parent_write), 1),
                Kind::Futex => {
                    shared.pong.store(round, Release);
                    raw::futex_wake(&shared.pong);
                }
            }
        }
    });

    let mut round_trips = Vec::with_capacity(rounds);
    for round in 1..=rounds as u32 {
        let (sent, received) = match kind {
            Kind::Pipe => {
                let sent = rdtsc();
                shared.sent_at.store(sent, Release);
                assert_eq!(raw::write_byte(to_child_write), 1);
                assert_eq!(raw::read_byte(to_parent_read), 1);
                (sent, rdtscp())
            }
            Kind::Futex => {
                shared.ping.store(round, Release);
                let sent = rdtsc();
                shared.sent_at.store(sent, Release);
                raw::futex_wake(&shared.ping);
                loop {
                    let seen = shared.pong.load(Acquire);
                    if seen == round {
                        break;
                    }
                    raw::futex_wait(&shared.pong, seen);
                }
                (sent, rdtscp())
            }
        };
        round_trips.push(received.wrapping_sub(sent).saturating_sub(overhead));
    }
    assert!(raw::wait(child), "the {} child failed", kind.name());
    for fd in [
        to_child_read,
        to_child_write,
        to_parent_read,
        to_parent_write,
    ] {
        raw::close(fd);
    }
    let one_way = shared.one_way[..rounds]
        .iter()
        .map(|t| t.load(Relaxed).saturating_sub(overhead))
        .collect();
    (round_trips, one_way)
}

fn median_of(samples: &[u64]) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

/// Prints median, minimum, 99th percentile, maximum, mean and standard deviation.
fn report(name: &str, samples: &[u64]) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0
    };
    let p99 = sorted[(n * 99).div_ceil(100) - 1];
    let mean = sorted.iter().map(|&s| s as f64).sum::<f64>() / n as f64;
    let variance = sorted
        .iter()
        .map(|&s| (s as f64 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    println!(
        "{MARKER} {{\"name\":{},\"median\":{median},\"min\":{},\"p99\":{p99},\"max\":{},\"mean\":{mean:.2},\"stddev\":{:.2},\"iterations\":{n}}}",
        json_string(name),
        sorted[0],
        sorted[n - 1],
        variance.sqrt(),
    );
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
