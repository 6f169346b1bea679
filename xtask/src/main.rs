//! `cargo xtask`: the one entry point for building, booting, testing and benchmarking.
//!
//! Its `--help` is the documentation. Each subcommand lives in its own module, which owns
//! its argument struct; this file only dispatches.

mod build;
mod caps_gen;
mod dep_check;
mod fuzz;
mod hermetic;
mod lint;
mod manifest;
mod new;
mod models;
mod qemu;
mod run;
mod setup;
mod fastpath_test;
mod shell_test;
mod test;
mod userland;
mod sign_model;
mod bench;
mod bench_ai;
mod bench_kernel;
mod bench_linux;
mod bench_memory;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot, test and benchmark Democratizing AI OS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel and user programs, pack the boot image and boot it in QEMU.
    Run(run::Args),
    /// Run every host test, then every in-QEMU test; ends with `N passed, N failed`.
    Test(test::Args),
    /// Fetch and verify the model weights (all-MiniLM-L6-v2) into the local cache.
    Models(models::Args),
    /// Pack a model into a signed container.
    SignModel(sign_model::Args),
    /// Run benchmarks (they measure; they never fail on time).
    Bench(bench::Args),
    /// Check system.toml, the boot manifest, and print the process/capability table init prints.
    Manifest(manifest::Args),
    /// clippy over the kernel (both flavours), the user programs and the host crates,
    /// warnings denied.
    Lint(lint::Args),
    /// Syscall-fuzzer campaigns in QEMU: `--calls N --seed S --campaigns K`; prints failing seeds.
    Fuzz(fuzz::Args),
    /// A new user program (with `--server`: a server, its interface and a client), its
    /// workspace entry, a boot manifest and the test that boots it.
    New(new::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Models(args) => models::run(args),
        Command::SignModel(args) => sign_model::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Lint(args) => lint::run(args),
        Command::New(args) => new::run(args),
    }
}
