//! `cargo xtask bench <what>`: benchmarks. They measure and print; they never fail on time.

use crate::bench_ai;

#[derive(clap::Args)]
pub struct Args {
    /// What to benchmark; without it, ours and the Linux peer side by side (`all`).
    what: Option<What>,
    #[command(flatten)]
    allow: crate::manifest::Allow,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    /// Our kernel (ktest=bench in QEMU) and the Linux peer in the same run, side by side.
    All,
    /// Our kernel only: IPC, syscalls, notifications, yield, map/unmap, boot (ktest=bench).
    Ours,
    /// The inference engine (all-MiniLM-L6-v2) against candle, host, one thread.
    Ai,
    /// The Linux peer: Debian's kernel in the same QEMU (null syscall, pipe and futex IPC).
    Linux,
    /// The memory server: allocation, map/unmap of 4 KiB and 2 MiB frames, heap growth,
    /// process spawn (tests/manifests/memory-bench.toml).
    Memory,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.allow.apply();
    match args.what.unwrap_or(What::All) {
        What::All => crate::bench_kernel::run_all(),
        What::Ours => crate::bench_kernel::run_ours_only(),
        What::Ai => bench_ai::run(),
        What::Linux => crate::bench_linux::run(),
        What::Memory => crate::bench_memory::run(),
    }
}
