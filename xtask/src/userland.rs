//! Building the user programs: every crate under `userland/` with a binary that depends on
//! libcap, for the user target, with the user flags, in its own target directory.
//!
//! Why this target and these flags is documented in libcap's crate docs (`libcap/src/lib.rs`,
//! "Build model, and why"). In short: `x86_64-unknown-linux-gnu` for hardware floats on
//! stable Rust, linked without libc as a static PIE whose only relocations are
//! `R_X86_64_RELATIVE`, which the kernel's loader applies.
//!
//! The flags go in `CARGO_ENCODED_RUSTFLAGS` for this one cargo invocation, which uses
//! `--target` explicitly (so build scripts and proc macros, built for the host, do not get
//! them) and the target directory `<target>/user` (so the host builds in `<target>` are
//! never rebuilt with, or confused by, them). `cargo test` of the workspace never builds the
//! programs: they are not default members, and their binaries have `test = false`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::build::{target_dir, workspace_root};

/// The target user programs are built for.
pub const USER_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The rustflags of user programs (see libcap's "Build model"):
/// - `+crt-static` with PIE makes rustc link with `-static-pie`: no `PT_INTERP`, no `DT_NEEDED`;
/// - `relocation-model=pie`: position-independent code with relative relocations only;
/// - `-nostartfiles`: no `crt1.o`/`crti.o`/`crtbegin.o`; libcap's `_start` is the entry.
///   (rustc already passes `-nodefaultlibs`, so neither libc nor libgcc is linked.)
/// - `strip=debuginfo`: the initrd carries no DWARF (hello: 50 KB instead of 900 KB); the
///   symbol table stays, for fault reports.
///
/// `panic = "abort"` comes from the workspace profiles.
pub const USER_RUSTFLAGS: &[&str] = &[
    "-C",
    "target-feature=+crt-static",
    "-C",
    "relocation-model=pie",
    "-C",
    "link-arg=-nostartfiles",
    "-C",
    "strip=debuginfo",
];

/// The target directory of user programs.
pub fn user_target_dir() -> PathBuf {
    target_dir().join("user")
}

/// Where program crates live: example and system programs, and the servers.
pub const PROGRAM_DIRS: [&str; 3] = ["userland", "userland/examples", "servers"];

/// The user programs: names of the directories `userland/<name>` or `servers/<name>` whose `Cargo.toml`
/// declares a `[[bin]]` and depends on libcap. (Other crates there, such as host-side
/// libraries, are not programs.) Sorted, so the initrd is reproducible.
pub fn programs() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for dir in PROGRAM_DIRS.iter().map(|dir| workspace_root().join(dir)) {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
            let is_program = text.lines().any(|line| line.trim() == "[[bin]]")
                && text.lines().any(|line| line.trim_start().starts_with("libcap"));
            if is_program {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Adds the user target with rustup if it is missing (it is the host target on an x86_64
/// Linux machine, so normally it is there).
pub fn ensure_user_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running `rustup target list --installed` (is rustup installed?)")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == USER_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: adding the Rust target {USER_TARGET} (rustup target add {USER_TARGET})");
    let status = Command::new("rustup").args(["target", "add", USER_TARGET]).status().context("running rustup")?;
    if !status.success() {
        bail!("`rustup target add {USER_TARGET}` failed; run it by hand and retry");
    }
    Ok(())
}

/// Builds every user program and returns, per program, its path in the initrd
/// (`bin/<name>`) and the ELF file.
pub fn build(release: bool) -> Result<Vec<(String, PathBuf)>> {
    let names = programs()?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    ensure_user_target()?;
    let dir = user_target_dir();
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root()).args(["build", "--target", USER_TARGET]);
    command.arg("--target-dir").arg(&dir);
    for name in &names {
        command.args(["--package", name]);
    }
    if release {
        command.arg("--release");
    }
    // CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS and every config `rustflags`, so the user
    // flags are exactly these whatever the environment says.
    command.env("CARGO_ENCODED_RUSTFLAGS", USER_RUSTFLAGS.join("\x1f")).env_remove("RUSTFLAGS");
    // The manifests' named caps, as constants for `libcap::caps!()`.
    command.env("DAIOS_CAPS_DIR", crate::caps_gen::generate()?);
    let status = command.status().context("running cargo to build the user programs")?;
    if !status.success() {
        bail!("building the user programs failed");
    }
    let profile = if release { "release" } else { "debug" };
    Ok(names
        .into_iter()
        .map(|name| {
            let path = dir.join(USER_TARGET).join(profile).join(&name);
            (format!("bin/{name}"), path)
        })
        .collect())
}
