//! A fresh machine sets itself up: the Rust target, and the Debian packages QEMU and the
//! GRUB image need. As root with apt-get, xtask installs what is missing and says so;
//! otherwise it prints the exact command and stops.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Adds the kernel's target with rustup when it is missing (automatic installation of
/// components may be off on this machine, so nothing else will).
pub fn ensure_kernel_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running `rustup target list --installed` (is rustup installed?)")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == KERNEL_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: adding the Rust target {KERNEL_TARGET} (rustup target add {KERNEL_TARGET})");
    let status = Command::new("rustup").args(["target", "add", KERNEL_TARGET]).status().context("running rustup")?;
    if !status.success() {
        bail!("`rustup target add {KERNEL_TARGET}` failed; run it by hand and retry");
    }
    Ok(())
}

pub fn have_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| out.stdout.starts_with(b"0")).unwrap_or(false)
}

/// A tool and where it comes from: (a file that must exist or a program on PATH, package).
pub struct Need {
    pub what: &'static str,
    pub package: &'static str,
}

fn present(need: &Need) -> bool {
    if need.what.starts_with('/') { Path::new(need.what).exists() } else { have_program(need.what) }
}

/// Installs the Debian packages for whatever in `needs` is missing, or explains how.
pub fn ensure(needs: &[Need]) -> Result<()> {
    let mut packages: Vec<&str> = needs.iter().filter(|need| !present(need)).map(|need| need.package).collect();
    packages.dedup();
    if packages.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get update && apt-get install -y {}", packages.join(" "));
    if !(is_root() && have_program("apt-get")) {
        bail!("missing {}; install them with:\n    sudo sh -c '{command}'", packages.join(", "));
    }
    eprintln!("xtask: installing {} ({command})", packages.join(", "));
    let status = Command::new("sh")
        .args(["-c", &command])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    let still_missing: Vec<&str> = needs.iter().filter(|need| !present(need)).map(|need| need.what).collect();
    if !status.success() || !still_missing.is_empty() {
        bail!("installing {} failed (still missing: {}); run `{command}` by hand", packages.join(" "), still_missing.join(", "));
    }
    Ok(())
}

pub const QEMU: &[Need] = &[
    Need { what: "qemu-system-x86_64", package: "qemu-system-x86" },
];

pub const GRUB_ISO: &[Need] = &[
    Need { what: "grub-mkrescue", package: "grub-common" },
    Need { what: "/usr/lib/grub/i386-pc", package: "grub-pc-bin" },
    Need { what: "/usr/lib/grub/x86_64-efi", package: "grub-efi-amd64-bin" },
    Need { what: "xorriso", package: "xorriso" },
    Need { what: "mformat", package: "mtools" },
];

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE.fd";
pub const UEFI: &[Need] = &[Need { what: OVMF_CODE, package: "ovmf" }];
