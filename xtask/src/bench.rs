//! `cargo xtask bench <what>`: benchmarks. They measure and print; they never fail on time.

use crate::bench_ai;

#[derive(clap::Args)]
pub struct Args {
    /// What to benchmark.
    what: What,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    /// The inference engine (all-MiniLM-L6-v2) against candle, host, one thread.
    Ai,
    /// The Linux peer: Debian's kernel in the same QEMU (null syscall, pipe and futex IPC).
    Linux,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Ai => bench_ai::run(),
        What::Linux => crate::bench_linux::run(),
    }
}
