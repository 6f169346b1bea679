//! `cargo xtask bench` (and `bench ours`): our kernel's figures, beside the Linux peer's.
//!
//! Builds the test kernel in release mode and an initrd whose user programs are release
//! builds, boots it with `ktest=bench quiet` under the same QEMU, machine and accelerator as
//! the Linux peer (`-icount shift=0` under TCG), then again with `ipc_fastpath=off` (its
//! `ipc_*` figures are reported as `ipc_*_slowpath`: the slow path, like for like), and reads the `DAIOS-BENCH` lines that
//! `userland/bench-client` prints (what it measures and how: its crate doc;
//! the harness that starts it: `kernel/src/harness/kbench.rs`). Like the peer, the run is refused
//! unless the calibration slope is 1.000 ticks per instruction under TCG.
//!
//! `cargo xtask bench` with no argument (or `all`) runs ours and the Linux peer at the same
//! time (two QEMUs; under `-icount` the figures do not depend on host load), prints the
//! table with ratios and the reference rows, the goal verdicts, and writes
//! `target/bench/report.json` and `report.svg`.
//!
//! Goals (issue 14; benchmarks, never test assertions): IPC round trip at most 500 guest
//! instructions, null syscall at most 100; seL4's 395 and 89 beyond that.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde::Deserialize;

use crate::bench_linux::{self, Figure};
use crate::build::{self, Flavour, workspace_root};
use crate::qemu::{self, Accel, Boot};
use crate::setup;

const MARKER: &str = "DAIOS-BENCH";
/// A run takes a few minutes under TCG; this only guards against a hung guest.
const TIMEOUT: Duration = Duration::from_secs(1200);

/// (figure, goal, seL4 under the same QEMU) in guest instructions.
const GOALS: &[(&str, f64, f64)] = &[("ipc_round_trip", 500.0, 395.0), ("null_syscall", 100.0, 89.0)];

#[derive(Deserialize)]
struct Line {
    name: String,
    median: f64,
    min: f64,
    p99: f64,
    stddev: f64,
    iterations: u64,
}

#[derive(Deserialize)]
struct CalibrationLine {
    slope: f64,
    max_residual: f64,
}

#[derive(Deserialize)]
struct BootLine {
    reset_to_harness_ticks: u64,
    kernel_entry_to_harness_us: u64,
}

/// `cargo xtask bench ours`: our figures only.
pub fn run_ours_only() -> Result<()> {
    let ours = run_ours()?;
    bench_linux::print_table(&ours, &[]);
    print_verdicts(&ours);
    Ok(())
}

/// `cargo xtask bench` / `bench all`: ours and the Linux peer in the same run, side by side.
pub fn run_all() -> Result<()> {
    let (ours, linux) = std::thread::scope(|scope| {
        let ours = scope.spawn(run_ours);
        let linux = bench_linux::run_linux_peer();
        let ours = ours.join().unwrap_or_else(|_| Err(anyhow::anyhow!("our benchmark thread panicked")));
        (ours, linux)
    });
    let (ours, linux) = (ours.context("our kernel's benchmark")?, linux.context("the Linux peer")?);
    bench_linux::print_table(&ours, &linux);
    print_verdicts(&ours);
    let path = workspace_root().join("target").join("bench").join("report.json");
    bench_linux::write_report(&ours, &linux, &path)?;
    println!("\nreport: {}\nchart:  {}", path.display(), path.with_extension("svg").display());
    Ok(())
}

/// Builds and boots the benchmark kernel; returns our figures (calibration included, as
/// `calibration_slope`).
pub fn run_ours() -> Result<Vec<Figure>> {
    setup::ensure_kernel_target()?;
    setup::ensure(setup::QEMU)?;
    let kernel = build::kernel(true, Flavour::Test)?;
    let initrd = build::initrd_with(true)?;
    let accel = Accel::detect();
    let (mut figures, taken) = boot_bench(&kernel, &initrd, accel, "ktest=bench quiet", "ours")?;
    eprintln!("xtask: the IPC fast path was taken {taken} times");
    // The same programs with the fast path off: the slow path's figures, like for like.
    let (slow, _) = boot_bench(&kernel, &initrd, accel, "ktest=bench quiet ipc_fastpath=off", "ours-slowpath")?;
    figures.extend(slow.into_iter().filter(|figure| figure.name.starts_with("ipc_")).map(|mut figure| {
        figure.name.push_str("_slowpath");
        figure
    }));
    figures.extend(system_boot(&kernel, &initrd, accel)?);
    Ok(figures)
}

