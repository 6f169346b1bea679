//! `cargo xtask lint`: clippy over everything xtask builds, warnings denied.
//!
//! The kernel in both flavours (with and without the in-QEMU tests, `--features ktest`) for
//! its own target, every user program for theirs with the flags they are built with, and
//! every host crate with its tests; then rustdoc over libcap. clippy runs rustc's own checks too, so a compiler
//! warning anywhere fails the lint just as a clippy finding does. The lints themselves are
//! declared in the workspace's `[workspace.lints]` and at the kernel root (`kernel/src/main.rs`),
//! each with its reason; this command is what enforces them. `cargo xtask test` runs it
//! first and counts it as one test.

use std::process::Command;

use anyhow::{Context, Result};

use crate::build::{target_dir, workspace_root};
use crate::setup::KERNEL_TARGET;
use crate::userland::{self, USER_RUSTFLAGS, USER_TARGET};

#[derive(clap::Args)]
pub struct Args {}

/// One clippy (or rustdoc) run: what it covers, and the command.
struct Pass {
    what: &'static str,
    command: Command,
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root()).env_remove("RUSTFLAGS");
    command
}

fn passes() -> Result<Vec<Pass>> {
    let mut passes = Vec::new();
    for (what, ktest) in [("kernel", false), ("kernel --features ktest", true)] {
        let mut command = cargo();
        command.args(["clippy", "--package", "kernel", "--target", KERNEL_TARGET]);
        // The directories `build::kernel` uses, so the lint shares their dependency builds.
        command.arg("--target-dir").arg(if ktest { target_dir().join("ktest") } else { target_dir() });
        if ktest {
            command.args(["--features", "ktest"]);
        }
        command.args(["--", "-D", "warnings"]);
        passes.push(Pass { what, command });
    }
    let mut programs = cargo();
    programs.args(["clippy", "--target", USER_TARGET]).arg("--target-dir").arg(userland::user_target_dir());
    for name in userland::programs()? {
        programs.args(["--package", &name]);
    }
    programs.env("CARGO_ENCODED_RUSTFLAGS", USER_RUSTFLAGS.join("\x1f")).env("DAIOS_CAPS_DIR", crate::caps_gen::generate()?);
    programs.args(["--", "-D", "warnings"]);
    passes.push(Pass { what: "user programs", command: programs });
    let mut host = cargo();
    host.args(["clippy", "--all-targets", "--", "-D", "warnings"]);
    passes.push(Pass { what: "host crates (default members, with their tests)", command: host });
    // The two benchmark programs that are not default members (`cargo xtask bench`).
    let mut benches = cargo();
    benches.args(["clippy", "--package", "ai-bench", "--package", "linux-peer", "--", "-D", "warnings"]);
    passes.push(Pass { what: "benchmark programs (ai-bench, linux-peer)", command: benches });
    // The guide every service is written against: rustdoc's warnings (broken or private
    // links) are errors too. Host build, without the runtime symbols (see libcap/Cargo.toml).
    let mut docs = cargo();
    docs.args(["doc", "--package", "libcap", "--no-deps", "--no-default-features"]).env("RUSTDOCFLAGS", "-D warnings");
    passes.push(Pass { what: "libcap's documentation (rustdoc)", command: docs });
    Ok(passes)
}

/// Runs every pass; `Ok(failures)` names the passes that failed.
pub fn check() -> Result<Vec<String>> {
    crate::setup::ensure_kernel_target()?;
    userland::ensure_user_target()?;
    let mut failed = Vec::new();
    for mut pass in passes()? {
        println!("== lint: {} (warnings denied)", pass.what);
        let status = pass.command.status().with_context(|| format!("running clippy over {}", pass.what))?;
        if !status.success() {
            failed.push(pass.what.to_owned());
        }
    }
    Ok(failed)
}

pub fn run(_args: Args) -> Result<()> {
    let failed = check()?;
    if failed.is_empty() {
        println!("lint: clean");
        return Ok(());
    }
    anyhow::bail!("lint: clippy found problems in: {}", failed.join(", "))
}
