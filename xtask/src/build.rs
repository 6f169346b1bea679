//! Building what boots: the kernel ELF, the initrd (a ustar archive of boot modules) and
//! the GRUB image.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup::KERNEL_TARGET;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The kernel users boot.
    Normal,
    /// With the in-QEMU test cases compiled in (selected by `ktest=NAME`).
    Test,
}

/// Builds the kernel and returns the path of its ELF.
pub fn kernel(release: bool, flavour: Flavour) -> Result<PathBuf> {
    // The test kernel gets its own target directory so that switching between the two does
    // not rebuild either.
    let dir = match flavour {
        Flavour::Normal => target_dir(),
        Flavour::Test => target_dir().join("ktest"),
    };
    let mut command = cargo();
    command.current_dir(workspace_root()).args(["build", "--package", "kernel", "--target", KERNEL_TARGET]);
    command.arg("--target-dir").arg(&dir);
    if release {
        command.arg("--release");
    }
    if flavour == Flavour::Test {
        command.args(["--features", "ktest"]);
    }
    let status = command.status().context("running cargo to build the kernel")?;
    if !status.success() {
        bail!("building the kernel failed");
    }
    Ok(dir.join(KERNEL_TARGET).join(if release { "release" } else { "debug" }).join("kernel"))
}

/// Packs the boot modules into a ustar archive and returns its path.
///
/// Today it holds a version note and the user programs (`bin/<name>`, built by
/// [`crate::userland::build`]); the boot manifest and signed models join it as they are
/// written.
pub fn initrd() -> Result<PathBuf> {
    initrd_with(false)
}

/// As [`initrd`], with the user programs built in release mode if `release_programs`
/// (the benchmark's initrd, written to `initrd-release.tar`).
pub fn initrd_with(release_programs: bool) -> Result<PathBuf> {
    let manifest = crate::manifest::compile().context("the boot manifest")?;
    let name = if release_programs { "initrd-release.tar" } else { "initrd.tar" };
    pack_initrd(release_programs, manifest, name)
}

/// An initrd like [`initrd`] whose `etc/system.bin` is compiled from `manifest` (a test's
/// manifest, e.g. `tests/manifests/memory.toml`), written to `<target>/initrd-<name>.tar`.
/// init reads `etc/system.bin` whatever it is: a test boots its own system this way.
pub fn initrd_for(manifest: &Path, name: &str) -> Result<PathBuf> {
    initrd_from(manifest, false, &format!("initrd-{name}.tar"))
}

/// As [`initrd_for`], with `allow` allowed unenforced in this manifest's policy.
pub fn initrd_for_allowing(manifest: &Path, name: &str, allow: &[manifest::Key]) -> Result<PathBuf> {
    let blob = crate::manifest::compile_file_allowing(manifest, allow)
        .with_context(|| format!("the manifest {}", manifest.display()))?;
    pack_initrd(false, blob, &format!("initrd-{name}.tar"))
}

/// As [`initrd_for`], with the user programs built in release mode (benchmarks).
pub fn initrd_for_release(manifest: &Path, name: &str) -> Result<PathBuf> {
    initrd_from(manifest, true, &format!("initrd-{name}-release.tar"))
}

fn initrd_from(manifest: &Path, release_programs: bool, file: &str) -> Result<PathBuf> {
    let blob = crate::manifest::compile_file(manifest).with_context(|| format!("the manifest {}", manifest.display()))?;
    pack_initrd(release_programs, blob, file)
}

fn pack_initrd(release_programs: bool, manifest: Vec<u8>, name: &str) -> Result<PathBuf> {
    pack_initrd_with(release_programs, manifest, name, Vec::new())
}

/// The initrd of `system.toml` with `extra` files added (a campaign's parameters, say),
/// written to `<target>/<name>`.
pub fn initrd_with_files(extra: Vec<(String, Vec<u8>)>, name: &str) -> Result<PathBuf> {
    let manifest = crate::manifest::compile().context("the boot manifest")?;
    pack_initrd_with(false, manifest, name, extra)
}