/// One benchmark boot with `cmdline`, its serial log kept in `target/bench/DIR/`: the
/// figures, and how often the kernel took the IPC fast path.
fn boot_bench(kernel: &std::path::Path, initrd: &std::path::Path, accel: Accel, cmdline: &str, dir: &str) -> Result<(Vec<Figure>, u64)> {
    let mut command = qemu::command(&Boot::Direct { kernel, initrd, cmdline }, accel);
    if accel == Accel::Tcg {
        command.args(["-icount", "shift=0"]);
    }
    command.args(["-nic", "none"]);
    eprintln!("xtask: booting our kernel with {cmdline} ({accel:?})");
    let outcome = qemu::run_captured(command, TIMEOUT)?;
    let dir = workspace_root().join("target").join("bench").join(dir);
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("serial.log");
    std::fs::write(&log, &outcome.serial).with_context(|| format!("writing {}", log.display()))?;
    ensure!(
        outcome.status == Some(abi::qemu_exit::SUCCESS_STATUS) && outcome.serial.contains("KTEST PASS bench"),
        "the benchmark kernel did not finish (QEMU status {:?} after {:.1?}); serial log in {}",
        outcome.status,
        outcome.elapsed,
        log.display()
    );
    eprintln!("xtask: our kernel ran the benchmark in {:.1?} (boot to exit)", outcome.elapsed);
    let taken = outcome
        .serial
        .lines()
        .find_map(|line| line.split_once("ipc fast path: ")?.1.split_once(", taken ")?.1.strip_suffix(" times")?.parse().ok())
        .unwrap_or(0);
    Ok((parse(&outcome.serial, accel)?, taken))
}

/// Boots the whole system as `cargo xtask run` does (init and the manifest's programs) and
/// reads, from init's log, the time-stamp counter when init starts and when it has started
/// every program: instructions since the CPU's reset under TCG with -icount.
fn system_boot(kernel: &std::path::Path, initrd: &std::path::Path, accel: Accel) -> Result<Vec<Figure>> {
    let unit = match accel {
        Accel::Tcg => "instructions",
        Accel::Kvm => "cycles",
    };
    let mut command = qemu::command(&Boot::Direct { kernel, initrd, cmdline: "quiet" }, accel);
    if accel == Accel::Tcg {
        command.args(["-icount", "shift=0"]);
    }
    command.args(["-nic", "none"]);
    let (found, outcome) = qemu::run_until(command, &["init: running (tsc ", "programs started (tsc "], TIMEOUT)?;
    ensure!(found, "the system boot did not report init's start and its programs' (after {:.1?})", outcome.elapsed);
    let tsc_after = |marker: &str| -> Option<f64> {
        let line = outcome.serial.lines().find(|line| line.contains(marker))?;
        let start = line.find("(tsc ")? + 5;
        line[start..].trim_end_matches(')').trim().parse().ok()
    };
    let mut figures = Vec::new();
    // init times each spawn (ELF load, frames, mappings, caps, thread start): the median.
    let mut spawns: Vec<f64> = outcome
        .serial
        .lines()
        .filter(|line| line.starts_with("init: started "))
        .filter_map(spawn_ticks)
        .collect();
    spawns.sort_by(f64::total_cmp);
    if let Some(median) = spawns.get(spawns.len() / 2) {
        let mut figure = single("process_spawn", unit, *median);
        figure.min = spawns.first().copied().unwrap_or(*median);
        figure.iterations = spawns.len() as u64;
        figures.push(figure);
    }
    if let Some(value) = tsc_after("init: running (tsc ") {
        figures.push(single("boot_reset_to_init", unit, value));
    }
    if let Some(value) = tsc_after("programs started (tsc ") {
        figures.push(single("boot_reset_to_all_started", unit, value));
        if accel == Accel::Tcg {
            // Under -icount shift=0 the guest clock advances 1 ns per instruction.
            let millis = value / 1e6;
            let verdict = if millis < 100.0 { "met" } else { "MISSED" };
            eprintln!("xtask: boot to every manifest program started: {value} instructions = {millis:.1} ms of guest time (goal < 100 ms: {verdict})");
        }
    }
    Ok(figures)
}

/// The spawn cost init logs in `init: started NAME (..., spawn N tsc)`.
pub fn spawn_ticks(line: &str) -> Option<f64> {
    let start = line.find(", spawn ")? + ", spawn ".len();
    line[start..].split_whitespace().next()?.parse().ok()
}

