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
//!
//! `--differential`: campaigns of the differential test instead (leak suite DIFF-001,
//! `kcore::model`): each boots `ktest=suite` with `etc/diff-campaign` (`seed=S steps=N`)
//! in its initrd, and the suite runs DIFF-001 alone, `--steps` long, comparing the kernel
//! with the reference model after every step. `cargo xtask test` runs 100,000 steps of
//! one fixed seed.

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
    /// Run the differential test against the reference model (DIFF-001) instead.
    #[arg(long)]
    differential: bool,
    /// Steps per differential campaign.
    #[arg(long, default_value_t = 1_000_000)]
    steps: u64,
    #[command(flatten)]
    allow: crate::manifest::Allow,
}

fn parse_u64(text: &str) -> Result<u64, String> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|error| format!("{text}: {error}"))
}

pub fn run(args: Args) -> Result<()> {
    args.allow.apply();
    setup::ensure_kernel_target()?;
    setup::ensure(setup::QEMU)?;
    let accel = args.accel.unwrap_or_else(Accel::detect);
    let first = args.seed.unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        (nanos as u64) & 0xffff_ffff
    });
    if args.differential {
        return differential(&args, first, accel);
    }
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

/// `--differential`: DIFF-001 campaigns of `args.steps` steps from seed `first`.
fn differential(args: &Args, first: u64, accel: Accel) -> Result<()> {
    let kernel = build::kernel(false, Flavour::Test)?;
    let logs = build::target_dir().join("fuzz");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    // About 5,000 steps a second under TCG; the suite's boot and audit come on top.
    let timeout = Duration::from_secs(args.timeout.unwrap_or(120 + args.steps / 1000));
    println!("== fuzz --differential: {} campaign(s) of {} steps from seed {first:#x} ({accel:?})", args.campaigns, args.steps);
    let mut failed = Vec::new();
    for campaign in 0..args.campaigns {
        let seed = first.wrapping_add(campaign);
        let parameters = format!("seed={seed:#x} steps={}\n", args.steps).into_bytes();
        let initrd = build::initrd_with_files(vec![("etc/diff-campaign".into(), parameters)], "initrd-diff.tar")?;
        let boot = Boot::Direct { kernel: &kernel, initrd: &initrd, cmdline: "ktest=suite quiet" };
        let outcome = qemu::run_captured(qemu::test_command(&boot, accel), timeout)?;
        let log = logs.join(format!("diff-seed-{seed:#x}.log"));
        std::fs::write(&log, &outcome.serial).with_context(|| format!("writing {}", log.display()))?;
        let passed = outcome.status == Some(abi::qemu_exit::SUCCESS_STATUS)
            && outcome.serial.contains("KTEST PASS suite")
            && outcome.serial.contains("CASE PASS DIFF-001");
        if passed {
            let figures = outcome.serial.lines().find(|line| line.contains("DIFF-001: seed")).unwrap_or("");
            println!("diff seed={seed:#x}: ok in {:.1} s: {}", outcome.elapsed.as_secs_f64(), figures.trim_start_matches("leak-suite: DIFF-001: "));
            continue;
        }
        let why = outcome.serial.lines().find(|line| line.contains("CASE FAIL DIFF-001")).unwrap_or("no verdict (timeout or crash)");
        println!("diff seed={seed:#x}: FAILED: {why}; serial log in {}", log.display());
        failed.push(seed);
    }
    println!();
    println!("{} campaign(s), {} failed", args.campaigns, failed.len());
    if !failed.is_empty() {
        for seed in &failed {
            println!("FAILED seed: {seed:#x} (replay: cargo xtask fuzz --differential --steps {} --seed {seed:#x})", args.steps);
        }
        std::process::exit(1);
    }
    Ok(())
}
