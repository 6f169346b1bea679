//! `cargo xtask run`: build everything, pack the boot image, boot it with the serial
//! console on this terminal (Ctrl-A X leaves QEMU).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::build::{self, Flavour};
use crate::qemu::{self, Accel, Boot};
use crate::setup;

#[derive(clap::Args)]
pub struct Args {
    /// Build optimised (release) binaries.
    #[arg(long)]
    release: bool,
    /// Start QEMU halted, waiting for a debugger on localhost:1234 (`gdb -ex 'target remote :1234'`).
    #[arg(long)]
    gdb: bool,
    /// Boot the GRUB image (Multiboot2) instead of loading the kernel directly (PVH).
    #[arg(long)]
    iso: bool,
    /// With --iso: boot it with UEFI firmware (OVMF) instead of BIOS.
    #[arg(long, requires = "iso")]
    uefi: bool,
    /// Accelerator; the default is KVM where /dev/kvm is hardware KVM, TCG otherwise.
    #[arg(long, value_enum)]
    accel: Option<Accel>,
    /// The kernel command line.
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Boot this manifest instead of system.toml (e.g. tests/manifests/memory-bench.toml).
    #[arg(long)]
    manifest: Option<std::path::PathBuf>,    #[command(flatten)]
    allow: crate::manifest::Allow,
}

pub fn run(args: Args) -> Result<()> {
    args.allow.apply();
    setup::ensure_kernel_target()?;
    setup::ensure(setup::QEMU)?;
    if args.iso {
        setup::ensure(setup::GRUB_ISO)?;
    }
    if args.uefi {
        setup::ensure(setup::UEFI)?;
    }
    let kernel = build::kernel(args.release, Flavour::Normal)?;
    let initrd = match &args.manifest {
        Some(manifest) => build::initrd_for(manifest, "run")?,
        None => build::initrd()?,
    };
    let accel = args.accel.unwrap_or_else(Accel::detect);
    let image;
    let boot = if args.iso {
        image = build::iso(&kernel, &initrd, &args.cmdline, "dai-os")?;
        Boot::Iso { image: &image, uefi: args.uefi }
    } else {
        Boot::Direct { kernel: &kernel, initrd: &initrd, cmdline: &args.cmdline }
    };
    let mut qemu: Command = qemu::command(&boot, accel);
    qemu.args(["-serial", "mon:stdio"]);
    if args.gdb {
        qemu.args(["-s", "-S"]);
        eprintln!("xtask: QEMU waits for a debugger: gdb {} -ex 'target remote :1234'", kernel.display());
    }
    eprintln!("xtask: booting with {accel:?}; Ctrl-A X leaves QEMU");
    let status = qemu.status().context("starting qemu-system-x86_64")?;
    // isa-debug-exit statuses are the kernel's verdicts, not QEMU failures.
    match status.code() {
        Some(0) | Some(abi::qemu_exit::SUCCESS_STATUS) => Ok(()),
        Some(code) => bail!("QEMU exited with status {code}"),
        None => bail!("QEMU was killed by a signal"),
    }
}