fn parse(serial: &str, accel: Accel) -> Result<Vec<Figure>> {
    let unit = match accel {
        Accel::Tcg => "instructions",
        Accel::Kvm => "cycles",
    };
    let mut figures = Vec::new();
    let mut calibration = None;
    let mut done = false;
    for line in serial.lines().map(str::trim) {
        let Some(at) = line.find(MARKER) else { continue };
        let line = &line[at + MARKER.len()..];
        if let Some(json) = line.strip_prefix("-CALIBRATION ") {
            calibration = Some(serde_json::from_str::<CalibrationLine>(json).context("parsing DAIOS-BENCH-CALIBRATION")?);
        } else if let Some(json) = line.strip_prefix("-BOOT ") {
            let boot: BootLine = serde_json::from_str(json).context("parsing DAIOS-BENCH-BOOT")?;
            figures.push(single("boot_reset_to_harness", unit, boot.reset_to_harness_ticks as f64));
            figures.push(single("boot_kernel_entry_to_harness", "guest µs", boot.kernel_entry_to_harness_us as f64));
        } else if let Some(json) = line.strip_prefix(' ') {
            let parsed: Line = serde_json::from_str(json).with_context(|| format!("parsing DAIOS-BENCH line {json:?}"))?;
            figures.push(Figure {
                name: parsed.name,
                unit: unit.to_string(),
                median: parsed.median,
                min: parsed.min,
                p99: parsed.p99,
                stddev: parsed.stddev,
                iterations: parsed.iterations,
            });
        } else if line == "-DONE" {
            done = true;
        }
    }
    ensure!(done, "no DAIOS-BENCH-DONE line");
    let calibration = calibration.context("no DAIOS-BENCH-CALIBRATION line")?;
    if accel == Accel::Tcg {
        ensure!(
            (calibration.slope - 1.0).abs() <= 1e-3 && calibration.max_residual <= 2.0,
            "calibration failed: the TSC advanced {:.6} ticks per instruction (max residual {:.3}); with -icount shift=0 \
             it must be 1.000, or the figures are not instruction counts",
            calibration.slope,
            calibration.max_residual
        );
    }
    figures.push(Figure {
        name: "calibration_slope".into(),
        unit: "TSC ticks per instruction".into(),
        median: calibration.slope,
        min: calibration.slope,
        p99: calibration.slope,
        stddev: 0.0,
        iterations: 7,
    });
    Ok(figures)
}

fn single(name: &str, unit: &str, value: f64) -> Figure {
    Figure { name: name.into(), unit: unit.into(), median: value, min: value, p99: value, stddev: 0.0, iterations: 1 }
}

/// The goals against our medians: met or missed, and by how much.
fn print_verdicts(ours: &[Figure]) {
    println!("\nGoals (issue 14; guest instructions under TCG -icount shift=0):");
    for &(name, goal, sel4) in GOALS {
        match ours.iter().find(|f| f.name == name) {
            Some(figure) if figure.unit == "instructions" => {
                let verdict = if figure.median <= goal { "MET" } else { "MISSED" };
                println!(
                    "  {name:<16} {:>8} (goal <= {goal:.0}: {verdict}, {:.2}x the goal; seL4 {sel4:.0}: {:.2}x)",
                    figure.median,
                    figure.median / goal,
                    figure.median / sel4
                );
            }
            Some(figure) => println!("  {name:<16} {} {} (goals are in instructions: not comparable)", figure.median, figure.unit),
            None => println!("  {name:<16} not measured"),
        }
    }
    if ours.iter().any(|f| GOALS.iter().any(|g| g.0 == f.name && f.unit == "instructions" && f.median > g.1)) {
        println!("  Where the instructions go: bench/README.md, \"Profile\".");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_figures_boot_and_calibration() {
        let serial = "DAIOS-BENCH-BOOT {\"reset_to_harness_ticks\":123,\"kernel_entry_to_harness_us\":45,\"tsc_khz\":1000000}\n\
            DAIOS-BENCH-CALIBRATION {\"slope\":1.000000,\"intercept\":4.000,\"max_residual\":0.000,\"points\":[[2000,2004]]}\n\
            DAIOS-BENCH {\"name\":\"null_syscall\",\"median\":100,\"min\":99,\"p99\":120,\"max\":9000,\"mean\":101.5,\"stddev\":3.25,\"iterations\":10000}\n";
        assert!(parse(serial, Accel::Tcg).is_err(), "no DONE line");
        let figures = parse(&format!("{serial}DAIOS-BENCH-DONE\n"), Accel::Tcg).unwrap();
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["boot_reset_to_harness", "boot_kernel_entry_to_harness", "null_syscall", "calibration_slope"]);
        assert_eq!(figures[2].median, 100.0);
        assert_eq!(figures[2].unit, "instructions");
        let bad = serial.replace("\"slope\":1.000000", "\"slope\":1.5");
        assert!(parse(&format!("{bad}DAIOS-BENCH-DONE\n"), Accel::Tcg).is_err(), "slope 1.5 is refused");
    }
}
