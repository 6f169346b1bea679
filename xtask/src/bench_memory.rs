//! `cargo xtask bench memory`: the memory server, map/unmap and the growing heap, measured.
//!
//! Boots `tests/manifests/memory-bench.toml` (the memory server beside
//! `userland/memory-bench`, release builds) under TCG with `-icount shift=0`, where the
//! time-stamp counter counts guest instructions (`cargo xtask bench ours` checks that
//! calibration every run), and prints memory-bench's figures and init's spawn cost. A
//! benchmark: it measures and never fails on time.

use std::time::Duration;

use anyhow::{Result, ensure};

use crate::bench_kernel::spawn_ticks;
use crate::build::{self, Flavour};
use crate::qemu::{self, Accel, Boot};
use crate::setup;

const MANIFEST: &str = "tests/manifests/memory-bench.toml";
const TIMEOUT: Duration = Duration::from_secs(600);

/// What each figure is, in the order memory-bench prints them.
const FIGURES: [(&str, &str); 6] = [
    ("alloc_free_page", "Create + Free of one page (two calls to the server)"),
    ("page_lifecycle", "one page: Create, fetch its cap, Map, Unmap, Free"),
    ("map_unmap_page", "Map + Unmap of a 4 KiB frame in the client's own space"),
    ("alloc_free_2mib", "Create + Free of a 2 MiB contiguous region (the kernel zeroes it)"),
    ("map_unmap_2mib", "Map + Unmap of a 2 MiB frame (512 page-table entries)"),
    ("heap_grow_1mib", "Vec::resize to 1 MiB from empty, the heap growing through the server (once)"),
];

pub fn run() -> Result<()> {
    setup::ensure_kernel_target()?;
    setup::ensure(setup::QEMU)?;
    let kernel = build::kernel(true, Flavour::Normal)?;
    let initrd = build::initrd_for_release(&build::workspace_root().join(MANIFEST), "memory-bench")?;
    let accel = Accel::detect();
    let mut command = qemu::command(&Boot::Direct { kernel: &kernel, initrd: &initrd, cmdline: "quiet" }, accel);
    if accel == Accel::Tcg {
        command.args(["-icount", "shift=0"]);
    }
    command.args(["-nic", "none"]);
    eprintln!("xtask: booting {MANIFEST} ({accel:?})");
    let (found, outcome) = qemu::run_until(command, &["memory-bench: done"], TIMEOUT)?;
    ensure!(
        found,
        "memory-bench did not finish in {:.1?}; its log:\n{}",
        outcome.elapsed,
        outcome.serial.lines().filter(|l| l.starts_with("memory-bench") || l.starts_with("init")).collect::<Vec<_>>().join("\n")
    );
    let unit = match accel {
        Accel::Tcg => "guest instructions",
        Accel::Kvm => "TSC cycles (KVM: not comparable between machines)",
    };
    println!("\nmemory server, map/unmap and heap growth, in {unit} per operation:");
    println!("{:<18} {:>7} {:>14}  what", "figure", "rounds", "per round");
    for (name, what) in FIGURES {
        let value = outcome.serial.lines().find_map(|line| {
            let mut words = line.strip_prefix("memory-bench: ")?.split_whitespace();
            (words.next()? == name).then_some(())?;
            let rounds: u64 = words.next()?.parse().ok()?;
            let ticks: u64 = words.next()?.parse().ok()?;
            Some((rounds, ticks))
        });
        match value {
            Some((rounds, ticks)) => println!("{name:<18} {rounds:>7} {ticks:>14}  {what}"),
            None => println!("{name:<18} {:>7} {:>14}  {what}", "-", "missing"),
        }
    }
    let spawn = outcome.serial.lines().filter(|line| line.starts_with("init: started memory-bench ")).find_map(spawn_ticks);
    if let Some(spawn) = spawn {
        println!("{:<18} {:>7} {:>14}  init builds and starts memory-bench (ELF load, frames, caps, thread)", "process_spawn", 1, spawn);
    }
    if let Some(line) = outcome.serial.lines().find(|l| l.starts_with("memory-bench: the heap grew")) {
        println!("({})", line.trim_start_matches("memory-bench: "));
    }
    Ok(())
}
