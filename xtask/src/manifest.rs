//! `cargo xtask manifest [--check]`: check `system.toml`, print its security policy and
//! the boot table; and [`compile`], which the initrd build uses to pack `etc/system.bin`.
//!
//! The checker and the compiled format live in the `manifest` crate (`userland/manifest`);
//! this module only supplies what it cannot know: the file, which programs exist, and
//! which keys the developer allows unenforced (`--allow-unenforced KEY`, [`Allow`]). A
//! program exists if `userland/<name>/Cargo.toml` and `userland/<name>/src/main.rs` do
//! (libraries there, such as the manifest crate itself, are not programs).
//!
//! The allowed keys are set once per xtask run ([`Allow::apply`]) and apply to every
//! manifest that run compiles, system.toml's and the tests': a process-wide setting rather
//! than an argument threaded through every initrd builder, because it is one decision of
//! the developer's for the whole run.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use manifest::{Key, ManifestError};

use crate::build::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// Only check system.toml (and print one line); without it, print the security policy
    /// (each key, its state and the mechanism behind it) and the table init prints at
    /// boot: each process, and the caps it holds, slot by slot.
    #[arg(long)]
    check: bool,
    /// Check and print this manifest instead of system.toml (e.g. tests/manifests/heap.toml).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    allow: Allow,
}

/// `--allow-unenforced KEY`, on every command that builds a manifest (`run`, `test`,
/// `manifest`, `bench`, `fuzz`).
#[derive(clap::Args, Clone, Default)]
pub struct Allow {
    /// Build even though KEY is true in the [security.*] policy and this build cannot
    /// enforce it (repeat for more keys). The key is compiled in as allowed-unenforced and
    /// init prints "policy: KEY = true is NOT ENFORCED" at boot.
    #[arg(long = "allow-unenforced", value_name = "KEY", value_parser = parse_key)]
    keys: Vec<Key>,
}

fn parse_key(name: &str) -> Result<Key, String> {
    Key::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Key::ALL.iter().map(|k| k.name()).collect();
        format!("no policy key \"{name}\" (the keys are {})", names.join(", "))
    })
}

/// The keys allowed unenforced in this run.
static ALLOWED: OnceLock<Vec<Key>> = OnceLock::new();

impl Allow {
    /// Makes these keys the run's allowed-unenforced keys (the first call wins).
    pub fn apply(&self) {
        let _ = ALLOWED.set(self.keys.clone());
        for key in &self.keys {
            eprintln!("xtask: --allow-unenforced {}: built in as allowed-unenforced where true", key.name());
        }
    }
}

fn allowed() -> &'static [Key] {
    ALLOWED.get().map(Vec::as_slice).unwrap_or(&[])
}

pub fn run(args: Args) -> Result<()> {
    args.allow.apply();
    let path = args.manifest.clone().unwrap_or_else(path);
    let manifest = check_file(&path)?;
    if args.check {
        println!(
            "{}: ok, {} programs",
            path.display(),
            manifest.programs.len()
        );
    } else {
        print!("{}", manifest::policy::Report::new(&manifest.policy.keys));
        print!("{}", manifest.policy.summary(&manifest));
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
    compile_file_allowing(path, &[])
}

/// As [`compile_file`], with `extra` allowed unenforced besides this run's keys (a test that
/// boots an allowed-unenforced key, `qemu::policy`).
pub fn compile_file_allowing(path: &std::path::Path, extra: &[Key]) -> Result<Vec<u8>> {
    let source = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let known = programs()?;
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    Ok(compile_source(path, &source, &known, extra)?.encode())
}

/// Compiles `source` (the text of `path`) with this run's allowed keys. A refusal names
/// the file; a refused policy key also prints the whole policy report first, so the
/// refused keys are seen beside the others.
fn compile_source(path: &std::path::Path, source: &str, known: &[&str], extra: &[Key]) -> Result<::manifest::CompiledManifest> {
    let allow: Vec<Key> = allowed().iter().chain(extra).copied().collect();
    match ::manifest::compile_with(source, known, &allow) {
        Ok(mut manifest) => {
            let (keys, _) = crate::sign_model::trusted_key_list(&crate::sign_model::trusted_keys_path())?;
            manifest.trust(keys).map_err(|e| anyhow::anyhow!("{} is refused: {e}", path.display()))?;
            Ok(manifest)
        }
        Err(error) => {
            if let ManifestError::Refused { states, .. } = &error {
                eprint!("{}", manifest::policy::Report::new(states));
            }
            if let ManifestError::UnknownProgram { program } = &error
                && let Some(dir) = outside_workspace(program)?
            {
                bail!(
                    "{} is refused: program \"{program}\": {dir}/{program} is a program crate but not a workspace \
                     member; add \"{dir}/{program}\" to [workspace] members in Cargo.toml",
                    path.display()
                );
            }
            bail!("{} is refused: {error}", path.display())
        }
    }
}

fn path() -> PathBuf {
    workspace_root().join("system.toml")
}

fn check() -> Result<::manifest::CompiledManifest> {
    check_file(&path())
}

fn check_file(path: &std::path::Path) -> Result<::manifest::CompiledManifest> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let known = programs()?;
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    compile_source(path, &source, &known, &[])
}

