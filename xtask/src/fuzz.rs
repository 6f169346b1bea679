//! `cargo xtask fuzz`: syscall-fuzzer campaigns in QEMU (issue 5).
//!
//! Each campaign boots the test kernel with `ktest=fuzz fuzz_seed=S fuzz_calls=N`: the
//! kernel's harness (`kernel/src/harness/kfuzz.rs`) runs `bin/fuzzer` beside the fuzz workers, then
//! checks the kernel's consistency and that every resource came back. Campaign `k` uses
//! seed `S + k`. A failed campaign prints its seed, the end of its serial log, and where the
//! whole log was saved; replay it with `--seed S --campaigns 1` (add `--trace` to see every
//! call the fuzzer made, to shrink the failure to one call).
//!
//! `cargo xtask test` runs one campaign of the kernel's defaults (100,000 calls, a fixed
//! seed) as the QEMU test `fuzz`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::build::{self, Flavour};
use crate::qemu::{self, Accel, Boot};
use crate::setup;

#[derive(clap::Args)]
pub struct Args {
    /// Syscalls per campaign.
    #[arg(long, default_value_t = 100_000)]
    calls: u64,
    /// Seed of the first campaign (decimal or 0x hex); campaign k uses seed + k.
    /// Default: from the clock (printed, so a failure can be replayed).
    #[arg(long, value_parser = parse_u64)]
    seed: Option<u64>,
    /// Number of campaigns (boots).
    #[arg(long, default_value_t = 1)]
    campaigns: u64,
    /// Print every call the fuzzer makes (slow: for shrinking a failure).
    #[arg(long)]
    trace: bool,
    /// Seconds a campaign may take before it counts as a hang (default: 60 + calls / 2000).
    #[arg(long)]
    timeout: Option<u64>,
    /// Accelerator; the default is KVM where /dev/kvm is hardware KVM.
    #[arg(long, value_enum)]
    accel: Option<Accel>,
}

fn parse_u64(text: &str) -> Result<u64, String> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|error| format!("{text}: {error}"))
}

pub fn run(args: Args) -> Result<()> {
    setup::ensure_kernel_target()?;
    setup::ensure(setup::QEMU)?;
    let accel = args.accel.unwrap_or_else(Accel::detect);
    let first = args.seed.unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        (nanos as u64) & 0xffff_ffff
    });
    let timeout = Duration::from_secs(args.timeout.unwrap_or(60 + args.calls / 2000));
    let kernel = build::kernel(false, Flavour::Test)?;
    let initrd = build::initrd()?;
    let logs = build::target_dir().join("fuzz");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    println!(
        "== fuzz: {} campaign(s) of {} calls from seed {first:#x} ({accel:?})",
        args.campaigns, args.calls
    );
    let mut failed = Vec::new();
    for campaign in 0..args.campaigns {
        let seed = first.wrapping_add(campaign);
        let mut cmdline = format!(
            "ktest=fuzz quiet fuzz_seed={seed:#x} fuzz_calls={}",
            args.calls
        );
        if args.trace {
            cmdline.push_str(" fuzz_trace");
        }
        let boot = Boot::Direct {
            kernel: &kernel,
            initrd: &initrd,
            cmdline: &cmdline,
        };
        let outcome = qemu::run_captured(qemu::command(&boot, accel), timeout)?;
        let seconds = outcome.elapsed.as_secs_f64();
        let passed = outcome.status == Some(abi::qemu_exit::SUCCESS_STATUS)
            && outcome.serial.contains("KTEST PASS fuzz");
        let log = logs.join(format!("seed-{seed:#x}.log"));
        std::fs::write(&log, &outcome.serial)
            .with_context(|| format!("writing {}", log.display()))?;
        if passed {
            let trips = outcome
                .serial
                .lines()
                .find(|line| line.contains("correct round trips beside"))
                .unwrap_or("");
            if outcome.serial.contains("FIXME known leak") {
                println!(
                    "fuzz seed={seed:#x}: passes with the known FIXME leak (capability-space cycle) reclaimed by the harness"
                );
            }
            println!(
                "fuzz seed={seed:#x}: ok, {} calls in {seconds:.1} s (boot included: {:.0} calls/s); {}",
                args.calls,
                args.calls as f64 / seconds,
                trips.trim_start_matches("kfuzz: ")
            );
            continue;
        }
        let why = match outcome.status {
            None => format!("timed out after {} s (hang?)", timeout.as_secs()),
            Some(code) => format!("QEMU exit status {code}"),
        };
        println!(
            "fuzz seed={seed:#x}: FAILED ({why}); serial log in {}",
            log.display()
        );
        let lines: Vec<&str> = outcome.serial.lines().collect();
        for line in &lines[lines.len().saturating_sub(40)..] {
            println!("    {line}");
        }
        failed.push(seed);
    }
    println!();
    println!("{} campaign(s), {} failed", args.campaigns, failed.len());
    if !failed.is_empty() {
        for seed in &failed {
            println!(
                "FAILED seed: {seed:#x} (replay: cargo xtask fuzz --calls {} --seed {seed:#x})",
                args.calls
            );
        }
        std::process::exit(1);
    }
    Ok(())
}