fn pack_initrd_with(release_programs: bool, manifest: Vec<u8>, name: &str, extra: Vec<(String, Vec<u8>)>) -> Result<PathBuf> {
    // What the manifest's policy asks of the packed programs (`dep`: no W+X segment).
    let decoded = manifest::decode(&manifest).map_err(|e| anyhow::anyhow!("etc/system.bin: {e}"))?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let commit = Command::new("git")
        .current_dir(workspace_root())
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    files.push(("etc/version".into(), format!("Democratizing AI OS, commit {commit}\n").into_bytes()));
    files.push(("etc/system.bin".into(), manifest));
    for (name, path) in crate::userland::build(release_programs)? {
        files.push((name, std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?));
    }
    files.extend(extra);
    crate::dep_check::check(&decoded.policy, &files)?;
    let framed = framed_files(&decoded.files, &mut files)?;

    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in &files {
        append(&mut builder, path, data)?;
    }
    for (index, (path, data)) in framed.iter().enumerate() {
        // A padding entry ends where the file's header must start, 512 bytes before a page.
        let at = builder.get_ref().len();
        let pad = (2 * PAGE - (at + 2 * BLOCK) % PAGE) % PAGE;
        append(&mut builder, &format!(".pad/{index}"), &vec![0; pad])?;
        append(&mut builder, path, data)?;
        let end = builder.get_ref().len();
        debug_assert_eq!((end - data.len().next_multiple_of(BLOCK)) % PAGE, 0, "{path} starts on a page");
        builder.get_mut().resize(end.next_multiple_of(PAGE), 0);
    }
    let bytes = builder.into_inner().context("finishing the initrd")?;
    let path = target_dir().join(name);
    std::fs::create_dir_all(target_dir())?;
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

const BLOCK: usize = 512;
const PAGE: usize = 4096;

fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path).with_context(|| format!("initrd path {path}"))?;
    header.set_size(data.len() as u64);
    header.set_mode(0o444);
    header.set_mtime(0); // reproducible archives
    header.set_cksum();
    builder.append(&header, data).context("writing the initrd")
}

/// The files the manifest hands out as frames (`file` caps, model containers), taken out of
/// `files` (or made: the bundled model containers): the packer puts each one's data on a
/// page of its own, zero-padded to the next page, so its frame shows nothing else.
fn framed_files(paths: &[String], files: &mut Vec<(String, Vec<u8>)>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut framed = Vec::new();
    for path in paths {
        let data = match files.iter().position(|(p, _)| p == path) {
            // Moved, not copied: a path is in the archive once, wherever it is.
            Some(at) => files.remove(at).1,
            None => match crate::sign_model::bundled_file(path)? {
                Some(container) => container,
                None => bail!(
                    "the manifest names file \"{path}\", which is not in the initrd and not one \
                     xtask makes (xtask/src/sign_model.rs, `bundled_file`)"
                ),
            },
        };
        framed.push((path.clone(), data));
    }
    Ok(framed)
}

/// Builds a GRUB image (BIOS and UEFI) that boots `kernel` by Multiboot2 with `initrd`.
pub fn iso(kernel: &Path, initrd: &Path, cmdline: &str, name: &str) -> Result<PathBuf> {
    let root = target_dir().join(format!("{name}-root"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("boot/grub"))?;
    std::fs::copy(kernel, root.join("boot/kernel.elf")).context("copying the kernel into the image")?;
    std::fs::copy(initrd, root.join("boot/initrd.tar")).context("copying the initrd into the image")?;
    let config = format!(
        "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n\
         menuentry \"Democratizing AI OS\" {{\n    multiboot2 /boot/kernel.elf {cmdline}\n    module2 /boot/initrd.tar initrd\n    boot\n}}\n"
    );
    std::fs::write(root.join("boot/grub/grub.cfg"), config)?;
    let iso = target_dir().join(format!("{name}.iso"));
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&iso)
        .arg(&root)
        .output()
        .context("running grub-mkrescue")?;
    if !output.status.success() {
        bail!("grub-mkrescue failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(iso)
}