/// The workspace's members, as written in the root Cargo.toml (`userland/hello`, ...).
fn workspace_members() -> Result<Vec<String>> {
    let path = workspace_root().join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let root: toml::Table = text.parse().with_context(|| format!("parsing {}", path.display()))?;
    let members = root.get("workspace").and_then(|w| w.get("members")).and_then(toml::Value::as_array);
    Ok(members.into_iter().flatten().filter_map(|m| m.as_str().map(str::to_owned)).collect())
}

/// If `program` is a program crate under one of the program folders that the workspace
/// does not list (so cargo would fail later with "package ID specification ... did not
/// match any packages"), that folder.
fn outside_workspace(program: &str) -> Result<Option<&'static str>> {
    let members = workspace_members()?;
    Ok(crate::userland::PROGRAM_DIRS.iter().copied().find(|dir| {
        let crate_dir = workspace_root().join(dir).join(program);
        crate_dir.join("Cargo.toml").is_file() && crate_dir.join("src/main.rs").is_file() && !members.iter().any(|m| *m == format!("{dir}/{program}"))
    }))
}

/// The program crates the manifest may name: `userland/<name>` and `servers/<name>` with a
/// Cargo.toml and a src/main.rs that the workspace lists as members, sorted.
fn programs() -> Result<Vec<String>> {
    let members = workspace_members()?;
    let mut names = Vec::new();
    for dir_name in crate::userland::PROGRAM_DIRS {
        let dir = workspace_root().join(dir_name);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            let is_program = path.join("Cargo.toml").is_file() && path.join("src/main.rs").is_file();
            if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && is_program
                && members.iter().any(|m| *m == format!("{dir_name}/{name}"))
            {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every manifest xtask boots compiles on the host, with its policy, so a broken one
    /// fails here rather than in a QEMU run; only `policy.toml` needs a key allowed.
    #[test]
    fn every_manifest_compiles_with_its_policy() {
        let known = programs().expect("program list");
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let mut paths = vec![path()];
        for entry in std::fs::read_dir(workspace_root().join("tests/manifests")).expect("tests/manifests") {
            paths.push(entry.expect("entry").path());
        }
        for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
            let source = std::fs::read_to_string(path).expect("readable");
            let allow: &[Key] = if path.ends_with("policy.toml") { &[Key::SecureBoot] } else { &[] };
            let compiled = ::manifest::compile_with(&source, &known, allow)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let unenforced: Vec<Key> = compiled.policy.unenforced().collect();
            assert_eq!(unenforced, allow, "{}", path.display());
            if allow.is_empty() {
                continue;
            }
            // Without the flag, that manifest is refused by key.
            let refused = ::manifest::compile(&source, &known).expect_err("refused without the flag").to_string();
            assert!(refused.contains("secure_boot = true"), "{refused}");
        }
    }

    #[test]
    fn allow_unenforced_takes_only_policy_keys() {
        assert_eq!(parse_key("secure_dns"), Ok(Key::SecureDns));
        let error = parse_key("secureboot").expect_err("not a key");
        assert!(error.starts_with("no policy key \"secureboot\" (the keys are secure_boot, tpm_enabled,"), "{error}");
    }
}
