//! `cargo xtask manifest [--check]`: check `system.toml` and print the boot table; and
//! [`compile`], which the initrd build uses to pack `etc/system.bin`.
//!
//! The checker and the compiled format live in the `manifest` crate (`userland/manifest`);
//! this module only supplies what it cannot know: the file, and which programs exist. A
//! program exists if `userland/<name>/Cargo.toml` and `userland/<name>/src/main.rs` do
//! (libraries there, such as the manifest crate itself, are not programs).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use crate::build::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// Only check system.toml (and print one line); without it, print the table init prints
    /// at boot: each process, and the caps it holds, slot by slot.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> Result<()> {
    let manifest = check()?;
    if args.check {
        println!(
            "{}: ok, {} programs",
            path().display(),
            manifest.programs.len()
        );
    } else {
        print!("{}", manifest.table());
    }
    Ok(())
}

/// Check and compile system.toml; returns the blob for `etc/system.bin`.
pub fn compile() -> Result<Vec<u8>> {
    Ok(check()?.encode())
}

/// Check and compile another manifest (a test's, under `tests/manifests/`).
pub fn compile_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let source = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let known = programs()?;
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let manifest = ::manifest::compile(&source, &known).map_err(|e| anyhow!("{} is refused: {e}", path.display()))?;
    Ok(manifest.encode())
}

fn path() -> PathBuf {
    workspace_root().join("system.toml")
}

fn check() -> Result<::manifest::CompiledManifest> {
    let path = path();
    let source =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let known = programs()?;
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    ::manifest::compile(&source, &known).map_err(|e| anyhow!("{} is refused: {e}", path.display()))
}

/// The names `userland/<name>` and `servers/<name>` with a Cargo.toml and a src/main.rs, sorted.
fn programs() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for dir in crate::userland::PROGRAM_DIRS.iter().map(|dir| workspace_root().join(dir)) {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            let is_program = path.join("Cargo.toml").is_file() && path.join("src/main.rs").is_file();
            if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && is_program
            {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}
